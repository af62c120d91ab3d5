"""Threshold sweeps and the calibration file the router loads.

All functions are pure NumPy. Shapes: ``scores: (N,)`` the Student's routing score per row,
``student_correct``/``teacher_correct``: ``(N,) bool`` whether each model is right on that row.
A threshold ``t`` sends rows with ``score < t`` to the Teacher (eq. 6).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ebjr import specialized as spec
from ebjr.layout import CALIBRATION_FILE
from ebjr.routing import RequestError, parse_threshold
from ebjr.scores import SCORES, get_score

PARITY_TOLERANCE = 0.001  # "reaches Teacher accuracy": within 0.1 point
KNOBS = ("threshold", "teacher_fraction", "min_accuracy")


@dataclass(frozen=True)
class Sweep:
    """One point per candidate threshold, ascending; all arrays ``(K,)``.

    ``flops`` is the paper's average cost per image,
    ``(N_S * F_S + N_T * (F_S + F_T)) / (N_S + N_T)``; the Student always runs.
    """

    thresholds: np.ndarray
    accuracy: np.ndarray
    teacher_fraction: np.ndarray
    flops: np.ndarray

    def without_minus_inf(self) -> Sweep:
        """The sweep without its ``-inf`` end point (for a specialized Student, eq. 16 never
        keeps "other" rows on the Student, whatever the threshold)."""
        return Sweep(self.thresholds[1:], self.accuracy[1:], self.teacher_fraction[1:],
                     self.flops[1:])  # fmt: skip


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
        flops=student_flops + fraction * teacher_flops,
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


def _round_trip(value: float) -> float | str:
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


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
    specialized: bool = False,
) -> dict:
    """The calibration record for one score on one labelled split (never the test split).

    The table keeps ``points`` thresholds at evenly spaced Teacher fractions. ``specialized``:
    ``scores`` are ``ebjr.specialized.effective_scores`` (-inf where the Student predicts
    "other"), and the ``-inf`` end point is left out: eq. 16 never gives those rows to the
    Student.
    """
    if split == "test":
        raise ValueError("calibration must not use the test split")
    full = sweep(scores, student_correct, teacher_correct, student_flops, teacher_flops)
    if specialized:
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
    parity_threshold = float(full.thresholds[parity]) if parity is not None else math.inf
    return {
        "split": split,
        "rows": int(len(scores)),
        "score": score_name,
        "temperature": temperature,
        "student_accuracy": float(np.mean(student_correct)),
        "teacher_accuracy": teacher_accuracy,
        "student_flops": float(student_flops),
        "teacher_flops": float(teacher_flops),
        "parity_threshold": _round_trip(parity_threshold),
        "parity_teacher_fraction": float(full.teacher_fraction[parity])
        if parity is not None
        else 1.0,
        "parity_accuracy": float(full.accuracy[parity]) if parity is not None else teacher_accuracy,
        "crossing_threshold": crossing_threshold(*_finite(scores, student_correct)),
        "default_threshold": _round_trip(parity_threshold),
        "table": {
            "threshold": [_round_trip(float(t)) for t in full.thresholds[keep]],
            "accuracy": full.accuracy[keep].round(6).tolist(),
            "teacher_fraction": full.teacher_fraction[keep].round(6).tolist(),
            "flops": full.flops[keep].round(1).tolist(),
        },
    }


def calibrate_scores(
    student_logits: np.ndarray,
    teacher_logits: np.ndarray,
    labels: np.ndarray,
    student_flops: float,
    teacher_flops: float,
    pinned: str | None = None,
    temperature: float = 1.0,
    split: str = "val",
    specialized: tuple[np.ndarray, int] | None = None,
) -> dict:
    """Calibrate every routing score and keep the one reaching Teacher accuracy cheapest.

    student_logits: (N, C) (or (N, C + 1) for a specialized Student), teacher_logits: (N, C');
    labels: (N,). ``pinned`` names the score to use whatever the measurement says.
    ``specialized`` = (classes, other_index) applies eqs. 16-18. The record's ``evidence``
    holds every score's parity point; ties go to ``energy``, the paper's score.
    """
    teacher_ok = teacher_logits.argmax(axis=1) == labels
    if specialized is None:
        student_ok = student_logits.argmax(axis=1) == labels
    else:
        classes, other = specialized
        student_ok = spec.student_correct(student_logits, labels, classes, other)
    evidence, records = {}, {}
    for name in SCORES:
        t = temperature if name == "energy" else 1.0
        score = get_score(name, t)
        if specialized is None:
            scores = score(student_logits)
        else:
            raw = spec.specialized_scores(student_logits, other, score)
            scores = spec.effective_scores(raw, student_logits, other)
        record = calibrate(
            scores, student_ok, teacher_ok, student_flops, teacher_flops, name, t,
            split=split, specialized=specialized is not None,
        )  # fmt: skip
        records[name] = record
        evidence[name] = {
            key: record[key]
            for key in ("parity_threshold", "parity_teacher_fraction", "parity_accuracy")
        }
        cost = student_flops + record["parity_teacher_fraction"] * teacher_flops
        evidence[name]["fewer_flops_than_teacher_at_parity"] = teacher_flops / cost
    if pinned is not None:
        chosen = pinned
    else:
        chosen = min(SCORES, key=lambda n: (records[n]["parity_teacher_fraction"], n != "energy"))
    if chosen not in records:
        raise ValueError(f"unknown routing score {chosen!r}; choose one of {sorted(SCORES)}")
    return {**records[chosen], "chosen_by": "pinned" if pinned else "lowest cost at parity",
            "evidence": evidence}  # fmt: skip


@dataclass(frozen=True)
class Calibration:
    """The router's view of a calibration file: thresholds for the per-request knobs."""

    score: str
    temperature: float
    default_threshold: float
    thresholds: np.ndarray  # (K,) ascending
    accuracy: np.ndarray  # (K,)
    teacher_fraction: np.ndarray  # (K,) ascending

    @classmethod
    def load(cls, path: Path) -> Calibration:
        return cls.load_record(json.loads(Path(path).read_text()))

    @classmethod
    def load_record(cls, record: dict) -> Calibration:
        table = record["table"]
        return cls(
            score=record["score"],
            temperature=float(record["temperature"]),
            default_threshold=parse_threshold(record["default_threshold"]),
            thresholds=np.array([parse_threshold(t) for t in table["threshold"]]),
            accuracy=np.array(table["accuracy"], dtype=np.float64),
            teacher_fraction=np.array(table["teacher_fraction"], dtype=np.float64),
        )

    def for_teacher_fraction(self, fraction: float) -> float:
        """The threshold expected to send about ``fraction`` of traffic to the Teacher."""
        if not 0.0 <= fraction <= 1.0:
            raise RequestError(f"teacher_fraction must be in [0, 1], got {fraction}")
        i = int(np.argmin(np.abs(self.teacher_fraction - fraction)))
        return float(self.thresholds[i])

    def for_min_accuracy(self, accuracy: float) -> float:
        """The cheapest threshold expected to reach ``accuracy``."""
        best = float(self.accuracy.max())
        if not 0.0 <= accuracy <= best:
            raise RequestError(
                f"min_accuracy must be in [0, {best:.4f}] (the best calibrated accuracy), "
                f"got {accuracy}"
            )
        return float(
            self.thresholds[cheapest_reaching(self.accuracy, self.teacher_fraction, accuracy)]
        )


def resolve_threshold(
    parameters_json: str, default: float, calibration: Calibration | None = None
) -> float:
    """The threshold for one request, from Triton's ``request.parameters()`` JSON.

    At most one knob: ``threshold`` (raw score), ``teacher_fraction`` or ``min_accuracy``
    (resolved through ``calibration``); none gives ``default``. Other parameters are ignored.
    """
    try:
        parameters = json.loads(parameters_json or "{}")
    except json.JSONDecodeError as err:
        raise RequestError(f"request parameters are not valid JSON: {err}") from None
    given = [k for k in KNOBS if k in parameters]
    if len(given) > 1:
        raise RequestError(f"give at most one of {', '.join(KNOBS)}; got {', '.join(given)}")
    if not given:
        return default
    knob = given[0]
    value = parse_threshold(parameters[knob], knob)
    if knob == "threshold":
        return value
    if calibration is None:
        raise RequestError(f"{knob} needs a {CALIBRATION_FILE} next to the router; none loaded")
    if knob == "teacher_fraction":
        return calibration.for_teacher_fraction(value)
    return calibration.for_min_accuracy(value)
