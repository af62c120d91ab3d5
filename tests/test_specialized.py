import numpy as np
import pytest
from scipy.special import logsumexp

from ebjr import specialized as spec
from ebjr.routing import decide
from ebjr.scores import energy

CLASSES, OTHER = np.array([7, 2, 5]), 3  # Student outputs: 7, 2, 5, "other"
LOGITS = np.array(
    [
        [9.0, 1.0, 0.0, 2.0],  # class 7, high energy -> Student at t=5
        [0.0, 1.0, 0.5, 0.0],  # class 2, low energy -> Teacher
        [8.0, 7.0, 6.0, 20.0],  # "other" with a very high top-C energy -> Teacher anyway (eq. 16)
        [0.0, 0.0, 6.0, -1.0],  # class 5, energy ~6 -> Student
    ],
    dtype=np.float32,
)


def test_eq17_energy_excludes_the_other_column():
    expected = logsumexp(LOGITS[:, :3], axis=1)
    np.testing.assert_allclose(spec.specialized_scores(LOGITS, OTHER, energy), expected, rtol=1e-6)


def test_eq16_other_goes_to_teacher_whatever_its_score():
    scores = spec.specialized_scores(LOGITS, OTHER, energy)
    rows = spec.specialized_to_student(scores, np.full(4, 5.0), LOGITS, OTHER)
    assert rows.tolist() == [True, False, False, True]
    everything = spec.specialized_to_student(scores, np.full(4, -np.inf), LOGITS, OTHER)
    assert everything.tolist() == [True, True, False, True]


def test_answers_are_mapped_to_the_teacher_label_space():
    mapped = spec.to_teacher_space(LOGITS, CLASSES, OTHER, 10)
    assert mapped.shape == (4, 10)
    np.testing.assert_array_equal(mapped[:, [7, 2, 5]], LOGITS[:, :3])
    assert (mapped[:, [0, 1, 3, 4, 6, 8, 9]] == spec.UNKNOWN_LOGIT).all()
    assert mapped[[0, 1, 3]].argmax(1).tolist() == [7, 2, 5]


def test_decide_applies_eqs_16_to_18_and_matches_general_mode_otherwise():
    scores, rows, answers = decide(LOGITS, np.full(4, 5.0), energy, (CLASSES, OTHER), 10)
    assert rows.tolist() == [True, False, False, True]
    assert answers.shape == (4, 10)
    general = np.eye(3, dtype=np.float32) * 10
    g_scores, g_rows, g_answers = decide(general, np.full(3, 9.0), energy)
    assert g_rows.all() and g_answers is general


def test_student_correct_never_credits_other():
    labels = np.array([7, 2, 9, 4])
    assert spec.student_correct(LOGITS, labels, CLASSES, OTHER).tolist() == [
        True,
        True,
        False,
        False,
    ]


def test_effective_scores_make_other_rows_always_teacher():
    scores = spec.specialized_scores(LOGITS, OTHER, energy)
    eff = spec.effective_scores(scores, LOGITS, OTHER)
    assert eff[2] == -np.inf and np.isfinite(eff[[0, 1, 3]]).all()


def test_relabel_and_skewed_stream():
    labels = np.array([0, 7, 2, 5, 9, 7])
    assert spec.relabel(labels, (7, 2, 5)).tolist() == [3, 0, 1, 2, 3, 0]
    pool = np.repeat(np.arange(10), 100)
    rows = spec.skewed_stream(pool, (1, 2), 0.75, 400, seed=3)
    assert len(rows) == 400 and np.isin(pool[rows], (1, 2)).sum() == 300
    np.testing.assert_array_equal(rows, spec.skewed_stream(pool, (1, 2), 0.75, 400, seed=3))
    with pytest.raises(ValueError, match="share"):
        spec.skewed_stream(pool, (1,), 1.5, 10)
