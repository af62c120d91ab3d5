"""A later stage's deadline, fitted to the machine that serves it (pure, thread-safe).

The builder writes ``teacher_timeout_ms`` from the Teacher's cost on the machine that built the
repository (``ebjr.build.deadline``). A repository served on a slower or busier machine would
then time out a healthy Teacher, and its rows would fall back to the Student. So the router
waits ``MULTIPLE`` times the median of the stage's last ``WINDOW`` answered calls, never less
than the configured deadline and never more than ``CEILING`` times it. Only answered calls are
evidence: a hung stage answers none, so its deadline stays where it was, and its breaker opens.
"""

from __future__ import annotations

import threading
from collections import deque

MULTIPLE = 4  # the deadline over the typical call, measured or observed
WINDOW = 32  # answered calls the observed median is taken over
CEILING = 4  # the most the deadline grows past its configured value


class StageDeadline:
    """``configured_s`` (0 = no deadline, which stays so), raised to ``MULTIPLE`` x the median
    duration of the last ``WINDOW`` answered calls, capped at ``CEILING`` x ``configured_s``."""

    def __init__(self, configured_s: float) -> None:
        if configured_s < 0:
            raise ValueError(f"a deadline must be >= 0 s (0 = none), not {configured_s}")
        self.configured_s = configured_s
        self._durations: deque[float] = deque(maxlen=WINDOW)
        self._seconds = configured_s
        self._lock = threading.Lock()

    @property
    def seconds(self) -> float:
        """The deadline for the next call, in seconds (0 = none)."""
        return self._seconds

    def answered(self, duration_s: float) -> None:
        """Record an answered call that took ``duration_s`` seconds."""
        if not self.configured_s:
            return
        with self._lock:
            self._durations.append(duration_s)
            ordered = sorted(self._durations)
            median = ordered[len(ordered) // 2]
            self._seconds = min(
                CEILING * self.configured_s, max(self.configured_s, MULTIPLE * median)
            )
