"""The EBJR routing decision (paper eqs. 6-7) and the per-request threshold.

A row goes to the Student when its score is at or above its request's threshold
(``s(x) >= t``, ties included), otherwise to the Teacher. ``t = -inf`` therefore means
always-Student and ``t = +inf`` always-Teacher.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# Route codes per row, and their names as the router returns them. ``middle``: a stage
# between the Student and the Teacher answered (N-stage cascades,
# ``ebjr.core.cascade_calibration``); ``student_budget``: the row wanted the Teacher, but the
# capacity guard (``ebjr.core.budget``) kept the answer it had; ``student_overload``: the same,
# by the load shedder, while the router was overloaded.
STUDENT, TEACHER, FALLBACK, MIDDLE, BUDGET, OVERLOAD = 0, 1, 2, 3, 4, 5
ROUTE_NAMES = (
    "student",
    "teacher",
    "student_fallback",
    "middle",
    "student_budget",
    "student_overload",
)
Guard = Callable[[np.ndarray, int], np.ndarray]  # (scores (K,), batch rows N) -> admitted (K,)


class RequestError(ValueError):
    """A request the router rejects with a clear message (HTTP 400 / gRPC INVALID_ARGUMENT)."""


def parse_thresholds(value: object, count: int, name: str = "threshold") -> tuple[float, ...]:
    """One threshold per stage boundary: ``count`` numbers, comma-separated in a string
    (``"0.5,-1"``), or for a two-stage router one number as ``parse_threshold`` takes it."""
    values = value.split(",") if isinstance(value, str) else [value]
    if len(values) != count:
        raise RequestError(
            f"{name} needs {count} comma-separated values, one per stage boundary; got {value!r}"
        )
    return tuple(parse_threshold(v, name) for v in values)


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

    logits: (N, C) float32, from whichever model answered each row (a detector's outputs
        packed in one row per image: ``ebjr.core.packing.RowLayout``)
    scores: (N,) float32, the routing score of the last stage that scored each row (the
        Student's, unless the row reached a middle stage)
    route: (N,) int8, one of ``ROUTE_NAMES``' codes per row
    """

    logits: np.ndarray
    scores: np.ndarray
    route: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        """(N,) int64 predicted class per row."""
        return np.argmax(self.logits, axis=1).astype(np.int64)


class StageError(RuntimeError):
    """A stage after the Student could not answer (an error or a timeout)."""


class Policy(Protocol):
    def decide(
        self, logits: np.ndarray, thresholds: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def cascade(
    batch: np.ndarray,
    thresholds: np.ndarray,
    policies: list[Policy],
    run: Callable[[int, np.ndarray], np.ndarray],
    guards: Sequence[tuple[Guard, int]] = (),
) -> tuple[Routed, StageError | None]:
    """Route ``batch`` through ``len(policies) + 1`` stages, Student first, Teacher last.

    ``thresholds: (N, S - 1)``, one column per stage boundary. ``policies[k]`` decides for
    stage ``k`` (``ebjr.core.policy``). ``run(k, images) -> logits`` runs stage ``k``, once, on only
    the rows no earlier stage kept; a failure of a stage after the first raises ``StageError``.
    Then the rows waiting on it keep the last answer they have, marked ``FALLBACK``, no later
    stage runs, and the error comes back with the answer. Each of ``guards``, ``(admit,
    route)`` in order (the capacity guard, the load shedder: ``ebjr.core.budget``), picks with
    ``admit(scores, N)`` which of the rows about to reach the Teacher (their ``scores``) may;
    the others keep the answer they have, marked ``route``.
    """
    logits = run(0, batch)
    scores, keep, answers = policies[0].decide(logits, thresholds[:, 0])
    out = np.array(answers, dtype=np.float32, copy=True)
    scores = np.array(scores, dtype=np.float32, copy=True)
    route = np.where(keep, STUDENT, TEACHER).astype(np.int8)
    pending = np.flatnonzero(~keep)
    for stage in range(1, len(policies) + 1):
        for admit, held in guards if stage == len(policies) else ():
            if len(pending):
                admitted = admit(scores[pending], len(batch))
                route[pending[~admitted]] = held
                pending = pending[admitted]
        if len(pending) == 0:
            break
        try:
            logits = run(stage, batch[pending])
        except StageError as err:
            route[pending] = FALLBACK
            return Routed(out, scores, route), err
        expected = (len(pending), out.shape[1])
        if logits.shape != expected:
            raise ValueError(f"stage {stage} answered shape {logits.shape}, expected {expected}")
        if stage == len(policies):  # the Teacher answers every row that reaches it
            out[pending] = logits
            break
        s, k, a = policies[stage].decide(logits, thresholds[pending, stage])
        out[pending], scores[pending] = a, s
        route[pending[k]] = MIDDLE
        pending = pending[~k]
    return Routed(out, scores, route), None


def request_slices(counts: list[int], total: int) -> list[slice]:
    """The rows of each request in a batch made by concatenating requests of ``counts`` rows;
    ``total`` is the batch's row count, and they must agree."""
    if sum(counts) != total:
        raise ValueError(f"requests hold {sum(counts)} rows but the batch has {total}")
    stops = np.cumsum(counts).tolist()
    return [slice(stop - count, stop) for count, stop in zip(counts, stops, strict=True)]


def in_pieces(call: Callable[[np.ndarray], np.ndarray], rows: np.ndarray, size: int) -> np.ndarray:
    """``call`` on ``rows: (N, ...)`` in pieces of at most ``size`` rows (a stage's batch
    limit), its outputs ``(n, ...)`` concatenated in order; one call when ``N <= size``."""
    if len(rows) <= size:
        return call(rows)
    return np.concatenate([call(rows[i : i + size]) for i in range(0, len(rows), size)])


def check_batch(images: np.ndarray) -> None:
    """Reject an empty batch, or one holding NaN or infinite values (no score is meaningful)."""
    if len(images) == 0:
        raise RequestError("empty batch: send at least one row")
    if np.issubdtype(images.dtype, np.floating) and not np.isfinite(images).all():
        bad = int((~np.isfinite(images)).reshape(len(images), -1).any(axis=1).sum())
        raise RequestError(f"input holds NaN or Inf values in {bad} of {len(images)} rows")
