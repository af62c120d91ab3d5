"""Threshold sweeps and the calibration file the router loads.

All functions are pure NumPy. Shapes: ``scores: (N,)`` the Student's routing score per row,
``student_correct``/``teacher_correct``: ``(N,) bool`` whether each model is right on that row.
A threshold ``t`` sends rows with ``score < t`` to the Teacher (eq. 6).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ebjr.core.policy import RoutingPolicy
from ebjr.core.routing import RequestError, parse_threshold
from ebjr.core.scores import SCORES, ScoreFn, get_score

PARITY_TOLERANCE = 0.001  # "reaches Teacher accuracy": within 0.1 point


def cascade_flops(
    student_flops: float, teacher_flops: float, teacher_fraction: float | np.ndarray
) -> float | np.ndarray:
    """The paper's average cost per image, ``(N_S*F_S + N_T*(F_S + F_T)) / (N_S + N_T)``:
    every image pays for the Student, a ``teacher_fraction`` of them for the Teacher too."""
    return student_flops + teacher_fraction * teacher_flops


@dataclass(frozen=True)
class Sweep:
    """One point per candidate threshold, ascending; all arrays ``(K,)``.

    ``flops`` is the paper's average cost per image (``cascade_flops``).
    """

    thresholds: np.ndarray
    accuracy: np.ndarray
    teacher_fraction: np.ndarray
    flops: np.ndarray

    def without_minus_inf(self) -> Sweep:
        """The sweep without its ``-inf`` end point (for a specialized Student, eq. 16 never
        keeps "other" rows on the Student, whatever the threshold)."""
        return Sweep(
            self.thresholds[1:], self.accuracy[1:], self.teacher_fraction[1:], self.flops[1:]
        )


def sweep(
    scores: np.ndarray,
    student_correct: np.ndarray,
    teacher_correct: np.ndarray,
    student_flops: float = 0.0,
    teacher_flops: float = 0.0,
) -> Sweep:
    """Accuracy, Teacher fraction and FLOPs at every distinct threshold, from -inf to +inf.

    The candidates are ``-inf``, every distinct score and ``+inf``: between two consecutive
    distinct scores nothing changes.
    """
    order = np.argsort(scores, kind="stable")
    sorted_scores = np.asarray(scores, dtype=np.float64)[order]
    n = len(sorted_scores)
    distinct = np.unique(sorted_scores)
    thresholds = np.concatenate([[-np.inf], distinct[np.isfinite(distinct)], [np.inf]])
    n_teacher = np.searchsorted(sorted_scores, thresholds, side="left")  # rows with score < t
    teacher_cum = np.concatenate([[0], np.cumsum(np.asarray(teacher_correct)[order])])
    student_cum = np.concatenate([[0], np.cumsum(np.asarray(student_correct)[order])])
    correct = teacher_cum[n_teacher] + (student_cum[n] - student_cum[n_teacher])
    fraction = n_teacher / n
    return Sweep(
        thresholds=thresholds,
        accuracy=correct / n,
        teacher_fraction=fraction,
        flops=cascade_flops(student_flops, teacher_flops, fraction),
    )


def cheapest_reaching(
    accuracy: np.ndarray, teacher_fraction: np.ndarray, target: float
) -> int | None:
    """Index of the point with the lowest Teacher fraction (so the lowest FLOPs) among those
    with ``accuracy >= target``, or None. Both arrays ``(K,)``."""
    reaching = np.flatnonzero(accuracy >= target - 1e-12)
    if len(reaching) == 0:
        return None
    return int(reaching[np.argmin(teacher_fraction[reaching])])


def fraction_point(teacher_fraction: np.ndarray, fraction: float) -> int:
    """The ``teacher_fraction`` knob: the index of the table point (``teacher_fraction: (K,)``)
    nearest ``fraction``."""
    if not 0.0 <= fraction <= 1.0:
        raise RequestError(f"teacher_fraction must be in [0, 1], got {fraction}")
    return int(np.argmin(np.abs(teacher_fraction - fraction)))


def accuracy_point(table: Sweep, accuracy: float) -> int:
    """The ``min_accuracy`` knob: the index of the cheapest point of ``table`` (anything with
    ``accuracy`` and ``flops`` arrays) expected to reach ``accuracy``."""
    best = float(table.accuracy.max())
    if not 0.0 <= accuracy <= best:
        raise RequestError(
            f"min_accuracy must be in [0, {best:.4f}] (the best calibrated accuracy), "
            f"got {accuracy}"
        )
    return cheapest_reaching(table.accuracy, table.flops, accuracy)


def crossing_threshold(scores: np.ndarray, student_correct: np.ndarray, bins: int = 60) -> float:
    """The paper's Fig. 4 operating point: where the score density of rows the Student gets
    wrong falls below the density of rows it gets right (the highest such crossing)."""
    correct, wrong = scores[student_correct], scores[~student_correct]
    if len(correct) == 0 or len(wrong) == 0:
        return -math.inf if len(wrong) == 0 else math.inf
    edges = np.linspace(scores.min(), scores.max(), bins + 1)
    d_correct = np.histogram(correct, edges, density=True)[0]
    d_wrong = np.histogram(wrong, edges, density=True)[0]
    wrong_dominates = np.flatnonzero(d_wrong > d_correct)
    if len(wrong_dominates) == 0:
        return float(edges[0])
    return float(edges[wrong_dominates.max() + 1])


def _finite(scores: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(scores)
    return np.asarray(scores)[keep], np.asarray(correct)[keep]


@dataclass(frozen=True)
class CalibrationRecord:
    """A router's ``calibration.json``: one routing score measured on one labelled split.

    ``parity_threshold`` is the cheapest threshold reaching the Teacher's accuracy (within
    ``PARITY_TOLERANCE``); it is also the router's calibrated default threshold. ``table`` keeps
    evenly spaced operating points for the ``teacher_fraction`` and ``min_accuracy`` knobs.
    ``evidence`` holds every candidate score's parity point; ``popular`` and ``share`` describe
    a specialized router's calibration stream.
    """

    split: str
    rows: int
    score: str
    temperature: float
    student_accuracy: float
    teacher_accuracy: float
    student_flops: float
    teacher_flops: float
    parity_threshold: float
    parity_teacher_fraction: float
    parity_accuracy: float
    crossing_threshold: float
    table: Sweep
    chosen_by: str = "pinned"
    evidence: dict[str, dict[str, float]] = field(default_factory=dict)
    popular: tuple[int, ...] = ()
    share: float | None = None

    @property
    def scores(self) -> tuple[str, ...]:
        """The routing score of each stage boundary (one, for two stages)."""
        return (self.score,)

    @property
    def parity_thresholds(self) -> tuple[float, ...]:
        """The parity threshold of each stage boundary (one, for two stages)."""
        return (self.parity_threshold,)

    def for_teacher_fraction(self, fraction: float) -> float:
        """The threshold expected to send about ``fraction`` of traffic to the Teacher."""
        return float(self.table.thresholds[fraction_point(self.table.teacher_fraction, fraction)])

    def for_min_accuracy(self, accuracy: float) -> float:
        """The cheapest threshold expected to reach ``accuracy``."""
        return float(self.table.thresholds[accuracy_point(self.table, accuracy)])


def calibrate(
    scores: np.ndarray,
    student_correct: np.ndarray,
    teacher_correct: np.ndarray,
    student_flops: float,
    teacher_flops: float,
    score_name: str = "energy",
    temperature: float = 1.0,
    points: int = 201,
    split: str = "val",
    keeps_everything_at_minus_inf: bool = True,
) -> CalibrationRecord:
    """The calibration record for one score on one labelled split (never the test split).

    ``scores`` are a policy's ``effective_scores``. The table keeps ``points`` thresholds at
    evenly spaced Teacher fractions. Without ``keeps_everything_at_minus_inf`` (a specialized
    Student, whose "other" rows always go to the Teacher) the ``-inf`` end point is left out.
    """
    if split == "test":
        raise ValueError("calibration must not use the test split")
    full = sweep(scores, student_correct, teacher_correct, student_flops, teacher_flops)
    if not keeps_everything_at_minus_inf:
        full = full.without_minus_inf()
    keep = np.unique(
        np.searchsorted(full.teacher_fraction, np.linspace(0, 1, points), side="left").clip(
            0, len(full.thresholds) - 1
        )
    )
    teacher_accuracy = float(np.mean(teacher_correct))
    parity = cheapest_reaching(
        full.accuracy, full.teacher_fraction, teacher_accuracy - PARITY_TOLERANCE
    )
    found = parity is not None
    return CalibrationRecord(
        split=split,
        rows=int(len(scores)),
        score=score_name,
        temperature=temperature,
        student_accuracy=float(np.mean(student_correct)),
        teacher_accuracy=teacher_accuracy,
        student_flops=float(student_flops),
        teacher_flops=float(teacher_flops),
        parity_threshold=float(full.thresholds[parity]) if found else math.inf,
        parity_teacher_fraction=float(full.teacher_fraction[parity]) if found else 1.0,
        parity_accuracy=float(full.accuracy[parity]) if found else teacher_accuracy,
        crossing_threshold=crossing_threshold(*_finite(scores, student_correct)),
        table=Sweep(
            full.thresholds[keep],
            full.accuracy[keep].round(6),
            full.teacher_fraction[keep].round(6),
            full.flops[keep].round(1),
        ),
    )


def calibrate_scores(
    student_logits: np.ndarray,
    teacher_logits: np.ndarray,
    labels: np.ndarray,
    student_flops: float,
    teacher_flops: float,
    policy: RoutingPolicy,
    pinned: str | None = None,
    temperature: float = 1.0,
    split: str = "val",
    extra_scores: dict[str, ScoreFn] | None = None,
) -> CalibrationRecord:
    """Calibrate ``policy`` with every routing score (``SCORES`` and ``extra_scores``, e.g. a
    learned gate; ``policy``'s own score is replaced by each) and keep the score that reaches
    Teacher accuracy cheapest (or ``pinned``). Ties go to ``energy``, the paper's score.

    student_logits: (N, C_s); teacher_logits: (N, C_t); labels: (N,). The record's ``evidence``
    holds every score's parity point.
    """
    candidates = {
        name: get_score(name, temperature if name == "energy" else 1.0) for name in SCORES
    }
    candidates.update(extra_scores or {})
    if pinned is not None and pinned not in candidates:
        raise ValueError(f"unknown routing score {pinned!r}; choose one of {sorted(candidates)}")
    teacher_ok = teacher_logits.argmax(axis=1) == labels
    student_ok = policy.student_correct(student_logits, labels)
    records = {}
    for name, score in candidates.items():
        t = temperature if name == "energy" else 1.0
        scored = policy.with_score(score)
        records[name] = calibrate(
            scored.effective_scores(student_logits),
            student_ok,
            teacher_ok,
            student_flops,
            teacher_flops,
            name,
            t,
            split=split,
            keeps_everything_at_minus_inf=policy.keeps_everything_at_minus_inf,
        )
    evidence = {
        name: {
            "parity_threshold": r.parity_threshold,
            "parity_teacher_fraction": r.parity_teacher_fraction,
            "parity_accuracy": r.parity_accuracy,
            "fewer_flops_than_teacher_at_parity": teacher_flops
            / cascade_flops(student_flops, teacher_flops, r.parity_teacher_fraction),
        }
        for name, r in records.items()
    }
    chosen = pinned or min(
        records, key=lambda n: (records[n].parity_teacher_fraction, n != "energy")
    )
    return replace(
        records[chosen],
        chosen_by="pinned" if pinned else "lowest cost at parity",
        evidence=evidence,
    )


def json_number(value: float) -> float | str:
    """JSON has no infinities: write them as ``"inf"`` / ``"-inf"``."""
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def write_calibration(path: Path, record: CalibrationRecord) -> None:
    """Write ``record`` as ``calibration.json``."""
    body = asdict(record)
    body["table"] = {
        "threshold": [json_number(float(t)) for t in record.table.thresholds],
        "accuracy": record.table.accuracy.tolist(),
        "teacher_fraction": record.table.teacher_fraction.tolist(),
        "flops": record.table.flops.tolist(),
    }
    for key in ("parity_threshold", "crossing_threshold"):
        body[key] = json_number(body[key])
    for point in body["evidence"].values():
        point["parity_threshold"] = json_number(point["parity_threshold"])
    body["popular"] = list(record.popular)
    Path(path).write_text(json.dumps(body, indent=1) + "\n")


def read_calibration(path: Path) -> CalibrationRecord:
    """Read a ``calibration.json`` written by ``write_calibration``."""
    body = json.loads(Path(path).read_text())
    table = body.pop("table")
    for key in ("parity_threshold", "crossing_threshold"):
        body[key] = parse_threshold(body[key], key)
    for point in body.get("evidence", {}).values():
        point["parity_threshold"] = parse_threshold(point["parity_threshold"])
    return CalibrationRecord(
        **{**body, "popular": tuple(body.get("popular", ()))},
        table=Sweep(
            thresholds=np.array([parse_threshold(t) for t in table["threshold"]]),
            accuracy=np.array(table["accuracy"], dtype=np.float64),
            teacher_fraction=np.array(table["teacher_fraction"], dtype=np.float64),
            flops=np.array(table["flops"], dtype=np.float64),
        ),
    )
