"""The router's metric counts, tallied in its own process (pure NumPy, thread-safe).

The router adds each batch's counts here, a few NumPy operations, and a background flusher
sends the totals to Triton's metrics API every so often (``ebjr.serving.metrics``): no
per-row, per-request or even per-batch metric round trip sits on the request path.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ebjr.core.routing import ROUTE_NAMES

OUTCOMES = ("ok", "invalid", "error", "refused")  # indexed by outcome code
FLUSH_S = 0.5  # how often the router sends its tally to Triton's metrics


@dataclass(frozen=True)
class Counts:
    """What happened since the last ``Tally.take``.

    rows: (len(ROUTE_NAMES),) int64 rows per route; outcomes: (len(OUTCOMES),) int64 requests per
    outcome; teacher_failures: failed or timed-out Teacher calls; short_circuited: rows a later
    stage's open circuit breaker answered without a call; buckets: (B + 1,) int64 finite
    scores ``<=`` each of the B edges, cumulative, then all of them (``+Inf``); score_sum: their
    sum; stage_calls, stage_rows: (S - 1,) int64 calls made to each later stage (stage 1
    first) and the rows they carried.
    """

    rows: np.ndarray
    outcomes: np.ndarray
    teacher_failures: int
    short_circuited: int
    buckets: np.ndarray
    score_sum: float
    stage_calls: np.ndarray
    stage_rows: np.ndarray


class Tally:
    """Counts of routed rows, request outcomes, Teacher failures, short-circuited rows, the
    calls to each of ``later_stages`` stages and a score histogram with upper bucket edges
    ``edges: (B,)`` ascending (Prometheus ``le`` semantics)."""

    def __init__(self, edges: list[float], later_stages: int = 1) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self.later_stages = later_stages
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._rows = np.zeros(len(ROUTE_NAMES), dtype=np.int64)
        self._outcomes = np.zeros(len(OUTCOMES), dtype=np.int64)
        self._failures = 0
        self._short_circuited = 0
        self._per_bucket = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self._sum = 0.0
        self._stage_calls = np.zeros(self.later_stages, dtype=np.int64)
        self._stage_rows = np.zeros(self.later_stages, dtype=np.int64)

    def add_rows(self, routes: np.ndarray, scores: np.ndarray) -> None:
        """routes: (N,) int route codes; scores: (N,) the routing score (non-finite skipped)."""
        finite = np.asarray(scores, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        rows = np.bincount(routes, minlength=len(ROUTE_NAMES))
        per_bucket = np.bincount(
            np.searchsorted(self.edges, finite, side="left"), minlength=len(self.edges) + 1
        )
        with self._lock:
            self._rows += rows
            self._per_bucket += per_bucket
            self._sum += float(finite.sum())

    def add_outcomes(self, codes: list[int]) -> None:
        """codes: one ``OUTCOMES`` index per request."""
        counts = np.bincount(np.asarray(codes, dtype=np.int64), minlength=len(OUTCOMES))
        with self._lock:
            self._outcomes += counts

    def add_teacher_failure(self) -> None:
        with self._lock:
            self._failures += 1

    def add_short_circuit(self, rows: int) -> None:
        with self._lock:
            self._short_circuited += rows

    def add_stage_call(self, stage: int, rows: int) -> None:
        """One call to later stage ``stage`` (1 = the first after the Student) with ``rows``."""
        with self._lock:
            self._stage_calls[stage - 1] += 1
            self._stage_rows[stage - 1] += rows

    def take(self) -> Counts:
        """The counts since the last call, and start again from zero."""
        with self._lock:
            counts = Counts(
                self._rows,
                self._outcomes,
                self._failures,
                self._short_circuited,
                np.cumsum(self._per_bucket),
                self._sum,
                self._stage_calls,
                self._stage_rows,
            )
            self._reset()
        return counts
