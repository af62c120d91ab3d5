"""Regression routing without Triton: scores on packed rows, the router's calibration in
degrees of error and the ``max_error`` knob."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ebjr.core.calibration import resolve_thresholds
from ebjr.core.packing import RowLayout
from ebjr.core.routing import RequestError
from ebjr.core.tensors import TensorSpec
from ebjr.tasks.regression.repository import METRIC, calibrate_regressor
from ebjr.tasks.regression.scores import (
    SCORES,
    EnergyHead,
    predict,
    regression_score,
    score,
)

B, M = 6, 5
LAYOUT = RowLayout(
    (
        TensorSpec("angle_logits", (B,), "TYPE_FP32"),
        TensorSpec("direct", (1,), "TYPE_FP32"),
        TensorSpec("candidates", (M,), "TYPE_FP32"),
        TensorSpec("candidate_scores", (M,), "TYPE_FP32"),
    )
)
HEAD = EnergyHead(low=-15.0, bin_width=5.0, proposal_std=4.0)


def fake_outputs(n: int, seed: int, sharpness: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    direct = rng.uniform(-10, 10, (n, 1)).astype(np.float32)
    candidates = (direct + 4 * rng.standard_normal((n, M))).astype(np.float32)
    return {
        "angle_logits": (sharpness * rng.normal(size=(n, B))).astype(np.float32),
        "direct": direct,
        "candidates": candidates,
        "candidate_scores": rng.normal(size=(n, M)).astype(np.float32),
    }


def test_scores_on_packed_rows_equal_scores_on_the_outputs():
    found = fake_outputs(20, 0, 3.0)
    rows = LAYOUT.pack([found[name] for name in LAYOUT.names])
    for name in SCORES:
        np.testing.assert_array_equal(
            regression_score(name, LAYOUT, HEAD)(rows), score(name, found, HEAD)
        )
    with pytest.raises(ValueError, match="serves one of"):
        regression_score("negative_variance", LAYOUT, HEAD)
    assert EnergyHead.from_parameters(HEAD.parameters()) == HEAD


@pytest.fixture(scope="module")
def calibrated():
    student, teacher = fake_outputs(400, 1, 3.0), fake_outputs(400, 2, 3.0)
    angles = predict("binned_mean", teacher, HEAD) + np.random.default_rng(3).normal(0, 0.5, 400)
    return calibrate_regressor(student, teacher, angles, HEAD, (1e6, 1e7), ("s", "t"))


def test_calibration_reaches_the_teachers_error_within_the_tolerance(calibrated):
    record, predictions = calibrated
    assert len(predictions) == 2 and set(predictions) <= {
        "binned_mean",
        "binned_mode",
        "sampled_mean",
    }
    assert record.metric.name == "negative_mae" and record.scores[0] in SCORES
    teacher_mae = -record.teacher_accuracy
    assert -record.parity_accuracy <= (1 + METRIC.tolerance) * teacher_mae + 1e-9
    assert np.all(np.diff(record.table.flops) > 0) and np.all(np.diff(record.table.accuracy) > 0)
    with pytest.raises(ValueError, match="test split"):
        calibrate_regressor({}, {}, np.zeros(1), HEAD, (1.0, 2.0), ("s", "t"), "test")


def test_max_error_is_the_regressors_knob_in_degrees(calibrated):
    record, _ = calibrated
    loose = float(-record.table.accuracy.min())  # the Student alone
    assert record.thresholds_for("max_error", loose) == (-np.inf,)
    tight = float(-record.table.accuracy.max())
    (t,) = resolve_thresholds(json.dumps({"max_error": tight}), (0.0,), record)
    i = int(np.flatnonzero(record.table.thresholds[:, 0] == t)[0])
    assert -record.table.accuracy[i] <= tight + 1e-9
    with pytest.raises(RequestError, match="max_error must be >="):
        record.thresholds_for("max_error", tight / 2)
    with pytest.raises(RequestError, match="give max_error"):
        resolve_thresholds('{"min_accuracy": 0.5}', (0.0,), record)
