import numpy as np
import pytest

from ebjr.core.budget import TeacherBudget


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
