import numpy as np
import pytest
from scipy.special import logsumexp

from ebjr.core.policy import UNKNOWN_LOGIT, GeneralPolicy, SpecializedPolicy
from ebjr.core.scores import energy
from ebjr.tasks.classification import specialized as spec

OTHER = 3  # Student outputs: Teacher labels 7, 2, 5, then "other"
LOGITS = np.array(
    [
        [9.0, 1.0, 0.0, 2.0],  # class 7, high energy -> Student at t=5
        [0.0, 1.0, 0.5, 0.0],  # class 2, low energy -> Teacher
        [8.0, 7.0, 6.0, 20.0],  # "other" with a very high top-C energy -> Teacher anyway (eq. 16)
        [0.0, 0.0, 6.0, -1.0],  # class 5, energy ~6 -> Student
    ],
    dtype=np.float32,
)


POLICY = SpecializedPolicy(energy, classes=(7, 2, 5), other_index=OTHER, num_classes=10)


def test_eq17_energy_excludes_the_other_column():
    expected = logsumexp(LOGITS[:, :3], axis=1)
    np.testing.assert_allclose(POLICY.scores(LOGITS), expected, rtol=1e-6)


def test_eq16_other_goes_to_teacher_whatever_its_score():
    scores = POLICY.scores(LOGITS)
    assert POLICY.keep(scores, np.full(4, 5.0), LOGITS).tolist() == [True, False, False, True]
    everything = POLICY.keep(scores, np.full(4, -np.inf), LOGITS)
    assert everything.tolist() == [True, True, False, True]


def test_answers_are_mapped_to_the_teacher_label_space():
    mapped = POLICY.answers(LOGITS)
    assert mapped.shape == (4, 10)
    np.testing.assert_array_equal(mapped[:, [7, 2, 5]], LOGITS[:, :3])
    assert (mapped[:, [0, 1, 3, 4, 6, 8, 9]] == UNKNOWN_LOGIT).all()
    assert mapped[[0, 1, 3]].argmax(1).tolist() == [7, 2, 5]


def test_decide_applies_eqs_16_to_18_and_general_policy_is_eq_6():
    scores, keep, answers = POLICY.decide(LOGITS, np.full(4, 5.0))
    assert keep.tolist() == [True, False, False, True] and answers.shape == (4, 10)
    general = np.eye(3, dtype=np.float32) * 10
    g_scores, g_keep, g_answers = GeneralPolicy(energy).decide(general, np.full(3, 9.0))
    assert g_keep.all() and g_answers is general
    tie = GeneralPolicy(energy).keep(g_scores, g_scores, general)
    assert tie.all(), "a score equal to the threshold stays on the Student (eq. 6)"


def test_student_correct_never_credits_other():
    labels = np.array([7, 2, 9, 4])
    assert POLICY.student_correct(LOGITS, labels).tolist() == [True, True, False, False]


def test_effective_scores_make_other_rows_always_teacher():
    eff = POLICY.effective_scores(LOGITS)
    assert eff[2] == -np.inf and np.isfinite(eff[[0, 1, 3]]).all()
    for t in (-5.0, 0.0, 5.0, 9.0):
        thresholds = np.full(4, t)
        assert ((eff >= t) == POLICY.keep(POLICY.scores(LOGITS), thresholds, LOGITS)).all()
    assert not SpecializedPolicy.keeps_everything_at_minus_inf
    assert GeneralPolicy.keeps_everything_at_minus_inf


def test_relabel_and_skewed_stream():
    labels = np.array([0, 7, 2, 5, 9, 7])
    assert spec.relabel(labels, (7, 2, 5)).tolist() == [3, 0, 1, 2, 3, 0]
    pool = np.repeat(np.arange(10), 100)
    rows = spec.skewed_stream(pool, (1, 2), 0.75, 400, seed=3)
    assert len(rows) == 400 and np.isin(pool[rows], (1, 2)).sum() == 300
    np.testing.assert_array_equal(rows, spec.skewed_stream(pool, (1, 2), 0.75, 400, seed=3))
    with pytest.raises(ValueError, match="share"):
        spec.skewed_stream(pool, (1,), 1.5, 10)
