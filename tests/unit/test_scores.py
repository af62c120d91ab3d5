import numpy as np
import pytest
from scipy.special import logsumexp as scipy_logsumexp
from scipy.special import softmax as scipy_softmax
from scipy.stats import entropy as scipy_entropy

from ebjr.core import scores

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(scale=4.0, size=(64, 10)).astype(np.float32)


def test_energy_matches_scipy_logsumexp():
    np.testing.assert_allclose(scores.energy(LOGITS), scipy_logsumexp(LOGITS, axis=1), rtol=1e-6)


def test_energy_does_not_overflow_on_large_logits():
    big = np.array([[1000.0, 999.0, -1000.0], [-1e4, -1e4, -1e4]], dtype=np.float32)
    got = scores.energy(big)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, scipy_logsumexp(big.astype(np.float64), axis=1), rtol=1e-6)


def test_energy_with_temperature_is_t_logsumexp_z_over_t():
    expected = 2.0 * scipy_logsumexp(LOGITS / 2.0, axis=1)
    np.testing.assert_allclose(scores.energy(LOGITS, temperature=2.0), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        scores.energy(LOGITS, temperature=0.0)


def test_softmax_confidence_and_negative_entropy_match_scipy():
    p = scipy_softmax(LOGITS.astype(np.float64), axis=1)
    np.testing.assert_allclose(scores.softmax_confidence(LOGITS), p.max(axis=1), rtol=1e-6)
    np.testing.assert_allclose(
        scores.negative_entropy(LOGITS), -scipy_entropy(p, axis=1), rtol=1e-5, atol=1e-6
    )


def test_energy_of_softmax_is_logsumexp_of_probabilities():
    p = scipy_softmax(LOGITS.astype(np.float64), axis=1)
    np.testing.assert_allclose(scores.energy_of_softmax(LOGITS), scipy_logsumexp(p, axis=1))


def test_get_score_names_and_unknown_name():
    assert scores.get_score("energy") is scores.energy
    np.testing.assert_allclose(
        scores.get_score("energy", temperature=3.0)(LOGITS), scores.energy(LOGITS, 3.0)
    )
    with pytest.raises(ValueError, match="unknown routing score"):
        scores.get_score("margin")
