"""The last ``size`` values of a stream of rows: a ring buffer, thread-safe (pure NumPy).
The live audit keeps its rows' disagreement in one (``ebjr.core.audit``), the tracked
``teacher_fraction`` its routing scores (``ebjr.core.tracking``)."""

from __future__ import annotations

import threading

import numpy as np


class RowWindow:
    """The last ``size`` values added, of ``dtype``; ``name`` says whose, in errors."""

    def __init__(self, size: int, dtype: type, name: str) -> None:
        if size < 1:
            raise ValueError(f"{name} must hold at least one row, not {size}")
        self._values = np.zeros(size, dtype=dtype)
        self._next = self._filled = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self._values)

    def add(self, values: np.ndarray) -> None:
        """Append ``values: (N,)``; the oldest fall out."""
        values = np.asarray(values, dtype=self._values.dtype)[-self.size :]
        with self._lock:
            slots = (self._next + np.arange(len(values))) % self.size
            self._values[slots] = values
            self._next = int((self._next + len(values)) % self.size)
            self._filled = min(self.size, self._filled + len(values))

    def values(self) -> np.ndarray:
        """A copy of the values held, ``(min(added, size),)``."""
        with self._lock:
            return self._values[: self._filled].copy()
