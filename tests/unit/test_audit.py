"""The live audit's arithmetic (``ebjr.core.audit``): the Wilson interval, the window of the
last audited rows, the drift test against calibration, and the uniform sample."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from ebjr.core.audit import (
    MIN_ROWS,
    AgreementTally,
    AuditWindow,
    Estimate,
    Expectation,
    sample,
    wilson,
)


@pytest.mark.parametrize(("k", "n"), [(0, 50), (3, 500), (27, 4270), (40, 200), (200, 200)])
def test_wilson_is_scipys_wilson_interval(k, n):
    expected = binomtest(k, n).proportion_ci(confidence_level=0.99, method="wilson")
    assert wilson(k, n) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_the_window_keeps_only_the_last_rows():
    window = AuditWindow(4)
    assert window.estimate() == Estimate(0.0, 0.0, 1.0, 0)
    window.add(np.array([True, False, False]))  # the last two disagree
    assert (window.estimate().rate, window.estimate().rows) == (2 / 3, 3)
    window.add(np.array([True, True, True]))  # the two oldest (one disagreeing) fall out
    assert (window.estimate().rate, window.estimate().rows) == (1 / 4, 4)
    window.add(np.ones(10, dtype=bool))  # a batch larger than the window
    assert (window.estimate().rate, window.estimate().rows) == (0.0, 4)
    with pytest.raises(ValueError, match="at least one row"):
        AuditWindow(0)


def test_drift_is_the_live_interval_leaving_the_calibrated_one():
    calibrated = Expectation(kept=4270, disagree=27)  # 0.63%, the default router's
    assert calibrated.drift(Estimate.of(3, 500)) is None  # clean traffic
    assert calibrated.drift(Estimate.of(30, 200)) == "above"  # 15%: noisy traffic
    assert calibrated.drift(Estimate.of(0, 5000)) == "below"
    assert calibrated.drift(Estimate.of(MIN_ROWS - 1, MIN_ROWS - 1)) is None  # too few rows


def test_clean_windows_rarely_drift():
    """At the calibrated rate, 2000 windows of 500 rows leave the interval < 1% of the time."""
    calibrated = Expectation(kept=4270, disagree=27)
    rng = np.random.default_rng(0)
    drifts = [
        calibrated.drift(Estimate.of(int(k), 500)) for k in rng.binomial(500, 27 / 4270, 2000)
    ]
    assert sum(d is not None for d in drifts) / len(drifts) < 0.01


def test_the_sample_is_uniform_over_the_kept_rows_only():
    rng = np.random.default_rng(1)
    kept = np.arange(100_000) % 3 != 0
    rows = sample(kept, 0.1, rng)
    assert kept[rows].all()
    assert len(rows) / kept.sum() == pytest.approx(0.1, abs=0.005)
    assert abs(np.mean(rows) - np.mean(np.flatnonzero(kept))) < 500  # spread, not a prefix
    assert len(sample(kept, 0.0, rng)) == 0
    assert (sample(kept, 1.0, rng) == np.flatnonzero(kept)).all()


def test_the_tally_counts_audited_rows_by_agreement_and_class_until_taken():
    tally = AgreementTally(num_classes=4)
    tally.add(np.array([True, False, True]), np.array([2, 2, 0]))
    tally.add(np.array([False]), np.array([3]))
    np.testing.assert_array_equal(tally.take(), [[1, 0, 1, 0], [0, 0, 1, 1]])
    np.testing.assert_array_equal(tally.take(), np.zeros((2, 4)))
