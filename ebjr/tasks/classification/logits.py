"""A pair's logits on labelled rows: run here on images, or computed in the user's own pipeline
and read from ``FILE.npz`` (``student_logits (N, C)``, ``teacher_logits (N, C)``, ``labels
(N,)``; for an N-stage cascade also ``middle_1_logits (N, C)``, ... one per middle stage in
order; for a specialized Student also ``specialized_logits (N, P + 1)``), so that a Teacher too
costly to run twice need not be. Calibration and gate training need nothing else.
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
MIDDLE = "middle_{}_logits"  # the k-th middle stage's (k from 1)
SPECIALIZED = "specialized_logits"


@dataclass(frozen=True)
class PairLogits:
    """``student``, ``teacher``: ``(N, C) float32`` logits of the same ``N`` rows;
    ``labels``: ``(N,) int64``; ``middle``: each middle stage's ``(N, C)``, in order;
    ``specialized``: a specialized Student's ``(N, P + 1)``, or None."""

    student: np.ndarray
    teacher: np.ndarray
    labels: np.ndarray
    middle: tuple[np.ndarray, ...] = ()
    specialized: np.ndarray | None = None

    def rows(self, index: np.ndarray) -> PairLogits:
        return PairLogits(
            self.student[index],
            self.teacher[index],
            self.labels[index],
            tuple(m[index] for m in self.middle),
            None if self.specialized is None else self.specialized[index],
        )

    def stage(self, k: int) -> PairLogits:
        """Stage ``k`` (0: the Student, then each middle stage) with the Teacher."""
        return PairLogits(self.middle[k - 1] if k else self.student, self.teacher, self.labels)

    def specialized_pair(self) -> PairLogits:
        """The specialized Student with the Teacher."""
        if self.specialized is None:
            raise ValueError(f"the logits file lacks {SPECIALIZED} for the specialized Student")
        return PairLogits(self.specialized, self.teacher, self.labels)


def run_pair(repository: Path, student: str, images: np.ndarray, labels: np.ndarray) -> PairLogits:
    """``repository``'s ``student`` model and Teacher on ``images``."""
    student_logits, teacher_logits = (
        OnnxClassifier(onnx_path(repository, name), threads=2).predict(images)
        for name in (student, TEACHER)
    )
    return PairLogits(student_logits, teacher_logits, labels)


def load_logits(
    path: Path, num_classes: int, middle: int = 0, specialized_outputs: int = 0
) -> PairLogits:
    """The logits in ``path``, checked against the cascade: ``num_classes`` (the Teacher's),
    ``middle`` middle stages, a specialized Student of ``specialized_outputs`` outputs (0:
    none); ``ValueError`` saying what is wrong. Logged: what cannot be checked (that they are
    these models' own)."""
    if not Path(path).exists():
        raise ValueError(f"no such logits file: {path}")
    middles = [MIDDLE.format(k) for k in range(1, middle + 1)]
    wanted = [*KEYS, *middles, *([SPECIALIZED] if specialized_outputs else [])]
    with np.load(path) as archive:
        missing = [k for k in wanted if k not in archive]
        if missing:
            raise ValueError(f"{path} lacks {', '.join(missing)} (it needs {', '.join(wanted)})")
        extra = [k for k in archive.files if k not in wanted]
        if extra:
            raise ValueError(
                f"{path} holds {', '.join(extra)}, which this cascade has no stage for "
                f"(it needs {', '.join(wanted)})"
            )
        arrays = {k: archive[k] for k in wanted}
    labels = arrays.pop("labels")
    for name, logits in arrays.items():
        classes = specialized_outputs if name == SPECIALIZED else num_classes
        if logits.ndim != 2 or logits.shape[1] != classes:
            raise ValueError(f"{path}: {name} is {logits.shape}, the model answers (N, {classes})")
        if not np.isfinite(logits).all():
            raise ValueError(f"{path}: {name} holds NaN or Inf values")
        if len(logits) != len(labels):
            raise ValueError(
                f"{path}: {name} has {len(logits)} rows and labels {labels.shape}: one row "
                "each, labels (N,)"
            )
    if labels.ndim != 1:
        raise ValueError(f"{path}: labels are {labels.shape}: one row each, labels (N,)")
    if (
        not np.issubdtype(labels.dtype, np.integer)
        or labels.min() < 0
        or labels.max() >= num_classes
    ):
        raise ValueError(f"{path}: labels must be integers in [0, {num_classes})")
    log.info(
        "%s: %d rows, %d classes, %d stages, checked; not checkable: that these are the served "
        "models' own logits on the same preprocessing",
        path,
        len(labels),
        num_classes,
        len(arrays),
    )
    as_float = {k: v.astype(np.float32) for k, v in arrays.items()}
    return PairLogits(
        as_float["student_logits"],
        as_float["teacher_logits"],
        labels.astype(np.int64),
        tuple(as_float[k] for k in middles),
        as_float.get(SPECIALIZED),
    )
