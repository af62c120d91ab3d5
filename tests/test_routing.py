import math

import numpy as np
import pytest

from ebjr.routing import (
    FALLBACK,
    STUDENT,
    TEACHER,
    RequestError,
    check_batch,
    join_answers,
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


def test_join_answers_scatters_teacher_rows_in_order():
    student = np.arange(12, dtype=np.float32).reshape(4, 3)
    teacher = np.array([[100.0, 0, 0], [0, 0, 200.0]], dtype=np.float32)
    rows = np.array([True, False, True, False])
    routed = join_answers(student, np.zeros(4), rows, teacher)
    np.testing.assert_array_equal(routed.logits[[0, 2]], student[[0, 2]])
    np.testing.assert_array_equal(routed.logits[[1, 3]], teacher)
    assert routed.route.tolist() == [STUDENT, TEACHER, STUDENT, TEACHER]
    assert routed.predictions.tolist() == [2, 0, 2, 2]


def test_join_answers_without_teacher_marks_fallback_and_keeps_student_answer():
    student = np.eye(3, dtype=np.float32)
    routed = join_answers(student, np.zeros(3), np.array([True, False, False]), None)
    np.testing.assert_array_equal(routed.logits, student)
    assert routed.route.tolist() == [STUDENT, FALLBACK, FALLBACK]


def test_join_answers_rejects_wrong_teacher_row_count():
    with pytest.raises(ValueError, match="teacher answered"):
        join_answers(np.eye(3), np.zeros(3), np.array([True, False, False]), np.ones((1, 3)))


def test_check_batch_rejects_empty_and_names_the_non_finite_rows():
    with pytest.raises(RequestError, match="empty batch"):
        check_batch(np.zeros((0, 1, 2, 2), dtype=np.float32))
    images = np.zeros((4, 1, 2, 2), dtype=np.float32)
    check_batch(images)
    images[1, 0, 0, 0], images[3, 0, 1, 1] = np.nan, np.inf
    with pytest.raises(RequestError, match="2 of 4 rows"):
        check_batch(images)
