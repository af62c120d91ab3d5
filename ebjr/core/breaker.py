"""A circuit breaker for one later stage of a cascade (pure, thread-safe).

A sick Teacher (hung, refusing, erroring) should cost each request nothing once it is known to
be sick: after ``failures`` consecutive failed or timed-out calls the breaker **opens**, and for
``open_s`` seconds every call is refused at once (the router answers those rows from the earlier
stage, route ``student_fallback``, or fails them in ``fail`` mode) instead of waiting a deadline
each. Then it is **half-open**: one probe call goes through; an answer closes the breaker, a
failure opens it again for another ``open_s``.

``allow()``, ``succeeded()`` and ``failed()`` return the new state when the call changed it
(``None`` otherwise), so that the caller can log a change and export it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ebjr.core.routing import StageError

CLOSED, HALF_OPEN, OPEN = 0, 1, 2  # the values of the ``ebjr_breaker_state`` gauge
STATE_NAMES = ("closed", "half_open", "open")


class CircuitOpen(StageError):
    """A later stage was not called: its breaker is open."""


class CircuitBreaker:
    """Closed -> open after ``failures`` consecutive failures -> half-open after ``open_s``
    seconds (one probe) -> closed on the probe's success, open again on its failure."""

    def __init__(
        self, failures: int = 3, open_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1:
            raise ValueError(f"breaker_failures must be >= 1, not {failures}")
        if not open_s > 0:
            raise ValueError(f"breaker_open_s must be > 0, not {open_s}")
        self.failures, self.open_s, self.clock = failures, open_s, clock
        self.state = CLOSED
        self.opens = 0  # times it opened, for the metrics
        self._streak = 0  # consecutive failures
        self._opened_at = 0.0
        self._probing = False
        self._lock = threading.Lock()

    def allow(self) -> tuple[bool, int | None]:
        """Whether a call may go now, and the new state if this changed it (open -> half-open:
        this call is the probe)."""
        with self._lock:
            if self.state == CLOSED:
                return True, None
            if self.state == OPEN and self.clock() - self._opened_at >= self.open_s:
                self.state, self._probing = HALF_OPEN, True
                return True, HALF_OPEN
            return False, None  # open, or half-open with its probe still out

    def succeeded(self) -> int | None:
        """A call answered: the streak ends and the breaker closes."""
        with self._lock:
            self._streak, self._probing = 0, False
            if self.state == CLOSED:
                return None
            self.state = CLOSED
            return CLOSED

    def failed(self) -> int | None:
        """A call failed or timed out: a failed probe, or the ``failures``-th in a row, opens
        the breaker."""
        with self._lock:
            self._streak += 1
            probe, self._probing = self.state == HALF_OPEN, False
            if not probe and (self.state == OPEN or self._streak < self.failures):
                return None
            self.state, self._opened_at = OPEN, self.clock()
            self.opens += 1
            return OPEN
