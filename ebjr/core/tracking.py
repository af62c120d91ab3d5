"""A ``teacher_fraction`` that holds under drift (opt-in: ``track_window`` in ``config.pbtxt``).

The calibrated ``teacher_fraction`` knob reads a threshold off the validation scores: the
share asked goes to the Teacher only while live scores look like validation's. Noisy or
unfamiliar inputs lower every score at once and send far more. ``ScoreWindow`` keeps the
Student's routing scores of the last ``size`` live rows of one router instance; a request for
``teacher_fraction = f`` is then served the ``f``-quantile of that window, so the share asked
is the share of recent traffic sent on. Until the window holds ``min_rows`` rows the
calibrated threshold serves.

It moves the threshold, not the rows: the capacity guard (``ebjr.core.budget``) still caps the
Teacher share of every request whatever its knob, and load shedding still overrides both while
the router is overloaded. Pure NumPy, thread-safe. Shapes: ``scores: (N,)``.
"""

from __future__ import annotations

import numpy as np

from ebjr.core.window import RowWindow

MIN_ROWS = 200


class ScoreWindow:
    """The routing scores of the last ``size`` rows."""

    def __init__(self, size: int, min_rows: int = MIN_ROWS) -> None:
        self._scores = RowWindow(size, np.float64, "track_window")
        self.min_rows = min(min_rows, size)

    def add(self, scores: np.ndarray) -> None:
        """Record the live rows' scores (non-finite ones, e.g. a specialized Student's "other"
        rows, say nothing about where a finite threshold falls, but they do reach the
        Teacher: NaN is kept as ``-inf``)."""
        values = np.asarray(scores, dtype=np.float64)
        self._scores.add(np.where(np.isnan(values), -np.inf, values))

    def threshold(self, fraction: float) -> float | None:
        """The threshold that sends ``fraction`` of the window on (rows with a score below it),
        or None while the window holds fewer than ``min_rows`` rows."""
        scores = np.sort(self._scores.values())
        if len(scores) < self.min_rows:
            return None
        k = int(round(fraction * len(scores)))  # rows to send on
        if k <= 0:
            return -np.inf
        if k >= len(scores):
            return np.inf
        return float(np.nextafter(scores[k - 1], np.inf))  # the k lowest are below it
