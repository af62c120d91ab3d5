"""The ``max_accuracy_drop`` knob's table, certified by Learn then Test (Angelopoulos et al.
2021) with MAPIE's p-values and fixed-sequence testing.

The loss controlled is the share of **rows lost to the Teacher**: a stage before the Teacher
keeps the row and answers it wrong where the Teacher answers it right. The cascade's accuracy
drop against the Teacher is that share minus the share of rows it wins back (kept, right,
Teacher wrong), so a bound on the loss is a bound on the drop. The loss is binary, which makes
MAPIE's exact binomial tail (Hoeffding-Bentkus, ``binary=True``) tight at the small rates
asked for. It is the tightest binary bound of the drop: the disagreement with the Teacher,
which needs no labels, counts these rows and more, so certifying it would send more rows to
the Teacher for the same promise.

A path of operating points runs from the safest (everything to the Teacher: nothing lost) to
the cheapest. Fixed-sequence testing walks it at level ``delta`` and stops at the first point
whose null "loss > epsilon" it cannot reject; the last rejected point is served. For two
stages the path is the threshold itself, from ``+inf`` down: fewer rows kept can only mean
fewer rows lost, so the risk is monotone and the order needs no data (RCPS, Bates et al.
2021). For more stages the path is the cost-vs-loss frontier of a random half of the rows, and
the other half is tested ("split fixed sequence"), so the order never sees the rows it is
tested on.

Shapes: ``scores: (N,)``, ``safe: (N,) bool`` (the stage's answer loses nothing against the
Teacher's: it is right, or the Teacher is wrong); a path of ``K`` points: ``thresholds: (K, B)``,
``teacher_fraction: (K,)``, ``lost: (K,)`` counts on ``rows`` rows.
"""

from __future__ import annotations

import numpy as np
from mapie.risk_control import control_fwer
from mapie.risk_control.methods import compute_hoeffding_bentkus_p_value

from ebjr.core.calibration import Frontier, RiskTable, sweep
from ebjr.core.cascade_calibration import Stages, operating_points, pareto

MAX_DROPS = np.round(np.arange(1, 51) / 1000, 3)  # 0.1 to 5 accuracy points
CONFIDENCES = np.array([0.8, 0.9, 0.95, 0.99])
SEED = 0  # the N-stage path's random half


def p_values(lost: np.ndarray, rows: int) -> np.ndarray:
    """``(K, E)``: each path point's p-value for the null "loss > drop", for each drop in
    ``MAX_DROPS`` (``lost: (K,)`` counts on ``rows`` rows). A path repeats few distinct
    counts, so each is computed once."""
    counts, each = np.unique(lost, return_inverse=True)
    return compute_hoeffding_bentkus_p_value(counts / rows, rows, MAX_DROPS, binary=True)[each]


def certified(p: np.ndarray, delta: float) -> int:
    """The index of the cheapest point on a path (``p: (K,)`` its p-values, safest first)
    that fixed-sequence testing certifies with error ``delta``; 0 (the safest, which loses
    nothing) when none is.

    Consecutive points with equal p-values are all rejected or the first of them stops the
    walk, so MAPIE tests only the last point of each such run: the same answer as testing
    every point, from one hypothesis per distinct lost count instead of one per threshold
    (its procedure costs ``O(K^2)`` on ``K`` hypotheses)."""
    ends = np.flatnonzero(np.append(p[1:] != p[:-1], True))
    rejected = control_fwer(p[ends], delta, "fixed_sequence")
    return int(ends[rejected.max()]) if len(rejected) else 0


def risk_table(
    thresholds: np.ndarray,
    teacher_fraction: np.ndarray,
    lost: np.ndarray,
    rows: int,
    procedure: str,
) -> RiskTable:
    """The knob's table from one path of operating points (safest first, see module doc)
    tested on ``rows`` rows: one certified point per confidence in ``CONFIDENCES`` and drop
    in ``MAX_DROPS``."""
    p = p_values(lost, rows)
    picks = np.array(
        [[certified(p[:, e], 1.0 - c) for e in range(len(MAX_DROPS))] for c in CONFIDENCES]
    )
    return RiskTable(
        max_drop=MAX_DROPS.copy(),
        confidence=CONFIDENCES.copy(),
        thresholds=thresholds[picks],
        teacher_fraction=teacher_fraction[picks].round(6),
        lost=(lost[picks] / rows).round(6),
        rows=rows,
        procedure=procedure,
    )


def two_stage_path(
    scores: np.ndarray, safe: np.ndarray, keeps_everything_at_minus_inf: bool = True
) -> Frontier:
    """A two-stage router's path, safest first: every threshold from ``+inf`` down, with the
    share of rows not lost as its ``accuracy``. A specialized Student
    (``keeps_everything_at_minus_inf`` False) never keeps its "other" rows, so its path stops
    before ``-inf``."""
    front = sweep(scores, safe, np.ones(len(safe), dtype=bool))
    path = np.arange(len(front.accuracy))[::-1]  # +inf (everything to the Teacher) first
    return front.take(path if keeps_everything_at_minus_inf else path[:-1])


def two_stage_risk(
    scores: np.ndarray, safe: np.ndarray, keeps_everything_at_minus_inf: bool = True
) -> RiskTable:
    """The knob's table for a two-stage router (``two_stage_path``): the Student's effective
    routing ``scores`` and where its answer is ``safe`` against the Teacher's, on every
    calibration row."""
    front = two_stage_path(scores, safe, keeps_everything_at_minus_inf)
    return path_table(front, len(safe), "fixed sequence over the threshold")


def cascade_risk(
    scores: list[np.ndarray], safe: list[np.ndarray], flops: list[float], seed: int = SEED
) -> RiskTable:
    """The knob's table for an N-stage router: each boundary's effective ``scores`` and where
    each stage before the Teacher is ``safe`` against it. The path is the cost-vs-loss
    frontier of a random half of the rows, tested on the other half."""
    n = len(safe[0])
    order = np.random.default_rng(seed).permutation(n)
    learn, test = order[: n // 2], order[n // 2 :]
    stages = Stages(scores, [*safe, np.ones(n, dtype=bool)], flops)
    learned = stages.take(learn)
    front = pareto(operating_points(learned.scores, learned.correct, learned.flops))
    path = np.concatenate([np.full((1, len(scores)), np.inf), front.thresholds[::-1]])
    tested = stages.take(test)
    kept_safe, share, cost = np.array([tested.at(tuple(t)) for t in path]).T
    held = Frontier(path, kept_safe, share, cost)
    return path_table(held, len(test), "split fixed sequence over a learned frontier")


def path_table(front: Frontier, rows: int, procedure: str) -> RiskTable:
    """``risk_table`` of a ``Frontier`` whose ``accuracy`` is the share of rows not lost to
    the Teacher, in path order."""
    lost = np.rint((1.0 - front.accuracy) * rows)
    return risk_table(front.thresholds, front.teacher_fraction, lost, rows, procedure)
