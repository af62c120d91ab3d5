"""Does the ``max_accuracy_drop`` promise hold? The violation study of ``EVALUATION.md``.

Held-out labelled rows are split at random into a calibration half and an evaluation half,
``SPLITS`` times. On each calibration half two rules pick a threshold for a drop ``epsilon``:
the knob (``ebjr.build.risk_control``: certified with confidence ``1 - delta``) and the point
estimate ``min_accuracy = Teacher - epsilon`` (the cheapest threshold whose calibration accuracy
reaches it). Each is then measured on its evaluation half. A violation is an evaluation half on
which the cascade falls more than ``epsilon`` below the Teacher. The knob should violate at
most ``delta`` of the time (plus the noise of ``SPLITS`` trials and of the evaluation half); the
point estimate, chosen right at the edge, about half of the time.

Shapes: ``scores``, ``student_ok``, ``teacher_ok``: ``(N,)`` under the served routing score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ebjr.build.risk_control import MAX_DROPS, certified, p_values, two_stage_path
from ebjr.core.calibration import cheapest_reaching, sweep

SPLITS = 200
DROPS = (0.002, 0.003, 0.005, 0.007, 0.01, 0.015, 0.02)  # the plot's; each one of MAX_DROPS
CONFIDENCES = (0.9, 0.95)
TARGETS = ((0.005, 0.9), (0.005, 0.95), (0.01, 0.9), (0.01, 0.95))  # the table
ALLOWANCE = 0.03  # violations may exceed delta by this much (noise of the splits)


@dataclass(frozen=True)
class Violations:
    """One ``(drop, confidence)`` over every split: the share of evaluation halves on which
    each rule broke the promise, and the mean Teacher share each sent there."""

    drop: float
    confidence: float
    certified: float  # the knob: accuracy drop > ``drop`` on the evaluation half
    certified_lost: float  # the knob: rows lost to the Teacher > ``drop`` (what it certifies)
    min_accuracy: float  # the point estimate: accuracy drop > ``drop``
    certified_share: float
    min_accuracy_share: float

    @property
    def met(self) -> bool:
        return self.certified <= 1 - self.confidence + ALLOWANCE


def _measure(
    scores: np.ndarray, student_ok: np.ndarray, teacher_ok: np.ndarray, threshold: float
) -> tuple[float, float, float]:
    """``(accuracy drop, share lost to the Teacher, Teacher share)`` at ``threshold``."""
    kept = scores >= threshold
    accuracy = np.where(kept, student_ok, teacher_ok).mean()
    lost = (kept & ~student_ok & teacher_ok).mean()
    return float(teacher_ok.mean() - accuracy), float(lost), float((~kept).mean())


def violation_study(
    scores: np.ndarray,
    student_ok: np.ndarray,
    teacher_ok: np.ndarray,
    splits: int = SPLITS,
    seed: int = 0,
) -> list[Violations]:
    """Both rules over ``splits`` random halves of the rows, at every ``DROPS`` x
    ``CONFIDENCES`` pair (``TARGETS`` among them)."""
    pairs = [(d, c) for c in CONFIDENCES for d in DROPS]
    columns = {d: int(np.flatnonzero(np.isclose(MAX_DROPS, d))[0]) for d in DROPS}
    rng = np.random.default_rng(seed)
    n = len(scores)
    # (pairs, splits, 5): the knob's violations (drop, lost) and share; min_accuracy's, share
    found = np.zeros((len(pairs), splits, 5))
    for s in range(splits):
        order = rng.permutation(n)
        fit, held = order[: n // 2], order[n // 2 :]
        rows = len(fit)
        path = two_stage_path(scores[fit], student_ok[fit] | ~teacher_ok[fit])
        p = p_values(np.rint((1.0 - path.accuracy) * rows), rows)
        front = sweep(scores[fit], student_ok[fit], teacher_ok[fit])
        teacher = float(teacher_ok[fit].mean())
        held_rows = (scores[held], student_ok[held], teacher_ok[held])
        for k, (drop, confidence) in enumerate(pairs):
            t_knob = path.thresholds[certified(p[:, columns[drop]], 1 - confidence), 0]
            point = cheapest_reaching(front.accuracy, front.teacher_fraction, teacher - drop)
            knob_drop, knob_lost, knob_share = _measure(*held_rows, t_knob)
            rule_drop, _, rule_share = _measure(*held_rows, front.thresholds[point, 0])
            found[k, s] = [
                knob_drop > drop,
                knob_lost > drop,
                knob_share,
                rule_drop > drop,
                rule_share,
            ]
    return [
        Violations(
            drop=drop,
            confidence=confidence,
            certified=float(found[k, :, 0].mean()),
            certified_lost=float(found[k, :, 1].mean()),
            min_accuracy=float(found[k, :, 3].mean()),
            certified_share=float(found[k, :, 2].mean()),
            min_accuracy_share=float(found[k, :, 4].mean()),
        )
        for k, (drop, confidence) in enumerate(pairs)
    ]
