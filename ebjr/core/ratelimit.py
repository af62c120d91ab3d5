"""Rate-limited messages: say a repeated thing at most once per interval, with a count of what
was held back (so a flood of identical failures neither floods the log nor vanishes)."""

from __future__ import annotations

import threading
import time


class RateLimited:
    """``take()`` returns how many calls were held back since the last message when a message
    is due (at most one every ``interval_s``), else ``None``."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self._last = -float("inf")
        self._held = 0
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.interval_s:
                self._held += 1
                return None
            held, self._held, self._last = self._held, 0, now
            return held
