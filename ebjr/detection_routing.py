"""Routing on a detector's outputs (paper eqs. 12-14) with the same cascade as classification.

A detector answers several fixed-size tensors per image (``ebjr.detection_models``). The
cascade (``ebjr.routing.cascade``) moves one ``(N, F) float32`` row per image, so a
``RowLayout`` packs a detector's outputs into such rows and unpacks them again (booleans as
0/1). A ``DetectionScore`` is a routing score on packed rows: eq. 14 (or one of its terms) over
the boxes each image keeps, so plain EBJR (``GeneralPolicy``) routes detections unchanged.

Score names (the router's ``score`` parameter and the calibration file):

- ``detection_energy``: both terms, eq. 14;
- ``detection_class_energy``: the classification term alone (eq. 12), the score for a plain
  (non-distributional) box head, which has no ``box_logits``;
- ``detection_box_energy``: the box term alone (eq. 13).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ebjr.detection_scores import detection_energy
from ebjr.onnx_info import TensorSpec

DETECTION_SCORES = {
    "detection_energy": ("class", "box"),
    "detection_class_energy": ("class",),
    "detection_box_energy": ("box",),
}
# what the router needs of a detector, and what it answers with
REQUIRED = ("boxes", "scores", "class_logits", "valid")
BOX_LOGITS = "box_logits"


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
        """The layout as the ``detection_layout`` router parameter."""
        return json.dumps([[s.name, list(s.shape), s.triton_dtype] for s in self.specs])

    @classmethod
    def from_json(cls, text: str) -> RowLayout:
        try:
            return cls(tuple(TensorSpec(n, tuple(shape), d) for n, shape, d in json.loads(text)))
        except (ValueError, TypeError) as err:
            raise ValueError(f"detection_layout is not a layout: {err}") from None


def detector_layout(outputs: tuple[TensorSpec, ...]) -> RowLayout:
    """The layout of a detector's ONNX outputs; raises ``ValueError`` if one the router needs
    is missing (``box_logits`` is optional: a plain box head)."""
    names = [spec.name for spec in outputs]
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise ValueError(f"a detector needs outputs {REQUIRED}; {missing} missing from {names}")
    return RowLayout(tuple(outputs))


@dataclass(frozen=True)
class DetectionScore:
    """A ``ScoreFn`` on packed rows: ``rows: (N, width) -> (N,) float32``, the negative free
    energy of each image's kept boxes over ``terms`` (``ebjr.detection_scores``)."""

    layout: RowLayout
    bin_width: float
    terms: tuple[str, ...]

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        found = self.layout.unpack(rows)
        return detection_energy(
            found["class_logits"], found.get(BOX_LOGITS), found["valid"], self.bin_width, self.terms
        )


def detection_score(name: str, layout: RowLayout, bin_width: float) -> DetectionScore:
    """The score called ``name`` (``DETECTION_SCORES``) on rows of ``layout``."""
    if name not in DETECTION_SCORES:
        known = list(DETECTION_SCORES)
        raise ValueError(f"unknown detection score {name!r}; choose one of {known}")
    terms = DETECTION_SCORES[name]
    if "box" in terms and BOX_LOGITS not in layout.names:
        raise ValueError(f"score {name!r} needs the detector's {BOX_LOGITS} output (a DFL head)")
    return DetectionScore(layout, bin_width, terms)


def available_scores(layout: RowLayout) -> list[str]:
    """The detection scores a detector of ``layout`` supports."""
    return [n for n, t in DETECTION_SCORES.items() if "box" not in t or BOX_LOGITS in layout.names]
