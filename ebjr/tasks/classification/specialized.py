"""Specialized EBJR's data (paper section 2.4): training targets for a Student of the top-C
popular classes plus one "other" class, and skewed streams to calibrate and evaluate it on.
Its routing (eqs. 16-18) is ``ebjr.core.policy.SpecializedPolicy``.

Shapes: ``labels: (N,)`` in the Teacher's label space.
"""

from __future__ import annotations

import numpy as np


def relabel(labels: np.ndarray, popular: tuple[int, ...]) -> np.ndarray:
    """Training targets: popular class ``popular[i]`` -> ``i``, every other class -> ``C``."""
    lookup = np.full(int(labels.max()) + 1, len(popular), dtype=np.int64)
    lookup[list(popular)] = np.arange(len(popular))
    return lookup[labels]


def skewed_stream(
    labels: np.ndarray, popular: tuple[int, ...], share: float, size: int, seed: int = 0
) -> np.ndarray:
    """Row indices of a stream where ``share`` of ``size`` rows come from ``popular`` classes,
    drawn with replacement, shuffled, with a fixed seed (paper: 75%)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], got {share}")
    rng = np.random.default_rng(seed)
    is_popular = np.isin(labels, popular)
    n_popular = round(share * size)
    rows = np.concatenate(
        [
            rng.choice(np.flatnonzero(is_popular), n_popular, replace=True),
            rng.choice(np.flatnonzero(~is_popular), size - n_popular, replace=True),
        ]
    )
    return rng.permutation(rows)
