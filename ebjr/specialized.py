"""Specialized EBJR (paper section 2.4, eqs. 16-18): a Student trained on the top-C popular
classes plus one "other" class.

Shapes: ``logits: (N, C + 1)`` from the specialized Student, ``classes: (C,)`` the Teacher
label of each Student class (the "other" column is ``other_index``), ``labels: (N,)`` in the
Teacher's label space.
"""

from __future__ import annotations

import numpy as np

from ebjr.scores import ScoreFn

UNKNOWN_LOGIT = np.float32(-1e30)  # classes the Student does not know: finite, JSON-safe


def known_columns(num_columns: int, other_index: int) -> np.ndarray:
    """Column indices of the C popular classes (every column but ``other_index``)."""
    return np.delete(np.arange(num_columns), other_index)


def specialized_scores(logits: np.ndarray, other_index: int, score: ScoreFn) -> np.ndarray:
    """Eq. 17: the routing score over the top-C logits only, the "other" column excluded."""
    return score(logits[:, known_columns(logits.shape[1], other_index)])


def specialized_to_student(
    scores: np.ndarray, thresholds: np.ndarray, logits: np.ndarray, other_index: int
) -> np.ndarray:
    """Eq. 16: ``(N,) bool``, True where ``score >= t`` and the Student does not predict
    "other"; every other row goes to the Teacher (eq. 18)."""
    return (np.asarray(scores) >= np.asarray(thresholds)) & (logits.argmax(axis=1) != other_index)


def effective_scores(scores: np.ndarray, logits: np.ndarray, other_index: int) -> np.ndarray:
    """Scores with rows predicted "other" at -inf: ``effective >= t`` is eq. 16 for every
    finite ``t``, so threshold sweeps and calibration apply unchanged."""
    return np.where(logits.argmax(axis=1) == other_index, -np.inf, scores).astype(np.float32)


def to_teacher_space(
    logits: np.ndarray, classes: np.ndarray, other_index: int, num_classes: int
) -> np.ndarray:
    """Map ``(N, C + 1)`` Student logits to ``(N, num_classes)`` Teacher label space: known
    classes keep their logits, the rest get ``UNKNOWN_LOGIT``; "other" is dropped."""
    out = np.full((len(logits), num_classes), UNKNOWN_LOGIT, dtype=np.float32)
    out[:, classes] = logits[:, known_columns(logits.shape[1], other_index)]
    return out


def student_correct(
    logits: np.ndarray, labels: np.ndarray, classes: np.ndarray, other_index: int
) -> np.ndarray:
    """(N,) bool: the specialized Student names the right Teacher label (never "other")."""
    mapped = to_teacher_space(
        logits, classes, other_index, int(max(labels.max(), classes.max())) + 1
    )
    return (logits.argmax(axis=1) != other_index) & (mapped.argmax(axis=1) == labels)


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
    rows = np.concatenate([
        rng.choice(np.flatnonzero(is_popular), n_popular, replace=True),
        rng.choice(np.flatnonzero(~is_popular), size - n_popular, replace=True),
    ])  # fmt: skip
    return rng.permutation(rows)
