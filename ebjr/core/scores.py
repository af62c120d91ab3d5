"""Routing scores computed from a Student's logits (higher = more familiar to the Student).

Every function takes ``logits: (N, C) float`` and returns ``(N,) float32``.
The default EBJR score is the negative free energy of eq. 3 of the paper,
``s(x) = -F(x) = logsumexp_i S_i(x)``.

A router builds its score from a name with a ``ScoreFactory`` (``(name, ScoreContext) ->
ScoreFn``): ``ebjr.core.gate.ROUTING_SCORES`` holds a classifier's (these and the learned gate),
and each task its own (``SCORE_FACTORIES``), which its serving module serves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ScoreFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ScoreContext:
    """What building a routing score may need besides the rows it scores: the energy
    ``temperature``; the router's folder and stage ``boundary`` (a learned gate's file); the
    router's ``config.pbtxt`` ``parameters`` (a packed router's row layout, bin width, head)."""

    temperature: float = 1.0
    model_dir: Path | None = None
    boundary: int = 0
    parameters: Mapping[str, str] = field(default_factory=dict)


ScoreFactory = Callable[[str, ScoreContext], ScoreFn]  # (score name, context) -> the score


def logsumexp(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Stable ``log(sum(exp(logits)))`` along ``axis`` (no overflow for large logits)."""
    z = np.asarray(logits, dtype=np.float64)
    peak = np.max(z, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    out = np.log(np.sum(np.exp(z - peak), axis=axis, keepdims=True)) + peak
    return np.squeeze(out, axis=axis)


def energy(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Negative free energy ``T * logsumexp(z / T)`` (paper eq. 3 at ``T = 1``)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = np.asarray(logits, dtype=np.float64)
    return (temperature * logsumexp(z / temperature)).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``logits: (N, C)``, returned as ``(N, C) float64``."""
    z = np.asarray(logits, dtype=np.float64)
    return np.exp(z - logsumexp(z)[:, None])


def softmax_confidence(logits: np.ndarray) -> np.ndarray:
    """Maximum softmax probability ``max_i softmax(z)_i``."""
    return np.max(softmax(logits), axis=1).astype(np.float32)


def negative_entropy(logits: np.ndarray) -> np.ndarray:
    """Negative Shannon entropy ``sum_i p_i log p_i`` of the softmax (0 = fully confident)."""
    z = np.asarray(logits, dtype=np.float64)
    log_p = z - logsumexp(z)[:, None]
    return np.sum(np.exp(log_p) * log_p, axis=1).astype(np.float32)


def energy_of_softmax(logits: np.ndarray) -> np.ndarray:
    """``logsumexp(softmax(z))``: the score the authors' published evaluation script computes."""
    return logsumexp(softmax(logits)).astype(np.float32)


SCORES: dict[str, ScoreFn] = {
    "energy": energy,
    "softmax": softmax_confidence,
    "entropy": negative_entropy,
    "energy_of_softmax": energy_of_softmax,
}


def closed_form(name: str, context: ScoreContext) -> ScoreFn:
    """The ``ScoreFactory`` of ``SCORES``."""
    return get_score(name, context.temperature)


def get_score(name: str, temperature: float = 1.0) -> ScoreFn:
    """Return the score function called ``name`` (one of ``SCORES``).

    ``temperature`` applies to ``energy`` only.
    """
    if name not in SCORES:
        raise ValueError(f"unknown routing score {name!r}; choose one of {sorted(SCORES)}")
    if name == "energy" and temperature != 1.0:
        return lambda logits: energy(logits, temperature)
    return SCORES[name]
