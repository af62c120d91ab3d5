"""The ``max_accuracy_drop`` knob: Learn-then-Test certification (``ebjr.build.risk_control``)
against an independent p-value and a plain walk, its promise held on fresh draws, and the
request lookup that never promises less than it was asked."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from mapie.risk_control import control_fwer
from scipy.stats import binom

from ebjr.build.risk_control import (
    CONFIDENCES,
    MAX_DROPS,
    cascade_risk,
    certified,
    p_values,
    two_stage_path,
    two_stage_risk,
)
from ebjr.build.router_config import CERTIFIED, check_published, published_parameters
from ebjr.core.calibration import (
    calibrate,
    read_calibration,
    resolve_thresholds,
    write_calibration,
)
from ebjr.core.routing import RequestError


def p_value(lost: int, n: int, drop: float) -> float:
    """Hoeffding-Bentkus for a binary loss, written out: the smaller of the Hoeffding bound
    ``exp(-n h(r, drop))`` (``r`` capped at ``drop``) and the exact binomial tail."""
    r = min(lost / n, drop)
    h = (r * np.log(r / drop) if r > 0 else 0.0) + (1 - r) * np.log((1 - r) / (1 - drop))
    return min(float(np.exp(-n * h)), float(binom.cdf(lost, n, drop)))


def walk(lost: list[int], n: int, drop: float, delta: float) -> int:
    """Fixed-sequence testing by hand: the last point before the first one not certified."""
    chosen = 0
    for k, count in enumerate(lost):
        if p_value(count, n, drop) > delta:
            break
        chosen = k
    return chosen


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and safe rows: the lower the score, the likelier a row is lost."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=n)
    lost = rng.random(n) < 0.15 / (1 + np.exp(3 * scores))
    return scores, ~lost


def column(drop: float) -> int:
    return int(np.flatnonzero(np.isclose(MAX_DROPS, drop))[0])


@pytest.mark.parametrize(("drop", "delta"), [(0.005, 0.1), (0.01, 0.05), (0.002, 0.2)])
def test_certified_is_fixed_sequence_testing_with_the_binomial_tail(drop, delta):
    n = 2000
    lost = [0, 0, 1, 2, 3, 5, 8, 12, 20, 3, 40]  # the dip after a failure is never reached
    p = p_values(np.array(lost, dtype=float), n)
    np.testing.assert_allclose(p[:, column(drop)], [p_value(k, n, drop) for k in lost])
    expected = walk(lost, n, drop, delta)
    assert certified(p[:, column(drop)], delta) == expected
    assert 0 < expected < len(lost) - 2


@pytest.mark.parametrize("delta", [0.05, 0.1, 0.2])
def test_certified_answers_as_mapie_testing_every_point_of_a_path_with_ties(delta):
    """A real path has one point per threshold and long runs of equal lost counts (and equal
    p-values); certified hands MAPIE one point per run and must pick the same point."""
    rng = np.random.default_rng(0)
    lost = np.concatenate([np.zeros(5), np.cumsum(rng.random(3000) < 0.02)]).astype(float)
    lost[2500:2510] = 0.0  # a dip after the walk has stopped is never reached
    for p in p_values(lost, 5000)[:, ::7].T:  # 0.1 pt to 4.4 pt
        every = control_fwer(p, delta, "fixed_sequence")
        assert certified(p, delta) == (int(every.max()) if len(every) else 0)


def test_nothing_certified_falls_back_to_everything_to_the_teacher():
    p = p_values(np.array([0.0, 50.0, 90.0]), 100)
    assert certified(p[:, column(0.001)], 0.1) == 0


def test_the_two_stage_table_walks_the_threshold_down_from_everything_to_the_teacher():
    scores, safe = synthetic(3000, 0)
    table = two_stage_risk(scores, safe)
    assert table.thresholds.shape == (len(CONFIDENCES), len(MAX_DROPS), 1)
    assert table.rows == 3000
    order = np.sort(scores)[::-1]
    lost_at = [int((~safe & (scores >= t)).sum()) for t in order]
    path = [np.inf, *order]  # distinct scores: each point keeps one more row
    for d, confidence in enumerate(CONFIDENCES):
        for e, drop in enumerate(MAX_DROPS[[2, 9, 29]]):
            k = walk([0, *lost_at], 3000, drop, 1 - confidence)
            e_index = column(drop)
            assert table.thresholds[d, e_index, 0] == path[k], (confidence, drop, e)
            assert table.teacher_fraction[d, e_index] == pytest.approx(
                (scores < path[k]).mean(), abs=1e-6
            )
    # a weaker promise never costs more Teacher rows
    assert (np.diff(table.teacher_fraction, axis=1) <= 1e-12).all()
    assert (np.diff(table.teacher_fraction, axis=0) >= -1e-12).all()


def test_a_specialized_student_never_serves_minus_inf():
    scores, safe = synthetic(200, 1)
    table = two_stage_risk(scores, np.ones(200, dtype=bool), keeps_everything_at_minus_inf=False)
    assert (table.thresholds > -np.inf).all()
    unrestricted = two_stage_risk(scores, np.ones(200, dtype=bool))
    assert (unrestricted.thresholds == -np.inf).any()  # nothing to lose: keep everything


@pytest.mark.parametrize(("drop", "confidence"), [(0.005, 0.9), (0.01, 0.9), (0.01, 0.95)])
def test_the_promise_holds_on_fresh_draws(drop, confidence):
    """On 300 fresh calibration draws from one population, the certified threshold's true loss
    exceeds ``drop`` at most ``1 - confidence`` of the time (plus 3 binomial sigmas)."""
    population_scores, population_safe = synthetic(400_000, 2)
    order = np.argsort(population_scores)[::-1]
    cumulative = np.cumsum(~population_safe[order]) / len(order)  # loss keeping the top k
    rng = np.random.default_rng(3)
    violations, draws = 0, 300
    e = column(drop)
    for _ in range(draws):
        rows = rng.choice(len(order), 2000, replace=False)
        path = two_stage_path(population_scores[rows], population_safe[rows])
        lost = np.rint((1 - path.accuracy) * 2000)
        threshold = path.thresholds[certified(p_values(lost, 2000)[:, e], 1 - confidence), 0]
        kept = int((population_scores >= threshold).sum())
        violations += kept > 0 and cumulative[kept - 1] > drop
    delta = 1 - confidence
    assert violations / draws <= delta + 3 * np.sqrt(delta * (1 - delta) / draws)


def test_the_cascade_table_tests_on_the_half_it_did_not_learn_its_path_on():
    scores, safe = synthetic(2000, 4)
    middle_scores, middle_safe = synthetic(2000, 5)
    table = cascade_risk([scores, middle_scores], [safe, middle_safe], [1.0, 3.0, 10.0])
    assert table.rows == 1000
    assert table.thresholds.shape == (len(CONFIDENCES), len(MAX_DROPS), 2)
    assert (table.teacher_fraction[:, -1] < table.teacher_fraction[:, 0]).all()  # it saves
    assert table.procedure.startswith("split fixed sequence")


def record_with_risk():
    scores, safe = synthetic(1000, 6)
    record = calibrate(scores, safe, np.ones(1000, dtype=bool), 1.0, 10.0)
    return replace(record, risk=two_stage_risk(scores, safe))


def test_the_request_gets_a_promise_at_least_as_strong_as_asked():
    record = record_with_risk()
    risk = record.risk
    assert risk.point(0.0055, 0.85) == (1, 4)  # 0.5 point, confidence 0.9
    assert risk.point(0.01, 0.9) == (1, 9)
    assert risk.point(1.0, 0.99) == (3, len(MAX_DROPS) - 1)
    for drop, confidence, words in [
        (0.0005, 0.9, "smallest calibrated drop"),
        (0.01, 0.995, "at most 0.99"),
        (0.01, 1.0, r"in \(0, 1\)"),
        (0.01, 0.0, r"in \(0, 1\)"),
    ]:
        with pytest.raises(RequestError, match=words):
            risk.point(drop, confidence)


def test_the_knob_resolves_per_request_and_refuses_what_it_cannot_promise():
    record = record_with_risk()
    default = record.parity_thresholds
    d, e = record.risk.point(0.01, 0.95)
    asked = json.dumps({"max_accuracy_drop": "0.01", "confidence": 0.95})
    assert resolve_thresholds(asked, default, record) == (float(record.risk.thresholds[d, e, 0]),)
    d, e = record.risk.point(0.01, 0.9)  # the default confidence
    alone = json.dumps({"max_accuracy_drop": 0.01})
    assert resolve_thresholds(alone, default, record) == (float(record.risk.thresholds[d, e, 0]),)
    with pytest.raises(RequestError, match="confidence qualifies max_accuracy_drop"):
        resolve_thresholds(json.dumps({"confidence": 0.9}), default, record)
    with pytest.raises(RequestError, match="at most one"):
        resolve_thresholds(json.dumps({"max_accuracy_drop": 0.01, "min_accuracy": 0.9}), default)
    with pytest.raises(RequestError, match="no risk-controlled table"):
        resolve_thresholds(alone, default, replace(record, risk=None))


def test_the_table_round_trips_and_is_published(tmp_path):
    record = record_with_risk()
    write_calibration(tmp_path / "calibration.json", record)
    back = read_calibration(tmp_path / "calibration.json")
    for field in ("max_drop", "confidence", "thresholds", "teacher_fraction", "lost"):
        np.testing.assert_array_equal(getattr(back.risk, field), getattr(record.risk, field))
    assert (back.risk.rows, back.risk.procedure) == (record.risk.rows, record.risk.procedure)
    published = published_parameters(back)
    table = json.loads(published[CERTIFIED])
    assert table["teacher_fraction"] == record.risk.teacher_fraction.tolist()
    check_published(published, back)
    with pytest.raises(ValueError, match=CERTIFIED):
        check_published({**published, CERTIFIED: "{}"}, back)
    plain = replace(record, risk=None)
    write_calibration(tmp_path / "plain.json", plain)
    assert "risk" not in json.loads((tmp_path / "plain.json").read_text())
    assert CERTIFIED not in published_parameters(plain)
