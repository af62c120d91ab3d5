"""N-stage cascades: Student -> larger Student(s) -> Teacher, one threshold per stage boundary.

Stage ``k`` (every stage but the last) keeps a row when its routing score is at or above the
boundary's threshold ``t_k`` (eq. 6 at each boundary); the rows it does not keep go on to stage
``k + 1``, and the last stage (the Teacher) answers whatever reaches it. Every row pays for the
first stage, the rows that reach stage ``k`` pay for it too.

Calibration (pure NumPy) finds the Pareto frontier of threshold tuples on a labelled split,
cost against accuracy, and the cheapest tuple reaching the last stage's accuracy. Shapes, for
``S`` stages on ``N`` rows: ``scores``: ``S - 1`` arrays ``(N,)`` (each boundary's effective
scores, ``ebjr.core.policy``); ``correct``: ``S`` arrays ``(N,) bool``; ``flops``: ``S`` numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ebjr.core.calibration import ACCURACY, Calibration, Frontier, cheapest_reaching, sweep

GRID = 64  # candidate thresholds per boundary before the last (the last is swept exactly)


def threshold_grid(scores: np.ndarray, size: int) -> np.ndarray:
    """``-inf``, ``size`` score quantiles and ``+inf``: candidate thresholds for one boundary."""
    finite = scores[np.isfinite(scores)]
    inner = np.unique(np.quantile(finite, np.linspace(0, 1, size))) if len(finite) else []
    return np.concatenate([[-np.inf], inner, [np.inf]])


def operating_points(
    scores: list[np.ndarray],
    correct: list[np.ndarray],
    flops: list[float],
    grid: int = GRID,
) -> Frontier:
    """Every operating point searched: a grid for each boundary but the last, then an exact
    sweep of the last boundary on the rows that reach it. Not yet reduced to the frontier."""
    n, last = len(correct[0]), len(scores) - 1
    points: list[tuple[np.ndarray, ...]] = []

    def search(stage: int, rows: np.ndarray, prefix: tuple, right: float, cost: float) -> None:
        # ``rows``: (N,) bool reaching ``stage``; ``right``: rows answered right before it;
        # ``cost``: FLOPs summed over all rows so far, ``stage`` included
        if stage == last and not rows.any():
            points.append((np.array([(*prefix, -np.inf)]), [right / n], [0.0], [cost / n]))
            return
        if stage == last:
            s = sweep(scores[stage][rows], correct[stage][rows], correct[stage + 1][rows])
            reached = s.teacher_fraction * rows.sum()
            k = len(s.thresholds)
            points.append(
                (
                    np.column_stack([np.tile(prefix, (k, 1)), s.thresholds[:, 0]]),
                    (right + s.accuracy * rows.sum()) / n,
                    reached / n,
                    (cost + reached * flops[stage + 1]) / n,
                )
            )
            return
        for t in threshold_grid(scores[stage][rows], grid):
            on = rows & (scores[stage] < t)
            kept = rows & ~on
            search(
                stage + 1,
                on,
                (*prefix, t),
                right + correct[stage][kept].sum(),
                cost + on.sum() * flops[stage + 1],
            )

    search(0, np.ones(n, dtype=bool), (), 0.0, n * flops[0])
    thresholds, accuracy, fraction, cost = (np.concatenate(p) for p in zip(*points, strict=True))
    return Frontier(thresholds.reshape(len(accuracy), -1), accuracy, fraction, cost)


@dataclass(frozen=True)
class Stages:
    """One cascade measured on ``N`` labelled rows: ``S - 1`` score arrays ``(N,)``, ``S``
    correctness arrays ``(N,) bool`` and ``S`` FLOPs figures (Student first)."""

    scores: list[np.ndarray]
    correct: list[np.ndarray]
    flops: list[float]

    def take(self, rows: np.ndarray) -> Stages:
        return Stages([s[rows] for s in self.scores], [c[rows] for c in self.correct], self.flops)

    def at(self, thresholds: tuple[float, ...]) -> tuple[float, float, float]:
        """``(accuracy, share reaching the last stage, average FLOPs)`` at ``thresholds``."""
        pending = np.ones(len(self.correct[0]), dtype=bool)
        right, cost = 0, self.flops[0] * len(pending)
        for k, t in enumerate(thresholds):
            kept = pending & (self.scores[k] >= t)
            right += self.correct[k][kept].sum()
            pending &= ~kept
            cost += pending.sum() * self.flops[k + 1]
        right += self.correct[-1][pending].sum()
        n = len(pending)
        return float(right / n), float(pending.mean()), float(cost / n)

    def frontier(self) -> tuple[Frontier, int]:
        """The Pareto frontier on these rows, and the index of its cheapest point reaching the
        last stage's accuracy (within the accuracy metric's tolerance; "everything to the last
        stage" always does)."""
        front = pareto(operating_points(self.scores, self.correct, self.flops))
        target = ACCURACY.parity_target(float(np.mean(self.correct[-1])))
        return front, cheapest_reaching(front.accuracy, front.flops, target)

    def parity(self) -> tuple[tuple[float, ...], float]:
        """The parity thresholds on these rows, and their average FLOPs."""
        front, i = self.frontier()
        return tuple(float(t) for t in front.thresholds[i]), float(front.flops[i])


def held_out_halves(n: int, repeats: int, seed: int):
    """``repeats`` random splits of ``n`` rows in halves, each used both ways: yields
    ``(fit rows, held-out rows)``."""
    rng = np.random.default_rng(seed)
    for _ in range(repeats):
        order = rng.permutation(n)
        yield order[: n // 2], order[n // 2 :]
        yield order[n // 2 :], order[: n // 2]


def held_out_comparison(a: Stages, b: Stages, repeats: int = 50, seed: int = 0) -> dict:
    """Cascade ``a`` against cascade ``b`` on rows their thresholds were not chosen on.

    Each repeat splits the rows in random halves; each cascade takes its parity thresholds on
    one half and is measured on the other (both ways), so a cascade with more thresholds cannot
    win by fitting the noise of the rows it is chosen on. Returns the share of halves where
    ``a`` is cheaper, and the mean ``a / b`` FLOPs ratio and ``a - b`` accuracy difference."""
    ratios, differences = [], []
    for fit, held in held_out_halves(len(a.correct[0]), repeats, seed):
        acc_a, _, cost_a = a.take(held).at(a.take(fit).parity()[0])
        acc_b, _, cost_b = b.take(held).at(b.take(fit).parity()[0])
        ratios.append(cost_a / cost_b)
        differences.append(acc_a - acc_b)
    return {
        "share_cheaper": float(np.mean(np.array(ratios) < 1)),
        "flops_ratio": float(np.mean(ratios)),
        "accuracy_difference": float(np.mean(differences)),
    }


def held_out_shortfall(cascade: Stages, repeats: int = 50, seed: int = 0) -> dict:
    """How far below the last stage a cascade falls on rows its parity thresholds were not
    chosen on: over random halves (``held_out_halves``), the last stage's accuracy minus the
    cascade's on the held-out half. Returns the mean, the 90th percentile, the number of
    halves and the rows each threshold choice saw."""
    shortfalls = []
    for fit, held in held_out_halves(len(cascade.correct[0]), repeats, seed):
        accuracy, _, _ = cascade.take(held).at(cascade.take(fit).parity()[0])
        shortfalls.append(float(np.mean(cascade.correct[-1][held])) - accuracy)
    return {
        "mean": float(np.mean(shortfalls)),
        "p90": float(np.quantile(shortfalls, 0.9)),
        "halves": len(shortfalls),
        "rows": len(cascade.correct[0]) // 2,
    }


def pareto(points: Frontier) -> Frontier:
    """The points no other point beats on both cost and accuracy, by ascending cost."""
    order = np.lexsort((-points.accuracy, points.flops))
    best = np.maximum.accumulate(points.accuracy[order])
    rises = np.concatenate([[True], best[1:] > best[:-1]])
    keep = order[rises]
    return points.take(keep)


def calibrate_cascade(
    stages: tuple[str, ...],
    score_names: tuple[str, ...],
    scores: list[np.ndarray],
    correct: list[np.ndarray],
    flops: list[float],
    split: str = "val",
    points: int = 201,
) -> Calibration:
    """The calibration record of one N-stage cascade on a labelled split (never ``test``)."""
    if split == "test":
        raise ValueError("calibration must not use the test split")
    if not len(stages) == len(correct) == len(flops) == len(scores) + 1 == len(score_names) + 1:
        raise ValueError("give one model, correctness and FLOPs per stage, one score per boundary")
    front, parity = Stages(scores, correct, flops).frontier()
    return Calibration(
        split=split,
        rows=len(correct[0]),
        stages=tuple(stages),
        scores=tuple(score_names),
        stage_accuracy=tuple(float(np.mean(c)) for c in correct),
        stage_flops=tuple(float(f) for f in flops),
        parity_thresholds=tuple(float(t) for t in front.thresholds[parity]),
        parity_teacher_fraction=float(front.teacher_fraction[parity]),
        parity_accuracy=float(front.accuracy[parity]),
        parity_flops=float(front.flops[parity]),
        table=front.thinned(points),
    )
