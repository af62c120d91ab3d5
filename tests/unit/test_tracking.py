"""``teacher_fraction`` that holds under drift (``ebjr.core.tracking``): the live window's
quantile sends the asked share of the window on, and the knob falls back to the calibration
until the window has seen enough rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ebjr.core.calibration import calibrate, resolve_thresholds
from ebjr.core.tracking import ScoreWindow


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
def test_the_threshold_sends_the_asked_share_of_the_window_on(fraction):
    rng = np.random.default_rng(0)
    window = ScoreWindow(1000)
    window.add(rng.normal(size=5000))  # only the last 1000 count
    last = rng.normal(loc=-3.0, size=1000)  # drifted: every score lower
    window.add(last)
    t = window.threshold(fraction)
    assert (last < t).mean() == pytest.approx(fraction, abs=1e-9)


def test_ties_and_non_finite_scores():
    window = ScoreWindow(10, min_rows=1)
    window.add(np.array([1.0, 1.0, 1.0, 2.0, -np.inf, np.nan, 3.0, 3.0, 4.0, 5.0]))
    assert window.threshold(0.2) == np.nextafter(-np.inf, np.inf)  # the two non-finite rows
    assert window.threshold(0.3) > 1.0  # a tie goes on together
    assert window.threshold(0.0) == -np.inf and window.threshold(1.0) == np.inf


def test_the_calibration_serves_until_the_window_is_full_enough():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=1000)
    record = calibrate(scores, scores > 0, np.ones(1000, dtype=bool), 1.0, 10.0)
    asked = json.dumps({"teacher_fraction": 0.25})
    window = ScoreWindow(500, min_rows=200)
    calibrated = record.thresholds_for("teacher_fraction", 0.25)
    assert resolve_thresholds(asked, record.parity_thresholds, record, window) == calibrated
    window.add(scores[:199] - 5.0)
    assert resolve_thresholds(asked, record.parity_thresholds, record, window) == calibrated
    window.add(scores[199:400] - 5.0)
    (live,) = resolve_thresholds(asked, record.parity_thresholds, record, window)
    assert live == window.threshold(0.25) != calibrated[0]
    # the other knobs never read the window
    assert resolve_thresholds(json.dumps({"threshold": 1.5}), (0.0,), record, window) == (1.5,)
    with pytest.raises(ValueError, match="at least one row"):
        ScoreWindow(0)
