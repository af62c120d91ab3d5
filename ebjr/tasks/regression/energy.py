"""Routing scores and predictions of an energy-based regressor (paper eqs. 8-11), pure NumPy.

The routing score is the negative free energy ``-F^r(x) = log integral exp S(x, y) dy`` (eq.
10), in two forms:

- ``binned_energy``: a distributional head, logits ``w_k`` over bins of width ``delta``:
  ``S(x, y) = w_k`` on bin ``k``, so the integral is exactly ``logsumexp_k w_k + log delta``;
- ``sampled_energy``: a pair head ``S(x, y)`` at ``M`` candidates ``y_m`` drawn from a normal
  proposal ``q = N(mu(x), sigma^2)``: ``log (1/M) sum_m exp(S(x, y_m)) / q(y_m)``, the
  importance-sampling estimate of eq. 9.

Baselines for the ablation: the distribution's negative variance and negative entropy.
Predictions: the binned distribution's mean or mode, or the self-normalised importance-weighted
mean of the candidates. Shapes: ``logits (N, B)``, ``candidates``, ``scores (N, M)``,
``centres (N,)``; every function returns ``(N,) float32``.
"""

from __future__ import annotations

import numpy as np

from ebjr.core.scores import logsumexp


def binned_energy(logits: np.ndarray, bin_width: float) -> np.ndarray:
    return (logsumexp(logits) + np.log(bin_width)).astype(np.float32)


def log_proposal(candidates: np.ndarray, centres: np.ndarray, std: float) -> np.ndarray:
    """``log q(y_m)`` of a normal proposal ``N(centres, std^2)``: ``(N, M)``."""
    z = (np.asarray(candidates, np.float64) - np.asarray(centres, np.float64)[:, None]) / std
    return -0.5 * z**2 - np.log(std * np.sqrt(2 * np.pi))


def sampled_energy(
    scores: np.ndarray, candidates: np.ndarray, centres: np.ndarray, std: float
) -> np.ndarray:
    weights = np.asarray(scores, np.float64) - log_proposal(candidates, centres, std)
    return (logsumexp(weights) - np.log(scores.shape[1])).astype(np.float32)


def _probabilities(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    return np.exp(z - logsumexp(z)[:, None])


def bin_centres(bins: int, low: float, width: float) -> np.ndarray:
    return low + (np.arange(bins) + 0.5) * width


def binned_mean(logits: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return (_probabilities(logits) @ centres).astype(np.float32)


def binned_mode(logits: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return centres[np.argmax(logits, axis=1)].astype(np.float32)


def negative_variance(logits: np.ndarray, centres: np.ndarray) -> np.ndarray:
    p = _probabilities(logits)
    mean = p @ centres
    return (-(p * (centres[None, :] - mean[:, None]) ** 2).sum(axis=1)).astype(np.float32)


def negative_entropy(logits: np.ndarray) -> np.ndarray:
    p = _probabilities(logits)
    return (p * np.log(np.maximum(p, 1e-300))).sum(axis=1).astype(np.float32)


def sampled_mean(
    scores: np.ndarray, candidates: np.ndarray, centres: np.ndarray, std: float
) -> np.ndarray:
    """The importance-weighted mean of the candidates: ``sum_m w_m y_m`` with ``w_m`` the
    normalised ``exp(S(x, y_m)) / q(y_m)``."""
    weights = _probabilities(
        np.asarray(scores, np.float64) - log_proposal(candidates, centres, std)
    )
    return (weights * candidates).sum(axis=1).astype(np.float32)
