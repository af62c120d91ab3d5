"""The EBJR routing decision (paper eqs. 6-7) and the per-request threshold.

A row goes to the Student when its score is at or above its request's threshold
(``s(x) >= t``, ties included), otherwise to the Teacher. ``t = -inf`` therefore means
always-Student and ``t = +inf`` always-Teacher.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Route codes per row, and their names as the router returns them.
STUDENT, TEACHER, FALLBACK = 0, 1, 2
ROUTE_NAMES = ("student", "teacher", "student_fallback")


class RequestError(ValueError):
    """A request the router rejects with a clear message (HTTP 400 / gRPC INVALID_ARGUMENT)."""


def parse_threshold(value: object, name: str = "threshold") -> float:
    """Parse a ``threshold`` (or other numeric knob called ``name``) request parameter.

    Accepts a JSON number or a numeric string (``perf_analyzer`` sends only int, bool and string
    parameters); ``"inf"``/``"-inf"`` mean always-Teacher / always-Student.
    Raises ``RequestError`` for booleans, NaN and non-numeric strings.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RequestError(f"{name} must be a number or a numeric string, got {value!r}")
    try:
        threshold = float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        raise RequestError(f"{name} must be a number or a numeric string, got {value!r}") from None
    if math.isnan(threshold):
        raise RequestError(f"{name} must not be NaN")
    return threshold


def to_student(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Eq. 6: ``scores: (N,)``, ``thresholds: (N,)`` -> ``(N,) bool``, True where ``s >= t``."""
    return np.asarray(scores) >= np.asarray(thresholds)


@dataclass(frozen=True)
class Routed:
    """The joint answer for a batch (eq. 7).

    logits: (N, C) float32, from whichever model answered each row
    scores: (N,) float32, the Student's routing score
    route: (N,) int8, ``STUDENT``, ``TEACHER`` or ``FALLBACK`` per row (see ``ROUTE_NAMES``)
    """

    logits: np.ndarray
    scores: np.ndarray
    route: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        """(N,) int64 predicted class per row."""
        return np.argmax(self.logits, axis=1).astype(np.int64)


def join_answers(
    student_logits: np.ndarray,
    scores: np.ndarray,
    student_rows: np.ndarray,
    teacher_logits: np.ndarray | None,
) -> Routed:
    """Scatter the Teacher's answers into the Student's batch.

    student_logits: (N, C); scores: (N,); student_rows: (N,) bool from ``to_student``;
    teacher_logits: (K, C) for the K rows where ``student_rows`` is False, in order, or ``None``
    when the Teacher could not answer (those rows keep the Student's answer, marked ``FALLBACK``).
    """
    teacher_rows = ~student_rows
    logits = np.array(student_logits, dtype=np.float32, copy=True)
    route = np.where(student_rows, STUDENT, TEACHER).astype(np.int8)
    if teacher_logits is None:
        route[teacher_rows] = FALLBACK
    else:
        if teacher_logits.shape != (int(teacher_rows.sum()), logits.shape[1]):
            raise ValueError(
                f"teacher answered shape {teacher_logits.shape}, expected "
                f"{(int(teacher_rows.sum()), logits.shape[1])}"
            )
        logits[teacher_rows] = teacher_logits
    return Routed(logits=logits, scores=np.asarray(scores, dtype=np.float32), route=route)


def request_slices(counts: list[int], total: int) -> list[slice]:
    """The rows of each request in a batch made by concatenating requests of ``counts`` rows;
    ``total`` is the batch's row count, and they must agree."""
    if sum(counts) != total:
        raise ValueError(f"requests hold {sum(counts)} rows but the batch has {total}")
    stops = np.cumsum(counts).tolist()
    return [slice(stop - count, stop) for count, stop in zip(counts, stops, strict=True)]


def check_batch(images: np.ndarray) -> None:
    """Reject an empty batch, or one holding NaN or infinite values (no score is meaningful)."""
    if len(images) == 0:
        raise RequestError("empty batch: send at least one row")
    if np.issubdtype(images.dtype, np.floating) and not np.isfinite(images).all():
        bad = int((~np.isfinite(images)).reshape(len(images), -1).any(axis=1).sum())
        raise RequestError(f"input holds NaN or Inf values in {bad} of {len(images)} rows")
