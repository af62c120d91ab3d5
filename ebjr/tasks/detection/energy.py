"""The detection routing score (paper eqs. 12-14), pure NumPy.

For one image with ``B`` kept boxes, ``C`` class logits ``z_bc`` and, per box side ``j``, logits
``w_bjk`` over bins of width ``delta`` (a distributional box head):

    -F^c = (1/B) sum_b logsumexp_c z_bc                                    (eq. 12)
    -F^r = (1/4B) sum_b sum_j log integral exp S(y) dy
         = (1/4B) sum_b sum_j (logsumexp_k w_bjk + log delta)             (eq. 13)
    s(x) = -F^o = -F^c - F^r                                               (eq. 14)

The integral is exact for a piecewise-constant density over the bins. An image where the
Student keeps no box has score ``-inf``: no detection is no evidence, so the Teacher decides
(at ``threshold = -inf`` the Student's empty answer stands). ``terms`` picks the classification
term, the box term or both (the ablation). A plain (non-distributional) box head has no box
term: route on ``terms=("class",)``.

Shapes: ``class_logits (N, K, C)``, ``box_logits (N, K, 4, BINS)``, ``valid (N, K)`` bool.
"""

from __future__ import annotations

import numpy as np

from ebjr.core.scores import logsumexp

TERMS = ("class", "box")


def detection_energy(
    class_logits: np.ndarray,
    box_logits: np.ndarray | None,
    valid: np.ndarray,
    bin_width: float,
    terms: tuple[str, ...] = TERMS,
) -> np.ndarray:
    """(N,) float32 negative free energy of each image's kept boxes (module docstring)."""
    if not terms or set(terms) - set(TERMS):
        raise ValueError(f"terms must be a non-empty subset of {TERMS}, not {terms}")
    valid = np.asarray(valid, dtype=bool)
    per_box = np.zeros(valid.shape)
    if "class" in terms:
        per_box += logsumexp(class_logits)  # (N, K)
    if "box" in terms:
        per_box += (logsumexp(box_logits) + np.log(bin_width)).mean(axis=-1)  # (N, K)
    kept = valid.sum(axis=1)
    total = np.where(valid, per_box, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(kept > 0, total / np.maximum(kept, 1), -np.inf)
    return score.astype(np.float32)
