"""A pair's logits on labelled rows: run here on images, or computed in the user's own pipeline
and read from ``FILE.npz`` (``student_logits (N, C)``, ``teacher_logits (N, C)``, ``labels
(N,)``), so that a Teacher too costly to run twice need not be. Calibration and gate training
need nothing else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ebjr.core.layout import TEACHER, onnx_path
from ebjr.core.onnx_runner import OnnxClassifier

log = logging.getLogger(__name__)

KEYS = ("student_logits", "teacher_logits", "labels")


@dataclass(frozen=True)
class PairLogits:
    """``student``, ``teacher``: ``(N, C) float32`` logits of the same ``N`` rows;
    ``labels``: ``(N,) int64``."""

    student: np.ndarray
    teacher: np.ndarray
    labels: np.ndarray

    def rows(self, index: np.ndarray) -> PairLogits:
        return PairLogits(self.student[index], self.teacher[index], self.labels[index])


def run_pair(repository: Path, student: str, images: np.ndarray, labels: np.ndarray) -> PairLogits:
    """``repository``'s ``student`` model and Teacher on ``images``."""
    student_logits, teacher_logits = (
        OnnxClassifier(onnx_path(repository, name), threads=2).predict(images)
        for name in (student, TEACHER)
    )
    return PairLogits(student_logits, teacher_logits, labels)


def load_logits(path: Path, num_classes: int) -> PairLogits:
    """The logits in ``path``, checked against the pair's ``num_classes``: ``ValueError``
    saying what is wrong. Logged: what cannot be checked (that they are these models' own)."""
    if not Path(path).exists():
        raise ValueError(f"no such logits file: {path}")
    with np.load(path) as archive:
        missing = [k for k in KEYS if k not in archive]
        if missing:
            raise ValueError(f"{path} lacks {', '.join(missing)} (it needs {', '.join(KEYS)})")
        student, teacher, labels = (archive[k] for k in KEYS)
    for name, logits in (("student_logits", student), ("teacher_logits", teacher)):
        if logits.ndim != 2 or logits.shape[1] != num_classes:
            raise ValueError(
                f"{path}: {name} is {logits.shape}, the models answer (N, {num_classes})"
            )
        if not np.isfinite(logits).all():
            raise ValueError(f"{path}: {name} holds NaN or Inf values")
    if not (len(student) == len(teacher) == len(labels)) or labels.ndim != 1:
        raise ValueError(
            f"{path}: {len(student)} Student rows, {len(teacher)} Teacher rows and labels "
            f"{labels.shape}: one row each, labels (N,)"
        )
    if (
        not np.issubdtype(labels.dtype, np.integer)
        or labels.min() < 0
        or labels.max() >= num_classes
    ):
        raise ValueError(f"{path}: labels must be integers in [0, {num_classes})")
    log.info(
        "%s: %d rows, %d classes, checked; not checkable: that these are the served models' own "
        "logits on the same preprocessing",
        path,
        len(labels),
        num_classes,
    )
    return PairLogits(
        student.astype(np.float32), teacher.astype(np.float32), labels.astype(np.int64)
    )
