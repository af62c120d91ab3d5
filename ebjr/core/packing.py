"""Several tensors per row, packed side by side in one float32 row.

The cascade (``ebjr.core.routing.cascade``) moves one ``(N, F) float32`` row per input. A model that
answers several fixed-size tensors per input (a detector, a regressor with an energy head) is
routed by packing its outputs into such rows and unpacking them where they are read: in the
routing score and in the router's response. The layout travels in the router's
``config.pbtxt`` as the ``stage_layout`` parameter (JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ebjr.core.tensors import GraphInfo, TensorSpec

LAYOUT_PARAMETER = "stage_layout"


@dataclass(frozen=True)
class RowLayout:
    """Named per-image tensors packed side by side in one float32 row.

    ``specs``: each tensor's name, per-image shape and Triton dtype, in packing order.
    """

    specs: tuple[TensorSpec, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.specs)

    def shape(self, name: str) -> tuple[int, ...]:
        """The per-image shape of tensor ``name``."""
        return next(spec.shape for spec in self.specs if spec.name == name)

    @property
    def width(self) -> int:
        return sum(int(np.prod(spec.shape)) for spec in self.specs)

    def pack(self, tensors: list[np.ndarray]) -> np.ndarray:
        """``tensors`` (one per spec, each ``(N, *shape)``) -> ``(N, width) float32``."""
        return np.concatenate(
            [np.asarray(t, dtype=np.float32).reshape(len(t), -1) for t in tensors], axis=1
        )

    def unpack(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """``rows: (N, width)`` -> ``{name: (N, *shape)}`` in each spec's dtype."""
        out, start = {}, 0
        for spec in self.specs:
            size = int(np.prod(spec.shape))
            part = rows[:, start : start + size].reshape(len(rows), *spec.shape)
            out[spec.name] = part > 0.5 if spec.triton_dtype == "TYPE_BOOL" else part
            start += size
        return out

    def to_json(self) -> str:
        """The layout as the ``stage_layout`` router parameter."""
        return json.dumps([[s.name, list(s.shape), s.triton_dtype] for s in self.specs])

    @classmethod
    def from_json(cls, text: str) -> RowLayout:
        try:
            return cls(tuple(TensorSpec(n, tuple(shape), d) for n, shape, d in json.loads(text)))
        except (ValueError, TypeError) as err:
            raise ValueError(f"{LAYOUT_PARAMETER} is not a layout: {err}") from None


def joint_layout(student: GraphInfo, teacher: GraphInfo) -> RowLayout:
    """The layout a Student and a Teacher both answer in; ``ValueError`` if the router cannot
    join them (a different input, or different outputs)."""
    if student.input != teacher.input or student.outputs != teacher.outputs:
        raise ValueError(
            f"Student and Teacher must share input and outputs: {student.input}, "
            f"{student.outputs} vs {teacher.input}, {teacher.outputs}"
        )
    return RowLayout(student.outputs)


def stage_parameters(
    student: str, teacher: str, input_name: str, layout: RowLayout
) -> dict[str, str]:
    """A packed router's ``config.pbtxt`` parameters naming its two models (both read
    ``input_name`` and answer every tensor of ``layout``) and the layout itself."""
    outputs = ",".join(layout.names)
    return {
        "student_model": student,
        "student_input": input_name,
        "student_output": outputs,
        "teacher_model": teacher,
        "teacher_input": input_name,
        "teacher_output": outputs,
        LAYOUT_PARAMETER: layout.to_json(),
    }
