"""Routing on a detector's outputs (paper eqs. 12-14) with the same cascade as classification.

A detector answers several fixed-size tensors per image (``ebjr.tasks.detection.models``), which
travel through the cascade packed in one row per image (``ebjr.core.packing.RowLayout``). A
``DetectionScore`` is a routing score on packed rows: eq. 14 (or one of its terms) over
the boxes each image keeps, so plain EBJR (``GeneralPolicy``) routes detections unchanged.

Score names (the router's ``score`` parameter and the calibration file):

- ``detection_energy``: both terms, eq. 14;
- ``detection_class_energy``: the classification term alone (eq. 12), the score for a plain
  (non-distributional) box head, which has no ``box_logits``;
- ``detection_box_energy``: the box term alone (eq. 13).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ebjr.core.packing import LAYOUT_PARAMETER, RowLayout
from ebjr.core.scores import ScoreContext, ScoreFactory
from ebjr.core.tensors import TensorSpec
from ebjr.tasks.detection.energy import detection_energy

DETECTION_SCORES = {
    "detection_energy": ("class", "box"),
    "detection_class_energy": ("class",),
    "detection_box_energy": ("box",),
}
# what the router needs of a detector, and what it answers with
REQUIRED = ("boxes", "scores", "class_logits", "valid")
BOX_LOGITS = "box_logits"


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
    energy of each image's kept boxes over ``terms`` (``ebjr.tasks.detection.energy``)."""

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


def packed_detection_score(name: str, context: ScoreContext) -> DetectionScore:
    """The ``ScoreFactory`` of ``DETECTION_SCORES``: on the rows of the router's
    ``stage_layout``, with its ``bin_width``."""
    layout = RowLayout.from_json(context.parameters.get(LAYOUT_PARAMETER, ""))
    return detection_score(name, layout, float(context.parameters.get("bin_width", "1")))


SCORE_FACTORIES: dict[str, ScoreFactory] = dict.fromkeys(DETECTION_SCORES, packed_detection_score)


def available_scores(layout: RowLayout) -> list[str]:
    """The detection scores a detector of ``layout`` supports."""
    return [n for n, t in DETECTION_SCORES.items() if "box" not in t or BOX_LOGITS in layout.names]
