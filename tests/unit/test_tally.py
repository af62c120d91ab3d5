"""The router's in-process metric counts (``ebjr.core.tally``)."""

import threading

import numpy as np

from ebjr.core.routing import ROUTE_NAMES
from ebjr.core.tally import OUTCOMES, Tally


def test_rows_are_counted_per_route_and_scores_into_cumulative_le_buckets():
    tally = Tally([0.0, 1.0, 2.0])
    routes = np.array([0, 1, 1, 2, 0], dtype=np.int8)
    scores = np.array([-1.0, 0.0, 1.5, 7.0, np.nan], dtype=np.float32)
    tally.add_rows(routes, scores)
    counts = tally.take()
    assert counts.rows.tolist() == [2, 2, 1] + [0] * (len(ROUTE_NAMES) - 3)
    # le semantics: a score equal to an edge counts in that edge's bucket; NaN is not counted
    assert counts.buckets.tolist() == [2, 2, 3, 4]
    assert counts.score_sum == -1.0 + 0.0 + 1.5 + 7.0


def test_infinite_scores_are_rows_but_not_histogram_samples():
    tally = Tally([0.0])
    tally.add_rows(np.array([1, 0]), np.array([-np.inf, np.inf]))
    counts = tally.take()
    assert counts.rows[:2].tolist() == [1, 1]
    assert counts.buckets.tolist() == [0, 0] and counts.score_sum == 0.0


def test_take_returns_what_happened_since_the_last_take():
    tally = Tally([0.0])
    tally.add_outcomes([OUTCOMES.index("ok"), OUTCOMES.index("invalid"), 0])
    tally.add_outcomes([OUTCOMES.index("refused")])
    tally.add_teacher_failure()
    tally.add_short_circuit(3)
    first = tally.take()
    assert first.outcomes.tolist() == [2, 1, 0, 1] and first.teacher_failures == 1
    assert first.short_circuited == 3
    second = tally.take()
    assert second.outcomes.sum() == 0 and second.teacher_failures == 0 and second.rows.sum() == 0
    assert second.short_circuited == 0


def test_each_later_stage_counts_its_own_calls_and_rows():
    tally = Tally([0.0], later_stages=2)
    tally.add_stage_call(1, 10)
    tally.add_stage_call(2, 4)
    tally.add_stage_call(2, 0)
    counts = tally.take()
    assert counts.stage_calls.tolist() == [1, 2] and counts.stage_rows.tolist() == [10, 4]
    assert tally.take().stage_calls.sum() == 0


def test_concurrent_adds_lose_nothing():
    tally = Tally([0.5])

    def add():
        for _ in range(500):
            tally.add_rows(np.array([0, 1]), np.array([0.0, 1.0]))
            tally.add_teacher_failure()

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = tally.take()
    assert counts.rows[:2].tolist() == [2000, 2000]
    assert counts.teacher_failures == 2000 and counts.buckets.tolist() == [2000, 4000]
