"""Detection cascades measured with COCO mAP, and the detector router's calibration.

A threshold ``t`` keeps the Student's detections of an image when its score (``ebjr.
detection_routing``) is at least ``t``, else takes the Teacher's. mAP is a property of a whole
set of images, not a sum over rows, so every operating point is measured by joining the two
detectors' answers and running COCO evaluation (``ebjr.tasks.detection.metrics``) on the result.
Costs are the paper's average FLOPs per image.

Shapes: ``student``, ``teacher``: ``{name: (N, ...)}`` detector outputs on ``N`` scenes;
``scores``, ``keep``: ``(N,)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ebjr.core.calibration import (
    Calibration,
    Frontier,
    Metric,
    cascade_flops,
    cheapest_reaching,
    cheapest_score,
)
from ebjr.core.cascade_calibration import pareto, threshold_grid
from ebjr.core.packing import RowLayout
from ebjr.tasks.detection.data import Scenes
from ebjr.tasks.detection.metrics import coco_map
from ebjr.tasks.detection.scores import available_scores, detection_score

log = logging.getLogger(__name__)
GRID = 40  # candidate thresholds per score: quantiles of its values on the split
MAP = Metric("map", "min_accuracy", tolerance=0.001)  # COCO mAP@[.5:.95]
DEFAULT_SHARE = 0.97  # the router's default point: this share of the Teacher's mAP


def join(student: dict, teacher: dict, keep: np.ndarray) -> dict:
    """Per image, the Student's detections where ``keep: (N,)`` else the Teacher's."""
    return {
        name: np.where(
            keep.reshape(-1, *[1] * (student[name].ndim - 1)), student[name], teacher[name]
        )
        for name in student
    }


@dataclass(frozen=True)
class Point:
    threshold: float
    map: float
    map50: float
    teacher_fraction: float
    flops: float


def measure(
    scenes: Scenes, student: dict, teacher: dict, keep: np.ndarray, fs: float, ft: float, t: float
) -> Point:
    """The cascade that keeps the Student where ``keep``, at threshold ``t`` (for the record)."""
    result = coco_map(scenes, join(student, teacher, keep))
    fraction = float((~keep).mean())
    return Point(t, result["map"], result["map50"], fraction, cascade_flops(fs, ft, fraction))


def sweep(
    scenes: Scenes, student: dict, teacher: dict, scores: np.ndarray, fs: float, ft: float
) -> list[Point]:
    """The cascade at ``GRID`` quantile thresholds of ``scores``, plus ``-inf`` and ``inf``."""
    return [
        measure(scenes, student, teacher, scores >= t, fs, ft, t)
        for t in threshold_grid(scores, GRID)
    ]


def choose(points: list[Point], target: float) -> Point:
    """The cheapest point reaching ``target`` mAP (everything to the Teacher if none does)."""
    i = cheapest_reaching(
        np.array([p.map for p in points]), np.array([p.flops for p in points]), target
    )
    return points[i if i is not None else -1]


def frontier(points: list[Point]) -> Frontier:
    """The points no other beats on both mAP and FLOPs, by ascending cost."""
    return pareto(
        Frontier(
            thresholds=np.array([[p.threshold] for p in points]),
            accuracy=np.array([p.map for p in points]),
            teacher_fraction=np.array([p.teacher_fraction for p in points]),
            flops=np.array([p.flops for p in points]),
        )
    )


def calibrate_detector(
    scenes: Scenes,
    student: dict,
    teacher: dict,
    layout: RowLayout,
    bin_width: float,
    flops: tuple[float, float],
    stages: tuple[str, str],
    split: str = "val",
    share: float = DEFAULT_SHARE,
) -> Calibration:
    """The detector router's calibration on labelled ``scenes`` (never ``test``): every score
    the detectors support is swept; the one cheapest at ``share`` of the Teacher's mAP is
    served, and that point is the router's default. The knobs' table is its frontier, with
    ``accuracy`` in mAP@[.5:.95]."""
    if split == "test":
        raise ValueError("calibration must not use the test split")
    fs, ft = flops
    student_map, teacher_map = (coco_map(scenes, found)["map"] for found in (student, teacher))
    rows = layout.pack([student[name] for name in layout.names])
    fronts = {
        name: frontier(
            sweep(scenes, student, teacher, detection_score(name, layout, bin_width)(rows), fs, ft)
        )
        for name in available_scores(layout)
    }
    record = cheapest_score(
        fronts,
        share * teacher_map,
        split,
        len(scenes.images),
        stages,
        (student_map, teacher_map),
        flops,
        metric=MAP,
        parity_share=share,
    )
    for name, point in record.evidence.items():
        log.info(
            "%s: %.3f mAP at %.2fx fewer FLOPs",
            name,
            point["parity_accuracy"],
            point["fewer_flops_than_teacher_at_parity"],
        )
    return record
