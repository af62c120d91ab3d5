"""The benchmark report's arithmetic, without a server: the break-even Teacher cost and the
headline ratio against the faster Teacher config, and the profile's categories."""

from __future__ import annotations

import pytest

from ebjr.bench.perf import ideal_cascade
from ebjr.bench.profile import LATER_STAGES, categorise
from ebjr.bench.report import added_p50, best_teacher_ratios, break_even_ms, over_best_teacher


@pytest.mark.parametrize("share", [0.0, 0.1, 0.5])
def test_at_the_break_even_cost_the_router_and_the_teacher_cost_the_same(share):
    router_ms = 0.33
    teacher_ms = break_even_ms(router_ms, share)
    assert router_ms + share * teacher_ms == pytest.approx(teacher_ms)
    # a costlier Teacher: the cascade wins; a cheaper one: it loses
    for factor, wins in ((1.5, True), (0.5, False)):
        t = teacher_ms * factor
        assert (ideal_cascade(1000 / router_ms, 1000 / t, share) > 1000 / t) is wins


def _round(*values, field="throughput"):
    models = ("teacher", "teacher_2threads", "ebjr_router")
    return [{"model": m, field: x} for m, x in zip(models, values, strict=True)]


def test_the_headline_divides_by_the_faster_teacher_config_of_each_round():
    rounds = [_round(100, 200, 300), _round(250, 100, 500), _round(100, 100, 150)]
    # per round: 300/200, 500/250, 150/100 -> median 1.5
    assert over_best_teacher(rounds) == pytest.approx(1.5)


def test_the_latency_headline_divides_by_the_lower_teacher_p50_of_each_round():
    rounds = [
        _round(4.0, 2.0, 1.0, field="p50_ms"),
        _round(2.0, 3.0, 1.5, field="p50_ms"),
        _round(5.0, 2.5, 2.0, field="p50_ms"),
    ]
    # per round: 1/2, 1.5/2, 2/2.5 -> median 0.75
    assert over_best_teacher(rounds, "p50_ms") == pytest.approx(0.75)


def test_a_sample_inside_a_later_stage_call_is_the_teachers_whichever_way_it_runs():
    stacks = {
        "execute (router.py:1);_run_stage (router.py:2);_run_local (router.py:3);"
        "run (onnxruntime_inference_collection.py:4)": 3,  # the Student, in process
        "execute (router.py:1);_call_later (router.py:5);_call_stage (router.py:6);"
        "_run_local (router.py:3);run (onnxruntime_inference_collection.py:4)": 1,
        "execute (router.py:1);_call_stage (router.py:6);call_model (triton.py:7)": 1,
    }
    shares = categorise(stacks)
    assert shares["Student (onnxruntime in process)"] == pytest.approx(0.6)
    assert shares[LATER_STAGES[0]] == pytest.approx(0.4)


def test_the_added_p50_is_the_median_of_each_rounds_difference():
    rounds = [
        [{"model": "student", "p50_ms": s}, {"model": "ebjr_router", "p50_ms": r}]
        for s, r in ((1.0, 1.5), (0.8, 1.6), (2.0, 2.3))
    ]
    # per round: 0.5, 0.8, 0.3 -> median 0.5 (the difference of the medians would be 0.6)
    assert added_p50(rounds) == pytest.approx(0.5)


def test_the_headline_of_another_router_reads_that_routers_row():
    rounds = [
        [*_round(100, 200, 300), {"model": "ebjr_router_bls", "throughput": 250}],
        [*_round(100, 100, 300), {"model": "ebjr_router_bls", "throughput": 150}],
    ]
    assert best_teacher_ratios(rounds, model="ebjr_router_bls") == [1.25, 1.5]
    assert best_teacher_ratios(rounds) == [1.5, 3.0]
