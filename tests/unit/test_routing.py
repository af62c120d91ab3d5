import math
from dataclasses import dataclass

import numpy as np
import pytest

from ebjr.core.routing import (
    BUDGET,
    FALLBACK,
    MIDDLE,
    OVERLOAD,
    STUDENT,
    TEACHER,
    RequestError,
    StageError,
    cascade,
    check_batch,
    in_pieces,
    parse_threshold,
    to_student,
)


def test_tie_at_threshold_goes_to_student():
    # Eq. 6: V = 1 (Student) iff -F(x) >= t.
    scores = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    assert to_student(scores, np.full(3, 2.0)).tolist() == [False, True, True]


def test_infinite_thresholds_mean_always_student_or_always_teacher():
    scores = np.array([-1e30, 0.0, 1e30], dtype=np.float32)
    assert to_student(scores, np.full(3, -np.inf)).all()
    assert not to_student(scores, np.full(3, np.inf)).any()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12.5, 12.5),
        (3, 3.0),
        ("12.5", 12.5),
        (" -2 ", -2.0),
        ("inf", math.inf),
        ("-inf", -math.inf),
        ("+Infinity", math.inf),
        (float("-inf"), -math.inf),
    ],
)
def test_parse_threshold_accepts_numbers_and_numeric_strings(value, expected):
    assert parse_threshold(value) == expected


@pytest.mark.parametrize("value", ["abc", "", "nan", float("nan"), True, None, [1.0], {"t": 1}])
def test_parse_threshold_rejects_non_numbers_and_nan(value):
    with pytest.raises(RequestError):
        parse_threshold(value)


@dataclass(frozen=True)
class Above:
    """A policy keeping rows whose first logit is at or above the threshold."""

    def decide(self, logits, thresholds):
        scores = logits[:, 0]
        return scores, scores >= thresholds, logits


def staged(answers: dict[int, np.ndarray], calls: list, fail: int | None = None):
    """``run(stage, images)``: each stage answers its fixed rows (images are row indices)."""

    def run(stage, images):
        calls.append((stage, images[:, 0].tolist()))
        if stage == fail:
            raise StageError(f"stage {stage} is down")
        return answers[stage][images[:, 0].astype(int)]

    return run


def test_cascade_runs_each_stage_once_on_the_rows_not_kept_and_scatters_in_order():
    batch = np.arange(4, dtype=np.float32)[:, None]
    answers = {
        0: np.array([[5, 0], [0, 5], [5, 1], [0, 1]], dtype=np.float32),
        1: np.array([[9, 9], [3, 1], [9, 9], [0, 2]], dtype=np.float32),
        2: np.array([[7, 7], [7, 7], [7, 7], [1, 8]], dtype=np.float32),
    }
    calls = []
    thresholds = np.full((4, 2), 2.0, dtype=np.float32)
    routed, error = cascade(batch, thresholds, [Above(), Above()], staged(answers, calls))
    assert error is None
    assert calls == [(0, [0, 1, 2, 3]), (1, [1, 3]), (2, [3])]
    assert routed.route.tolist() == [STUDENT, MIDDLE, STUDENT, TEACHER]
    np.testing.assert_array_equal(
        routed.logits, [answers[0][0], answers[1][1], answers[0][2], answers[2][3]]
    )
    assert routed.scores.tolist() == [5, 3, 5, 0]  # the last stage that scored each row


def test_two_stage_cascade_and_a_failing_later_stage_keeps_the_last_answer_as_fallback():
    batch = np.arange(3, dtype=np.float32)[:, None]
    answers = {0: np.array([[5, 0], [0, 5], [1, 1]], dtype=np.float32)}
    routed, error = cascade(batch, np.full((3, 1), 2.0), [Above()], staged(answers, [], fail=1))
    assert str(error) == "stage 1 is down"
    np.testing.assert_array_equal(routed.logits, answers[0])
    assert routed.route.tolist() == [STUDENT, FALLBACK, FALLBACK]


def test_cascade_rejects_a_stage_answering_the_wrong_row_count():
    def run(stage, images):
        return np.ones((len(images) + stage, 2), dtype=np.float32)

    with pytest.raises(ValueError, match="stage 1 answered shape"):
        cascade(np.zeros((2, 1)), np.full((2, 1), np.inf), [Above()], run)


def test_in_pieces_calls_at_most_the_batch_limit_and_keeps_the_row_order():
    calls = []

    def double(rows):
        calls.append(len(rows))
        return rows * 2

    rows = np.arange(150, dtype=np.float32)[:, None]
    np.testing.assert_array_equal(in_pieces(double, rows, 64), rows * 2)
    assert calls == [64, 64, 22]
    calls.clear()
    np.testing.assert_array_equal(in_pieces(double, rows[:64], 64), rows[:64] * 2)
    assert calls == [64]  # within the limit: one call


def test_check_batch_rejects_empty_and_names_the_non_finite_rows():
    with pytest.raises(RequestError, match="empty batch"):
        check_batch(np.zeros((0, 1, 2, 2), dtype=np.float32))
    images = np.zeros((4, 1, 2, 2), dtype=np.float32)
    check_batch(images)
    images[1, 0, 0, 0], images[3, 0, 1, 1] = np.nan, np.inf
    with pytest.raises(RequestError, match="2 of 4 rows"):
        check_batch(images)


def test_cascade_guard_holds_back_rows_before_the_teacher_and_marks_them():
    batch = np.arange(4, dtype=np.float32)[:, None]
    answers = {
        0: np.array([[5, 0], [0, 1], [1, 0], [0, 0]], dtype=np.float32),
        1: np.full((4, 2), 9.0, dtype=np.float32),
    }
    calls = []

    def admit_lowest(scores, rows):
        assert rows == 4
        return scores == scores.min()

    run = staged(answers, calls)
    routed, _ = cascade(batch, np.full((4, 1), 2.0), [Above()], run, [(admit_lowest, BUDGET)])
    assert calls == [(0, [0, 1, 2, 3]), (1, [1, 3])]  # rows 1, 2, 3 wanted it; 1 and 3 score 0
    assert routed.route.tolist() == [STUDENT, TEACHER, BUDGET, TEACHER]
    np.testing.assert_array_equal(routed.logits[2], answers[0][2])


def test_guards_apply_in_order_each_to_the_rows_the_one_before_let_through():
    batch = np.arange(4, dtype=np.float32)[:, None]
    answers = {
        0: np.array([[5, 0], [0, 1], [1, 0], [0, 0]], dtype=np.float32),
        1: np.full((4, 2), 9.0, dtype=np.float32),
    }
    calls = []
    first = (lambda scores, rows: scores < 1, BUDGET)  # keeps rows 1 and 3 (score 0)
    seen = []

    def second(scores, rows):
        seen.append(len(scores))
        return np.arange(len(scores)) == 0

    run = staged(answers, calls)
    routed, _ = cascade(batch, np.full((4, 1), 2.0), [Above()], run, [first, (second, OVERLOAD)])
    assert seen == [2] and calls == [(0, [0, 1, 2, 3]), (1, [1])]
    assert routed.route.tolist() == [STUDENT, TEACHER, BUDGET, OVERLOAD]
