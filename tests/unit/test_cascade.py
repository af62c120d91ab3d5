import itertools

import numpy as np
import pytest

from ebjr.core.calibration import (
    ACCURACY,
    read_calibration,
    resolve_thresholds,
    write_calibration,
)
from ebjr.core.cascade_calibration import (
    Stages,
    calibrate_cascade,
    held_out_comparison,
    held_out_shortfall,
)


def toy(n=40, seed=0):
    """Three stages on ``n`` rows: scores that say something about correctness."""
    rng = np.random.default_rng(seed)
    s1, s2 = rng.normal(size=n), rng.normal(size=n)
    correct = [
        rng.random(n) < 0.5 + 0.4 * np.tanh(s1),
        rng.random(n) < 0.7 + 0.3 * np.tanh(s2),
        rng.random(n) < 0.9,
    ]
    return [s1, s2], correct, [1.0, 4.0, 40.0]


def point(scores, correct, flops, t1, t2):
    """Accuracy and average cost of thresholds (t1, t2), by brute force."""
    first = scores[0] >= t1
    second = ~first & (scores[1] >= t2)
    last = ~first & ~second
    right = correct[0][first].sum() + correct[1][second].sum() + correct[2][last].sum()
    cost = flops[0] + (~first).mean() * flops[1] + last.mean() * flops[2]
    return right / len(first), cost


def test_cascade_calibration_finds_the_brute_force_cheapest_pair_at_parity():
    scores, correct, flops = toy()
    record = calibrate_cascade(("a", "b", "c"), ("energy", "gate"), scores, correct, flops)
    candidates = [np.concatenate([[-np.inf], np.unique(s), [np.inf]]) for s in scores]
    target = correct[2].mean() - ACCURACY.tolerance
    best = min(
        cost
        for t1, t2 in itertools.product(*candidates)
        for accuracy, cost in [point(scores, correct, flops, t1, t2)]
        if accuracy >= target - 1e-12
    )
    assert record.parity_flops == pytest.approx(best)
    assert point(scores, correct, flops, *record.parity_thresholds) == pytest.approx(
        (record.parity_accuracy, record.parity_flops)
    )
    # every frontier point is what its thresholds measure, and the frontier only rises
    for thresholds, accuracy, cost in zip(
        record.table.thresholds, record.table.accuracy, record.table.flops, strict=True
    ):
        assert point(scores, correct, flops, *thresholds) == pytest.approx(
            (accuracy, cost), abs=1e-4
        )
    assert (np.diff(record.table.accuracy) > 0).all() and (np.diff(record.table.flops) > 0).all()


def test_cascade_calibration_round_trips_and_answers_the_knobs(tmp_path):
    scores, correct, flops = toy(200, seed=1)
    record = calibrate_cascade(("a", "b", "c"), ("energy", "entropy"), scores, correct, flops)
    write_calibration(tmp_path / "calibration.json", record)
    back = read_calibration(tmp_path / "calibration.json")
    assert back.parity_thresholds == record.parity_thresholds and back.scores == record.scores
    np.testing.assert_array_equal(back.table.thresholds, record.table.thresholds)
    target = float(record.table.accuracy[len(record.table.accuracy) // 2])
    chosen = resolve_thresholds(f'{{"min_accuracy": {target}}}', (0.0, 0.0), back)
    accuracy, _ = point(scores, correct, flops, *chosen)
    assert accuracy >= target - 1e-9
    assert resolve_thresholds('{"teacher_fraction": 1}', (0.0, 0.0), back) in {
        tuple(t) for t in back.table.thresholds.tolist()
    }
    with pytest.raises(ValueError, match="test split"):
        calibrate_cascade(("a", "b", "c"), ("energy", "gate"), scores, correct, flops, "test")


def test_stages_at_measures_what_brute_force_measures():
    scores, correct, flops = toy(60, seed=2)
    stages = Stages(scores, correct, flops)
    for t1, t2 in [(-np.inf, 0.0), (0.3, -0.2), (np.inf, np.inf), (0.0, np.inf)]:
        accuracy, _, cost = stages.at((t1, t2))
        assert (accuracy, cost) == pytest.approx(point(scores, correct, flops, t1, t2))


def test_held_out_comparison_measures_on_rows_the_thresholds_were_not_chosen_on():
    rng = np.random.default_rng(3)
    n = 2000
    student_ok, teacher_ok = rng.random(n) < 0.8, rng.random(n) < 0.95
    informed = np.where(student_ok, 1.0, -1.0) + rng.normal(scale=0.5, size=n)
    blind = rng.normal(size=n)  # says nothing about the Student's mistakes
    good = Stages([informed], [student_ok, teacher_ok], [1.0, 10.0])
    bad = Stages([blind], [student_ok, teacher_ok], [1.0, 10.0])
    better = held_out_comparison(good, bad, repeats=5)
    assert better["share_cheaper"] == 1.0 and better["flops_ratio"] < 0.7
    assert abs(better["accuracy_difference"]) < 0.01
    same = held_out_comparison(good, good, repeats=5)
    assert same == {"share_cheaper": 0.0, "flops_ratio": 1.0, "accuracy_difference": 0.0}


def test_held_out_shortfall_measures_the_last_stage_minus_the_cascade_on_unseen_halves():
    rng = np.random.default_rng(0)
    right = rng.random(400) < 0.8
    scores = np.where(right, 1.0, -1.0) + rng.normal(0, 0.01, 400)  # separable: no shortfall
    teacher = np.ones(400, bool)
    shortfall = held_out_shortfall(Stages([scores], [right, teacher], [1.0, 10.0]), repeats=5)
    assert shortfall["mean"] == pytest.approx(0.0) and shortfall["rows"] == 200
    assert shortfall["halves"] == 10  # each of the 5 splits both ways
    # a last stage that is always wrong: the cascade keeps everything and is 1.0 above it
    worse = held_out_shortfall(
        Stages([scores], [np.ones(400, bool), ~teacher], [1.0, 10.0]), repeats=5
    )
    assert worse["mean"] == pytest.approx(-1.0) and worse["p90"] == pytest.approx(-1.0)
