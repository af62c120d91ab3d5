import json
import math
from dataclasses import replace

import numpy as np
import pytest

from ebjr.core.calibration import (
    ACCURACY,
    Frontier,
    Metric,
    calibrate,
    cheapest_reaching,
    cheapest_score,
    crossing_threshold,
    read_calibration,
    resolve_thresholds,
    sweep,
    write_calibration,
)
from ebjr.core.routing import RequestError

TOLERANCE = ACCURACY.tolerance


def brute_force(scores, student_ok, teacher_ok, t, fs, ft):
    to_teacher = scores < t
    n_t = to_teacher.sum()
    accuracy = (np.where(to_teacher, teacher_ok, student_ok)).mean()
    flops = ((len(scores) - n_t) * fs + n_t * (fs + ft)) / len(scores)
    return accuracy, n_t / len(scores), flops


@pytest.mark.parametrize("seed", range(5))
def test_sweep_matches_a_brute_force_count(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=23).astype(np.float32)  # many ties
    student_ok, teacher_ok = rng.random(23) < 0.6, rng.random(23) < 0.8
    result = sweep(scores, student_ok, teacher_ok, 2.0, 10.0)
    assert result.thresholds.shape == (len(np.unique(scores)) + 2, 1)  # one boundary
    assert result.thresholds[0, 0] == -np.inf and result.thresholds[-1, 0] == np.inf
    for i, t in enumerate(result.thresholds[:, 0]):
        acc, frac, flops = brute_force(scores, student_ok, teacher_ok, t, 2.0, 10.0)
        assert result.accuracy[i] == pytest.approx(acc)
        assert result.teacher_fraction[i] == pytest.approx(frac)
        assert result.flops[i] == pytest.approx(flops)


def test_sweep_end_points_are_student_and_teacher():
    scores = np.array([0.3, 0.1, 0.2])
    result = sweep(scores, np.array([1, 0, 0], bool), np.array([1, 1, 0], bool), 1.0, 4.0)
    assert (result.accuracy[0], result.flops[0]) == (pytest.approx(1 / 3), 1.0)
    assert (result.accuracy[-1], result.flops[-1]) == (pytest.approx(2 / 3), 5.0)


def test_cheapest_reaching_and_crossing_point():
    scores = np.arange(10, dtype=np.float64)
    student_ok = scores >= 5  # the Student is right exactly on high scores
    result = sweep(scores, student_ok, np.ones(10, bool))
    i = cheapest_reaching(result.accuracy, result.teacher_fraction, 1.0)
    assert result.thresholds[i, 0] == 5.0 and result.teacher_fraction[i] == 0.5
    assert cheapest_reaching(result.accuracy, result.teacher_fraction, 1.1) is None
    assert crossing_threshold(scores, student_ok, bins=10) == pytest.approx(4.5)


def test_calibrate_refuses_the_test_split():
    with pytest.raises(ValueError, match="test split"):
        calibrate(np.zeros(3), np.ones(3, bool), np.ones(3, bool), 1, 2, split="test")


def make_calibration():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=1000)
    student_ok = rng.random(1000) < 1 / (1 + np.exp(-3 * scores))  # right more often when high
    teacher_ok = rng.random(1000) < 0.95
    return calibrate(scores, student_ok, teacher_ok, 1.0, 10.0), scores, student_ok, teacher_ok


def test_parity_threshold_is_the_cheapest_reaching_teacher_accuracy():
    cal, scores, student_ok, teacher_ok = make_calibration()
    teacher = teacher_ok.mean()

    def accuracy(t):
        return np.where(scores < t, teacher_ok, student_ok).mean()

    assert accuracy(cal.parity_thresholds[0]) >= teacher - TOLERANCE
    cheaper = np.sort(scores)[np.sort(scores) < cal.parity_thresholds[0]]
    assert all(accuracy(t) < teacher - TOLERANCE for t in cheaper)
    assert cal.parity_teacher_fraction == pytest.approx((scores < cal.parity_thresholds[0]).mean())


def test_teacher_fraction_knob_sends_that_share():
    cal, scores, _, _ = make_calibration()
    for fraction in (0.1, 0.3, 0.5):
        (t,) = cal.thresholds_for("teacher_fraction", fraction)
        assert abs((scores < t).mean() - fraction) <= 0.01
    with pytest.raises(RequestError, match="teacher_fraction must be in"):
        cal.thresholds_for("teacher_fraction", 1.5)


@pytest.mark.parametrize("target", [0.80, 0.85, 0.9, 0.93])
def test_min_accuracy_knob_is_the_cheapest_threshold_reaching_it(target):
    """Checked against a brute-force count on the calibration data, not the table."""
    cal, scores, student_ok, teacher_ok = make_calibration()
    (t,) = cal.thresholds_for("min_accuracy", target)

    def accuracy(threshold):
        return np.where(scores < threshold, teacher_ok, student_ok).mean()

    assert accuracy(t) >= target
    # Every table threshold sending fewer rows to the Teacher falls short of the target.
    cheaper = cal.table.thresholds[cal.table.thresholds < t]  # (K, 1): one boundary
    assert len(cheaper) > 0 and all(accuracy(c) < target for c in cheaper)
    with pytest.raises(RequestError, match="min_accuracy must be in"):
        cal.thresholds_for("min_accuracy", 0.9999)


def test_calibration_file_round_trips(tmp_path):
    cal, *_ = make_calibration()
    cal = replace(
        cal,
        evidence={"energy": {"parity_threshold": math.inf, "x": 1.0}},
        popular=(3, 1),
        share=0.75,
    )
    write_calibration(tmp_path / "calibration.json", cal)
    back = read_calibration(tmp_path / "calibration.json")
    np.testing.assert_array_equal(back.table.thresholds, cal.table.thresholds)
    assert back.table.thresholds[-1, 0] == math.inf and back.evidence == cal.evidence
    assert replace(back, table=cal.table) == replace(cal, table=cal.table)


def test_resolve_thresholds_knobs_and_errors():
    cal, *_ = make_calibration()
    assert resolve_thresholds("{}", (4.0,), cal) == (4.0,)
    assert resolve_thresholds("", (4.0,)) == (4.0,)
    assert resolve_thresholds('{"threshold": "7.5", "other": 1}', (4.0,)) == (7.5,)
    assert resolve_thresholds('{"threshold": -Infinity}', (4.0,)) == (-math.inf,)
    assert resolve_thresholds('{"teacher_fraction": "0.3"}', (4.0,), cal) == (
        cal.thresholds_for("teacher_fraction", 0.3)
    )
    assert resolve_thresholds('{"min_accuracy": 0.9}', (4.0,), cal) == (
        cal.thresholds_for("min_accuracy", 0.9)
    )
    with pytest.raises(RequestError, match="max_error is not a knob of this router"):
        resolve_thresholds('{"max_error": 1.0}', (4.0,), cal)
    # an N-stage router takes one threshold per stage boundary
    assert resolve_thresholds('{"threshold": "1,-inf"}', (4.0, 5.0)) == (1.0, -math.inf)
    with pytest.raises(RequestError, match="needs 2 comma-separated values"):
        resolve_thresholds('{"threshold": 1}', (4.0, 5.0))
    with pytest.raises(RequestError, match="at most one"):
        resolve_thresholds('{"threshold": 1, "min_accuracy": 0.5}', (4.0,), cal)
    with pytest.raises(RequestError, match="needs a calibration.json"):
        resolve_thresholds('{"teacher_fraction": 0.3}', (4.0,), None)
    with pytest.raises(RequestError, match="teacher_fraction must not be NaN"):
        resolve_thresholds('{"teacher_fraction": "nan"}', (4.0,), cal)
    with pytest.raises(RequestError, match="NaN"):
        resolve_thresholds('{"threshold": "NaN"}', (4.0,))
    with pytest.raises(RequestError, match="JSON"):
        resolve_thresholds("{not json", (4.0,))


def test_an_older_calibration_file_is_a_clear_error(tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text('{"split": "val", "score": "energy", "table": {"threshold": []}}')
    with pytest.raises(ValueError, match="rebuild the repository"):
        read_calibration(path)


def test_each_metric_says_what_reaching_the_teacher_means():
    assert ACCURACY.parity_target(0.95) == pytest.approx(0.949)
    mae = Metric("negative_mae", "max_error", tolerance=0.02, relative=True, error=True)
    assert mae.parity_target(-1.2) == pytest.approx(-1.224)  # within 2% of the Teacher's MAE
    with pytest.raises(ValueError, match="knob is one of"):
        Metric("f1", "min_f1", tolerance=0.01)
    with pytest.raises(ValueError, match="error metric's knob is max_error"):
        Metric("rmse", "min_accuracy", tolerance=0.01, error=True)


def test_a_tasks_own_metric_travels_in_the_calibration_file(tmp_path):
    """A task declares its metric in its own package; the file carries the whole definition,
    so a router reads it, and serves its knob, without importing the task."""
    front = frontier_of([0.5, 0.7, 0.9], [1.0, 2.0, 3.0])
    iou = Metric("mean_iou", "min_accuracy", tolerance=0.005)
    record = cheapest_score(
        {"energy": front}, 0.9, "val", 3, ("s", "t"), (0.5, 0.9), (1.0, 3.0), metric=iou
    )
    path = tmp_path / "calibration.json"
    write_calibration(path, record)
    back = read_calibration(path)
    assert back.metric == iou
    assert back.thresholds_for("min_accuracy", 0.7) == (1.0,)
    with pytest.raises(RequestError, match="it calibrates mean_iou"):
        back.thresholds_for("max_error", 1.0)
    legacy = json.loads(path.read_text())
    legacy["metric"] = "mean_iou"  # how files before the metric travelled named it
    path.write_text(json.dumps(legacy))
    with pytest.raises(ValueError, match="rebuild the repository"):
        read_calibration(path)


def frontier_of(accuracy, flops):
    k = len(accuracy)
    return Frontier(
        np.arange(k, dtype=np.float64)[:, None],
        np.array(accuracy, dtype=np.float64),
        np.linspace(0, 1, k),
        np.array(flops, dtype=np.float64),
    )


def test_the_cheapest_score_at_the_target_is_served_and_every_scores_point_is_evidence():
    fronts = {
        "a": frontier_of([0.5, 0.8, 0.9], [1.0, 3.0, 5.0]),  # reaches 0.8 at 3 FLOPs
        "b": frontier_of([0.5, 0.85, 0.9], [1.0, 2.0, 5.0]),  # reaches 0.8 at 2: served
        "c": frontier_of([0.5, 0.6, 0.7], [1.0, 1.5, 2.0]),  # never: its last point
    }
    pair = (("s", "t"), (0.5, 0.9), (1.0, 4.0), "map")  # stages, figures, FLOPs, metric
    record = cheapest_score(fronts, 0.8, "val", 10, *pair)
    assert record.scores == ("b",) and record.parity_thresholds == (1.0,)
    assert (record.parity_accuracy, record.parity_flops) == (0.85, 2.0)
    assert {n: p["parity_threshold"] for n, p in record.evidence.items()} == {
        "a": 1.0,
        "b": 1.0,
        "c": 2.0,
    }
    assert record.evidence["a"]["fewer_flops_than_teacher_at_parity"] == pytest.approx(4 / 3)
    tie = {"x": fronts["b"], "y": fronts["b"]}
    assert cheapest_score(
        tie, 0.8, "val", 10, ("s", "t"), (0.5, 0.9), (1.0, 4.0), "map"
    ).scores == ("x",)
    with pytest.raises(ValueError, match="test split"):
        cheapest_score(fronts, 0.8, "test", 10, *pair)
