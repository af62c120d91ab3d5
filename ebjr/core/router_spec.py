"""A task's router, declared once by its task (``ROUTER_SPEC`` in ``ebjr.tasks.<task>``): the
module whose ``TritonPythonModel`` serves it, and the outputs every response carries, in
order: the task's answer columns, then the routing columns every router shares (``ROUTING``).
The builder writes the router's ``config.pbtxt`` outputs and ``1/model.py`` from it
(``ebjr.build``); the router builds each response from it (``ebjr.serving``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ebjr.core.tensors import TensorSpec


@dataclass(frozen=True)
class Column:
    """One per-row output of a router: its name and Triton dtype."""

    name: str
    triton_dtype: str


# every router's last outputs: the routing score (N, 1), the threshold applied (N, boundaries)
# and the route (N, 1) as bytes
ROUTING = (
    Column("score", "TYPE_FP32"),
    Column("threshold", "TYPE_FP32"),
    Column("route", "TYPE_STRING"),
)


@dataclass(frozen=True)
class RouterSpec:
    """``serving_module``'s ``TritonPythonModel`` serves the router; ``answers`` are its task's
    per-row outputs, before ``ROUTING``."""

    serving_module: str
    answers: tuple[Column, ...]

    @property
    def outputs(self) -> tuple[str, ...]:
        """Every output name, in the documented order."""
        return tuple(c.name for c in (*self.answers, *ROUTING))

    def tensors(
        self,
        shapes: dict[str, tuple[int, ...]],
        boundaries: int = 1,
        dtypes: dict[str, str] | None = None,
    ) -> list[TensorSpec]:
        """Every output's ``TensorSpec``: the answers' per-row ``shapes`` (and any ``dtypes``
        the pair decides, e.g. a Teacher's logits), as only the builder knows them, then
        ``ROUTING`` (one threshold per stage boundary)."""
        names = {c.name for c in self.answers}
        if set(shapes) != names or not set(dtypes or {}) <= names:
            raise ValueError(f"this router's answers are {sorted(names)}, not {sorted(shapes)}")
        shapes = {**shapes, "score": (1,), "threshold": (boundaries,), "route": (1,)}
        dtypes = dtypes or {}
        return [
            TensorSpec(c.name, tuple(shapes[c.name]), dtypes.get(c.name, c.triton_dtype))
            for c in (*self.answers, *ROUTING)
        ]

    def ordered(self, columns: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
        """``columns`` (every output for a batch) in the documented order; ``ValueError`` if
        they are not exactly this router's outputs."""
        if set(columns) != set(self.outputs):
            raise ValueError(f"a response has {sorted(columns)}, not {list(self.outputs)}")
        return [(name, columns[name]) for name in self.outputs]
