import numpy as np
import pytest

from ebjr.core.budget import LoadShedder, TeacherBudget


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_holds_the_teacher_share_at_its_cap_and_sends_the_lowest_scores_first():
    clock = Clock()
    budget = TeacherBudget(0.25, window_s=10, clock=clock)
    admitted = budget.admit(np.array([5.0, 1.0, 3.0, 2.0]), rows=8)  # 4 of 8 want it
    assert admitted.tolist() == [False, True, False, True]  # 2 = 25% of 8, lowest scores
    sent = int(admitted.sum())
    for _ in range(50):  # a flood: every row wants the Teacher
        clock.now += 0.1
        sent += int(budget.admit(np.zeros(8), rows=8).sum())
    assert sent / (51 * 8) == pytest.approx(0.25, abs=0.01)


def test_budget_forgets_batches_older_than_its_window():
    clock = Clock()
    budget = TeacherBudget(0.5, window_s=1.0, clock=clock)
    assert budget.admit(np.zeros(4), rows=4).sum() == 2
    assert budget.admit(np.zeros(4), rows=4).sum() == 2  # 4 of 8 so far
    clock.now = 1.5  # both batches left the window
    assert budget.admit(np.zeros(2), rows=2).sum() == 1


def test_budget_under_the_cap_admits_everyone_and_bad_settings_are_refused():
    budget = TeacherBudget(0.5)
    assert budget.admit(np.array([1.0]), rows=10).all()
    with pytest.raises(ValueError, match="teacher_budget_share"):
        TeacherBudget(0.0)
    with pytest.raises(ValueError, match="teacher_budget_window_s"):
        TeacherBudget(0.5, window_s=0)


def test_the_shedder_lets_every_row_through_until_a_queue_builds_up():
    admit = LoadShedder(requests=8, share=0.25).guard(requests=7)
    assert admit(np.array([5.0, 1.0, 3.0]), rows=7).all()


def test_under_overload_the_shedder_sends_its_share_lowest_scores_first():
    admit = LoadShedder(requests=8, share=0.25).guard(requests=8)
    admitted = admit(np.array([5.0, 1.0, 3.0, 2.0, 0.5]), rows=8)  # 5 of 8 want the Teacher
    assert admitted.tolist() == [False, True, False, False, True]  # 2 = 25% of 8: 1.0, 0.5
    assert not LoadShedder(requests=1, share=0.0).guard(9)(np.zeros(3), rows=9).any()


@pytest.mark.parametrize(("requests", "share"), [(0, 0.1), (4, 1.5), (4, -0.1)])
def test_bad_shedder_settings_are_refused(requests, share):
    with pytest.raises(ValueError, match="shed_"):
        LoadShedder(requests, share)
