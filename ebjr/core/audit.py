"""The live audit of the Student's kept answers (pure NumPy, thread-safe).

A uniform sample of the rows the Student keeps is also answered by the Teacher, off the
response path (``ebjr.serving.audit``). This module decides which rows (``sample``), keeps the
last ``size`` audited rows' agreement (``AuditWindow``), counts them for export
(``AgreementTally``) and says whether their disagreement
with the Teacher has left what calibration measured at the served operating point
(``Expectation``): both sides are Wilson intervals at ``Z`` (99%), and the audit "drifts" when
the live lower bound is above the calibrated upper bound, or the live upper bound below the
calibrated lower one.

Shapes: ``kept: (N,) bool``, ``agree: (M,) bool``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ebjr.core.window import RowWindow

Z = 2.5758293035489004  # two-sided 99%
MIN_ROWS = 50  # fewer audited rows say nothing either way
# The served audit's pace (ebjr.serving.audit): one Teacher call of at most BATCH_ROWS rows per
# FLUSH_S (ebjr.core.tally) per router instance, 16 rows/s, enough for the alert to judge a
# 200-row window within its minute on a saturated server (tests/server/test_server_audit.py).
# The default Teacher's CPU per row (one thread) is 3.57 ms alone, 3.06 ms at 8 rows and 3.09 ms
# at 16.
BATCH_ROWS = 8


def wilson(k: int, n: int, z: float = Z) -> tuple[float, float]:
    """The Wilson score interval of a share ``k / n`` (``(0, 1)`` for ``n == 0``)."""
    if n == 0:
        return 0.0, 1.0
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Estimate:
    """A share of disagreeing rows: ``rate`` on ``rows`` rows, and its interval."""

    rate: float
    lower: float
    upper: float
    rows: int

    @classmethod
    def of(cls, disagree: int, rows: int) -> Estimate:
        lower, upper = wilson(disagree, rows)
        return cls(disagree / rows if rows else 0.0, lower, upper, rows)


@dataclass(frozen=True)
class Expectation:
    """What calibration measured at the router's default thresholds: ``disagree`` of the
    ``kept`` calibration rows the Student keeps answer differently from the Teacher."""

    kept: int
    disagree: int

    @property
    def estimate(self) -> Estimate:
        return Estimate.of(self.disagree, self.kept)

    def drift(self, live: Estimate) -> str | None:
        """``"above"`` or ``"below"`` when ``live`` has left the calibrated interval, else
        None (also while it holds fewer than ``MIN_ROWS`` rows)."""
        if live.rows < MIN_ROWS:
            return None
        calibrated = self.estimate
        if live.lower > calibrated.upper:
            return "above"
        if live.upper < calibrated.lower:
            return "below"
        return None


def sample(kept: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """The indices of the audited rows: each kept row independently with probability
    ``share``."""
    return np.flatnonzero(np.asarray(kept, dtype=bool) & (rng.random(len(kept)) < share))


class AuditWindow:
    """The agreement of the last ``size`` audited rows."""

    def __init__(self, size: int) -> None:
        self._disagree = RowWindow(size, bool, "the audit window")

    def add(self, agree: np.ndarray) -> None:
        self._disagree.add(~np.asarray(agree, dtype=bool))

    def estimate(self) -> Estimate:
        disagree = self._disagree.values()
        return Estimate.of(int(disagree.sum()), len(disagree))


class AgreementTally:
    """Audited rows counted by agreement and by the Student's answered class, since the last
    ``take`` (the audit's worker adds and takes; one thread)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self._counts = np.zeros((2, num_classes), dtype=np.int64)

    def add(self, agree: np.ndarray, classes: np.ndarray) -> None:
        """``agree: (M,) bool``, ``classes: (M,) int``."""
        agree = np.asarray(agree, dtype=bool)
        for row, rows in enumerate((agree, ~agree)):
            self._counts[row] += np.bincount(classes[rows], minlength=self.num_classes)

    def take(self) -> np.ndarray:
        """``(2, C) int64``: rows that agreed (row 0) and disagreed (row 1) per class; then
        zero."""
        counts, self._counts = self._counts, np.zeros_like(self._counts)
        return counts
