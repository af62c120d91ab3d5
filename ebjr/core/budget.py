"""The guards on the rows about to reach the Teacher: the capacity guard (``TeacherBudget``)
and the load shedder (``LoadShedder``). Both pick, among the rows that want the Teacher, the
least familiar ones (lowest score) first, as many as their cap allows; the others keep the
Student's answer. The guard caps the Teacher's share over time, whatever the load (it protects a
Teacher pool of fixed size from a shift in traffic); the shedder caps it only while the router
is overloaded (it trades accuracy for latency). ``ebjr.core.routing.cascade`` applies them in
that order.

The capacity guard: a cap on the Teacher's share of rows over a sliding window.

A shift in traffic (noisy or unfamiliar inputs) lowers every routing score at once and can send
nearly every row to the Teacher, flooding the Teacher pool exactly when it helps least. With a
cap ``share`` over the last ``window_s`` seconds, a batch may send to the Teacher only as many
rows as keep the window's Teacher share at or under the cap; among the rows that want the
Teacher, the least familiar ones (lowest score) go first, the rest keep the answer they have
(route ``student_budget``). Off unless a router's config sets ``teacher_budget_share``.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable

import numpy as np


def lowest_first(scores: np.ndarray, allowed: int) -> np.ndarray:
    """Which of the rows that want the Teacher (``scores: (K,)``) may go when only ``allowed``
    may: the least familiar (lowest score) first, ties in row order. ``-> (K,) bool``."""
    admitted = np.zeros(len(scores), dtype=bool)
    admitted[np.argsort(scores, kind="stable")[: max(allowed, 0)]] = True
    return admitted


class TeacherBudget:
    """``admit(scores) -> (K,) bool`` for the ``K`` rows of one batch that want the Teacher,
    given ``rows``, the batch's size. Thread-safe; one per router instance."""

    def __init__(
        self, share: float, window_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"teacher_budget_share must be in (0, 1], not {share}")
        if not window_s > 0:
            raise ValueError(f"teacher_budget_window_s must be > 0, not {window_s}")
        self.share, self.window_s, self.clock = share, window_s, clock
        self._batches: collections.deque[tuple[float, int, int]] = collections.deque()
        self._rows = self._teacher = 0
        self._lock = threading.Lock()

    def admit(self, scores: np.ndarray, rows: int) -> np.ndarray:
        """Which of the rows wanting the Teacher (``scores: (K,)``, in a batch of ``rows``
        rows) may go: the lowest scores first, as many as the cap allows."""
        with self._lock:
            now = self.clock()
            while self._batches and self._batches[0][0] <= now - self.window_s:
                _, n, k = self._batches.popleft()
                self._rows -= n
                self._teacher -= k
            room = math.floor(self.share * (self._rows + rows) + 1e-9) - self._teacher
            allowed = int(np.clip(room, 0, len(scores)))
            admitted = lowest_first(scores, allowed)
            self._batches.append((now, rows, allowed))
            self._rows += rows
            self._teacher += allowed
        return admitted


class LoadShedder:
    """Graceful degradation under overload (off unless a router's config sets
    ``shed_requests``). An execution that takes in at least ``requests`` requests (those
    admission control refuses included) means a queue has built up in front of the router (at
    its own pace it sees a few); then at most ``share`` of that batch's rows go to the
    Teacher, the lowest scores first, and the rest keep the Student's answer (route
    ``student_overload``). Under a full load the Teacher's rows cost most of the router's time
    (a Teacher row costs several Student rows), so shedding them raises the router's capacity
    at once; accuracy drops only while it lasts."""

    def __init__(self, requests: int, share: float) -> None:
        if requests < 1:
            raise ValueError(f"shed_requests must be >= 1 (0 = off), not {requests}")
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"shed_teacher_share must be in [0, 1], not {share}")
        self.requests, self.share = requests, share

    def guard(self, requests: int) -> Callable[[np.ndarray, int], np.ndarray]:
        """The guard for one execution of ``requests`` requests: ``(scores (K,), rows) ->
        admitted (K,)``."""

        def admit(scores: np.ndarray, rows: int) -> np.ndarray:
            if requests < self.requests:
                return np.ones(len(scores), dtype=bool)
            return lowest_first(scores, math.floor(self.share * rows + 1e-9))

        return admit
