"""A router's calibration: one model for every task and any number of stages.

A cascade of ``S`` stages has ``S - 1`` boundaries; two stages (Student, Teacher) are a
one-boundary cascade. ``Calibration`` is what a router's ``calibration.json`` holds: the scores
and measured figures of its stages on one labelled split (never ``test``), the parity point (the
router's default) and a ``Frontier`` of operating points that the knobs read. What the
``accuracy`` column measures, and which knob targets it, is the record's ``Metric``.

Pure NumPy. Shapes: ``scores: (N,)`` the Student's routing score per row,
``student_correct``/``teacher_correct``: ``(N,)`` whether (or how well, for a metric summed
per row) each model answers that row. A threshold ``t`` sends rows with ``score < t`` to the
next stage (eq. 6).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ebjr.core.layout import CALIBRATION_FILE
from ebjr.core.policy import RoutingPolicy
from ebjr.core.routing import RequestError, parse_threshold, parse_thresholds
from ebjr.core.scores import SCORES, ScoreFn, get_score
from ebjr.core.tracking import ScoreWindow


def cascade_flops(
    student_flops: float, teacher_flops: float, teacher_fraction: float | np.ndarray
) -> float | np.ndarray:
    """The paper's average cost per image, ``(N_S*F_S + N_T*(F_S + F_T)) / (N_S + N_T)``:
    every image pays for the Student, a ``teacher_fraction`` of them for the Teacher too."""
    return student_flops + teacher_fraction * teacher_flops


@dataclass(frozen=True)
class Frontier:
    """Operating points of a cascade; ``K`` points, ``B`` stage boundaries.

    thresholds: (K, B); accuracy (the metric, higher better), teacher_fraction (the share of
    rows reaching the last stage) and flops (average per row): (K,).
    """

    thresholds: np.ndarray
    accuracy: np.ndarray
    teacher_fraction: np.ndarray
    flops: np.ndarray

    def take(self, rows: np.ndarray) -> Frontier:
        """The points ``rows`` (indices or a mask), in that order."""
        t, a, f, c = self.thresholds, self.accuracy, self.teacher_fraction, self.flops
        return Frontier(t[rows], a[rows], f[rows], c[rows])

    def rounded(self) -> Frontier:
        """As the calibration file keeps it: metric and shares to 6 decimals, FLOPs to 1."""
        return Frontier(
            self.thresholds,
            self.accuracy.round(6),
            self.teacher_fraction.round(6),
            self.flops.round(1),
        )

    def thinned(self, points: int = 201) -> Frontier:
        """At most ``points`` of these, evenly spread along them, ``rounded``."""
        keep = np.unique(np.linspace(0, len(self.flops) - 1, points).round().astype(int))
        return self.take(keep).rounded()

    def without_minus_inf(self) -> Frontier:
        """The sweep without its ``-inf`` end point (for a specialized Student, eq. 16 never
        keeps "other" rows on the Student, whatever the threshold)."""
        return self.take(slice(1, None))


def sweep(
    scores: np.ndarray,
    student_correct: np.ndarray,
    teacher_correct: np.ndarray,
    student_flops: float = 0.0,
    teacher_flops: float = 0.0,
) -> Frontier:
    """Accuracy, Teacher fraction and FLOPs of one boundary at every distinct threshold, from
    -inf to +inf (``thresholds: (K, 1)``).

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
    return Frontier(
        thresholds=thresholds[:, None],
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


RISK_KNOB = "max_accuracy_drop"  # the risk-controlled knob; ``confidence`` qualifies it
CONFIDENCE = "confidence"
DEFAULT_CONFIDENCE = 0.9
METRIC_KNOBS = ("min_accuracy", "max_error")  # the knobs a Metric may name
KNOBS = ("threshold", "teacher_fraction", *METRIC_KNOBS, RISK_KNOB)  # request parameters, one


@dataclass(frozen=True)
class Metric:
    """What a calibration's ``accuracy`` column measures, higher better: its ``name``, the
    request ``knob`` that targets it, and what "reaches the Teacher" means (within
    ``tolerance`` of the Teacher's figure, as a share of it when ``relative``). An ``error``
    metric's column holds minus the error, and its knob is a bound on the error.

    Each task declares its own (``ACCURACY`` here; detection's mAP and regression's minus MAE in
    their task packages); ``calibration.json`` keeps the whole definition, so a router reads
    any task's metric without knowing the task."""

    name: str
    knob: str
    tolerance: float
    relative: bool = False
    error: bool = False

    def __post_init__(self) -> None:
        if self.knob not in METRIC_KNOBS:
            raise ValueError(
                f"a metric's knob is one of {', '.join(METRIC_KNOBS)}, not {self.knob!r}"
            )
        if (self.knob == "max_error") != self.error:
            raise ValueError("an error metric's knob is max_error, any other's min_accuracy")

    def parity_target(self, teacher: float) -> float:
        """The figure a cascade must reach to count as at the Teacher's (``teacher``)."""
        return teacher - self.tolerance * (abs(teacher) if self.relative else 1.0)

    def point(self, table: Frontier, knob: str, value: float) -> int:
        """The index of the cheapest point of ``table`` expected to meet ``knob`` = ``value``."""
        if knob != self.knob:
            raise RequestError(
                f"{knob} is not a knob of this router (it calibrates {self.name}): give "
                f"{self.knob} or teacher_fraction"
            )
        best = float(table.accuracy.max())
        if self.error:
            if not value >= -best:
                raise RequestError(
                    f"{knob} must be >= {-best:.4f} (the lowest calibrated error), got {value}"
                )
            return cheapest_reaching(table.accuracy, table.flops, -value)
        if not 0.0 <= value <= best:
            raise RequestError(
                f"{knob} must be in [0, {best:.4f}] (the best calibrated {self.name}), got {value}"
            )
        return cheapest_reaching(table.accuracy, table.flops, value)


ACCURACY = Metric("accuracy", "min_accuracy", tolerance=0.001)  # within 0.1 point


@dataclass(frozen=True)
class RiskTable:
    """The ``max_accuracy_drop`` knob: for each confidence ``1 - delta`` and drop ``epsilon``,
    the cheapest thresholds that Learn then Test certified (``ebjr.build.risk_control``):
    with probability at least ``1 - delta`` over the calibration draw, the share of rows lost
    to the Teacher (kept by an earlier stage and answered wrong where the Teacher is right) is
    at most ``epsilon``. The accuracy drop against the Teacher is at most that share.

    max_drop: (E,) ascending; confidence: (D,) ascending; thresholds: (D, E, B);
    teacher_fraction and lost (the empirical share on the ``rows`` tested): (D, E).
    """

    max_drop: np.ndarray
    confidence: np.ndarray
    thresholds: np.ndarray
    teacher_fraction: np.ndarray
    lost: np.ndarray
    rows: int
    procedure: str

    def point(self, drop: float, confidence: float) -> tuple[int, int]:
        """``(d, e)``: the certified entry a request for ``drop`` at ``confidence`` reads: the
        largest calibrated drop at most ``drop`` and the lowest calibrated confidence at least
        ``confidence``, so the promise kept is never weaker than the one asked."""
        if not 0.0 < confidence < 1.0:
            raise RequestError(f"{CONFIDENCE} must be in (0, 1), got {confidence}")
        if confidence > self.confidence[-1] + 1e-12:
            raise RequestError(
                f"{CONFIDENCE} must be at most {self.confidence[-1]:g} (the highest calibrated)"
            )
        if not drop >= self.max_drop[0] - 1e-12:
            raise RequestError(
                f"{RISK_KNOB} must be >= {self.max_drop[0]:g} (the smallest calibrated drop), "
                f"got {drop}"
            )
        d = int(np.searchsorted(self.confidence, confidence - 1e-12, side="left"))
        e = int(np.searchsorted(self.max_drop, drop + 1e-12, side="right")) - 1
        return d, e


@dataclass(frozen=True)
class Calibration:
    """A router's ``calibration.json``: its ``S`` stages' routing scores measured on one split.

    ``parity_thresholds`` (one per boundary) is the cheapest point within the metric's
    tolerance of ``parity_share`` of the last stage's figure (1: parity; a detector router
    defaults to 0.97 of the Teacher's mAP), and the router's default. ``table`` holds the
    operating points the ``teacher_fraction`` and metric knobs read. A two-stage classifier
    also records the energy ``temperature``, the paper's Fig. 4 ``crossing_threshold``, how its
    score was chosen (``evidence``: every candidate score's parity point), and, for a
    specialized router, its calibration stream (``popular`` classes at ``share``).
    """

    split: str
    rows: int
    stages: tuple[str, ...]
    scores: tuple[str, ...]  # one per boundary
    stage_accuracy: tuple[float, ...]
    stage_flops: tuple[float, ...]
    parity_thresholds: tuple[float, ...]
    parity_teacher_fraction: float
    parity_accuracy: float
    parity_flops: float
    table: Frontier
    parity_share: float = 1.0
    metric: Metric = ACCURACY
    temperature: float = 1.0
    crossing_threshold: float | None = None
    chosen_by: str = "pinned"
    evidence: dict[str, dict[str, float]] = field(default_factory=dict)
    popular: tuple[int, ...] = ()
    share: float | None = None
    risk: RiskTable | None = None  # the max_accuracy_drop knob, where the task has it
    # (kept, disagree): calibration rows the Student keeps at the parity thresholds, and those
    # of them it answers differently from the Teacher (what the live audit expects)
    kept_disagreement: tuple[int, int] | None = None

    @property
    def teacher_accuracy(self) -> float:
        return self.stage_accuracy[-1]

    def thresholds_for(self, knob: str, value: float) -> tuple[float, ...]:
        """The thresholds (one per boundary) of the table point a request's ``knob`` asks
        for: the point nearest a ``teacher_fraction``, or the cheapest meeting the metric's
        knob (``min_accuracy``, ``max_error``)."""
        if knob == "teacher_fraction":
            i = fraction_point(self.table.teacher_fraction, value)
        else:
            i = self.metric.point(self.table, knob, value)
        return tuple(float(t) for t in self.table.thresholds[i])

    def certified_thresholds(self, drop: float, confidence: float) -> tuple[float, ...]:
        """The thresholds the ``max_accuracy_drop`` knob serves (``RiskTable.point``)."""
        if self.risk is None:
            raise RequestError(
                f"{RISK_KNOB} is not a knob of this router (its calibration has no "
                f"risk-controlled table; it calibrates {self.metric.name}): rebuild it with "
                "its builder, or give another knob"
            )
        d, e = self.risk.point(drop, confidence)
        return tuple(float(t) for t in self.risk.thresholds[d, e])


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


def calibrate(
    scores: np.ndarray,
    student_correct: np.ndarray,
    teacher_correct: np.ndarray,
    student_flops: float,
    teacher_flops: float,
    score_name: str = "energy",
    temperature: float = 1.0,
    split: str = "val",
    keeps_everything_at_minus_inf: bool = True,
    stages: tuple[str, str] = ("student", "teacher"),
) -> Calibration:
    """The two-stage classifier calibration for one score on one labelled split (never the
    test split): ``calibrate_scored`` with that score alone."""
    return calibrate_scored(
        {score_name: scores},
        student_correct,
        teacher_correct,
        student_flops,
        teacher_flops,
        {score_name: temperature},
        split,
        keeps_everything_at_minus_inf,
        stages,
    )


def calibrate_scored(
    scored: dict[str, np.ndarray],
    student_correct: np.ndarray,
    teacher_correct: np.ndarray,
    student_flops: float,
    teacher_flops: float,
    temperatures: dict[str, float] | None = None,
    split: str = "val",
    keeps_everything_at_minus_inf: bool = True,
    stages: tuple[str, str] = ("student", "teacher"),
) -> Calibration:
    """The two-stage classifier calibration: ``cheapest_score`` over each score's sweep, with
    the chosen score's energy ``temperature`` (``temperatures``, default 1) and its Fig. 4
    ``crossing_threshold``. ``scored``: score name -> a policy's ``effective_scores`` (N,),
    the first listed winning a tie. Without ``keeps_everything_at_minus_inf`` (a specialized
    Student, whose "other" rows always go to the Teacher) the ``-inf`` end point is left out.
    """
    fronts = {}
    for name, scores in scored.items():
        front = sweep(scores, student_correct, teacher_correct, student_flops, teacher_flops)
        fronts[name] = front if keeps_everything_at_minus_inf else front.without_minus_inf()
    accuracy = (float(np.mean(student_correct)), float(np.mean(teacher_correct)))
    record = cheapest_score(
        fronts,
        ACCURACY.parity_target(accuracy[1]),
        split,
        len(student_correct),
        stages,
        accuracy,
        (student_flops, teacher_flops),
        ACCURACY,
    )
    chosen = record.scores[0]
    return replace(
        record,
        temperature=(temperatures or {}).get(chosen, 1.0),
        crossing_threshold=crossing_threshold(*_finite(scored[chosen], student_correct)),
    )


def parity_evidence(
    threshold: float, teacher_fraction: float, accuracy: float, flops: float, teacher_flops: float
) -> dict[str, float]:
    """One candidate score's parity point, as a calibration's ``evidence`` records it."""
    return {
        "parity_threshold": threshold,
        "parity_teacher_fraction": teacher_fraction,
        "parity_accuracy": accuracy,
        "fewer_flops_than_teacher_at_parity": teacher_flops / flops,
    }


def cheapest_score(
    fronts: dict[str, Frontier],
    target: float,
    split: str,
    rows: int,
    stages: tuple[str, str],
    stage_accuracy: tuple[float, float],
    stage_flops: tuple[float, float],
    metric: Metric,
    parity_share: float = 1.0,
) -> Calibration:
    """The two-stage calibration that serves, of each score's frontier on ``rows`` labelled
    ``split`` rows (``fronts``: score name -> ``Frontier``), the one reaching ``target`` at the
    fewest FLOPs (the first listed, on a tie; where a frontier never reaches it, its last point,
    everything to the Teacher). Its cheapest point there is the router's default; ``evidence``
    holds every score's."""
    if split == "test":
        raise ValueError("calibration must not use the test split")
    points = {}
    for name, front in fronts.items():
        i = cheapest_reaching(front.accuracy, front.flops, target)
        points[name] = len(front.flops) - 1 if i is None else i
    name = min(fronts, key=lambda n: fronts[n].flops[points[n]])  # min keeps the first on ties
    front, i = fronts[name], points[name]
    return Calibration(
        split=split,
        rows=rows,
        stages=stages,
        scores=(name,),
        stage_accuracy=tuple(float(a) for a in stage_accuracy),
        stage_flops=tuple(float(f) for f in stage_flops),
        parity_thresholds=(float(front.thresholds[i, 0]),),
        parity_teacher_fraction=float(front.teacher_fraction[i]),
        parity_accuracy=float(front.accuracy[i]),
        parity_flops=float(front.flops[i]),
        table=front.thinned(),
        parity_share=parity_share,
        metric=metric,
        chosen_by="lowest cost at parity",
        evidence={
            n: parity_evidence(
                float(fronts[n].thresholds[k, 0]),
                float(fronts[n].teacher_fraction[k]),
                float(fronts[n].accuracy[k]),
                float(fronts[n].flops[k]),
                stage_flops[1],
            )
            for n, k in points.items()
        },
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
    stages: tuple[str, str] = ("student", "teacher"),
) -> Calibration:
    """Calibrate ``policy`` with every routing score (``SCORES`` and ``extra_scores``, e.g. a
    learned gate; ``policy``'s own score is replaced by each) and keep the score that reaches
    Teacher accuracy cheapest (or ``pinned``): ``calibrate_scored``. Ties go to ``energy``,
    the paper's score, listed first.

    student_logits: (N, C_s); teacher_logits: (N, C_t); labels: (N,). The record's ``evidence``
    holds every score's parity point.
    """
    candidates = {
        name: get_score(name, temperature if name == "energy" else 1.0) for name in SCORES
    }
    candidates.update(extra_scores or {})
    if pinned is not None and pinned not in candidates:
        raise ValueError(f"unknown routing score {pinned!r}; choose one of {sorted(candidates)}")
    scored = {
        name: policy.with_score(score).effective_scores(student_logits)
        for name, score in candidates.items()
    }
    facts = (
        policy.student_correct(student_logits, labels),
        teacher_logits.argmax(axis=1) == labels,
        student_flops,
        teacher_flops,
        {"energy": temperature},
        split,
        policy.keeps_everything_at_minus_inf,
        stages,
    )
    record = calibrate_scored(scored, *facts)
    if pinned is None:
        return record
    alone = calibrate_scored({pinned: scored[pinned]}, *facts)
    return replace(alone, chosen_by="pinned", evidence=record.evidence)


def json_number(value: float) -> float | str:
    """JSON has no infinities: write them as ``"inf"`` / ``"-inf"``."""
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def write_calibration(path: Path, record: Calibration) -> None:
    """Write ``record`` as a router's ``calibration.json``."""
    body = asdict(record)
    body["parity_thresholds"] = [json_number(t) for t in record.parity_thresholds]
    if record.crossing_threshold is not None:
        body["crossing_threshold"] = json_number(record.crossing_threshold)
    for point in body["evidence"].values():
        point["parity_threshold"] = json_number(point["parity_threshold"])
    body["popular"] = list(record.popular)
    for optional in ("risk", "kept_disagreement"):
        if body[optional] is None:
            del body[optional]  # a task without it writes no key for it
    if record.kept_disagreement is not None:
        body["kept_disagreement"] = list(record.kept_disagreement)
    if record.risk is not None:
        body["risk"] = {
            "max_drop": record.risk.max_drop.tolist(),
            "confidence": record.risk.confidence.tolist(),
            "thresholds": [
                [[json_number(float(t)) for t in entry] for entry in row]
                for row in record.risk.thresholds
            ],
            "teacher_fraction": record.risk.teacher_fraction.tolist(),
            "lost": record.risk.lost.tolist(),
            "rows": record.risk.rows,
            "procedure": record.risk.procedure,
        }
    body["table"] = {
        "thresholds": [[json_number(float(t)) for t in row] for row in record.table.thresholds],
        "accuracy": record.table.accuracy.tolist(),
        "teacher_fraction": record.table.teacher_fraction.tolist(),
        "flops": record.table.flops.tolist(),
    }
    Path(path).write_text(json.dumps(body, indent=1) + "\n")


def _thresholds(values: list) -> np.ndarray:
    """Nested lists of thresholds as ``write_calibration`` wrote them (``"inf"`` for
    infinities) as a float array of the same shape."""
    return np.vectorize(parse_threshold, otypes=[np.float64])(np.array(values, dtype=object))


def read_calibration(path: Path) -> Calibration:
    """The record ``write_calibration`` wrote to ``path``."""
    body = json.loads(Path(path).read_text())
    if (
        "stages" not in body
        or "thresholds" not in body.get("table", {})
        or not isinstance(body.get("metric"), dict)
    ):
        raise ValueError(
            f"{path} is not a calibration this version reads (an older format?): rebuild the "
            "repository with its builder"
        )
    table = body.pop("table")
    as_tuple = ("stages", "scores", "stage_accuracy", "stage_flops", "popular", "kept_disagreement")
    body = {k: tuple(v) if k in as_tuple else v for k, v in body.items()}
    body["parity_thresholds"] = tuple(parse_threshold(t) for t in body["parity_thresholds"])
    if body.get("crossing_threshold") is not None:
        body["crossing_threshold"] = parse_threshold(body["crossing_threshold"], "crossing")
    for point in body.get("evidence", {}).values():
        point["parity_threshold"] = parse_threshold(point["parity_threshold"])
    body["metric"] = Metric(**body["metric"])
    if body.get("risk") is not None:
        risk = body["risk"]
        body["risk"] = RiskTable(
            max_drop=np.array(risk["max_drop"], dtype=np.float64),
            confidence=np.array(risk["confidence"], dtype=np.float64),
            thresholds=_thresholds(risk["thresholds"]),
            teacher_fraction=np.array(risk["teacher_fraction"], dtype=np.float64),
            lost=np.array(risk["lost"], dtype=np.float64),
            rows=int(risk["rows"]),
            procedure=risk["procedure"],
        )
    return Calibration(
        **body,
        table=Frontier(
            thresholds=_thresholds(table["thresholds"]),
            accuracy=np.array(table["accuracy"], dtype=np.float64),
            teacher_fraction=np.array(table["teacher_fraction"], dtype=np.float64),
            flops=np.array(table["flops"], dtype=np.float64),
        ),
    )


def resolve_thresholds(
    parameters_json: str,
    default: tuple[float, ...],
    calibration: Calibration | None = None,
    tracked: ScoreWindow | None = None,
) -> tuple[float, ...]:
    """The thresholds (one per stage boundary) for one request, from Triton's
    ``request.parameters()`` JSON.

    At most one knob: ``threshold`` (raw scores; ``"t1,t2"`` for three stages),
    ``teacher_fraction``, the calibration metric's own (``min_accuracy``, or a regressor's
    ``max_error``), or ``max_accuracy_drop`` with an optional ``confidence`` (default 0.9),
    resolved through ``calibration``; none gives ``default``. Other parameters are ignored.
    With ``tracked`` (a two-stage router's live scores, ``ebjr.core.tracking``),
    ``teacher_fraction`` is the quantile of the live scores once the window is full enough.
    """
    try:
        parameters = json.loads(parameters_json or "{}")
    except json.JSONDecodeError as err:
        raise RequestError(f"request parameters are not valid JSON: {err}") from None
    given = [k for k in KNOBS if k in parameters]
    if len(given) > 1:
        raise RequestError(f"give at most one of {', '.join(KNOBS)}; got {', '.join(given)}")
    knob = given[0] if given else None
    if CONFIDENCE in parameters and knob != RISK_KNOB:
        raise RequestError(f"{CONFIDENCE} qualifies {RISK_KNOB}: give both, or neither")
    if knob is None:
        return default
    if knob == "threshold":
        return parse_thresholds(parameters[knob], len(default))
    value = parse_threshold(parameters[knob], knob)
    if calibration is None:
        raise RequestError(f"{knob} needs a {CALIBRATION_FILE} next to the router; none loaded")
    if knob == RISK_KNOB:
        confidence = parse_threshold(parameters.get(CONFIDENCE, DEFAULT_CONFIDENCE), CONFIDENCE)
        return calibration.certified_thresholds(value, confidence)
    if knob == "teacher_fraction" and tracked is not None and 0.0 <= value <= 1.0:
        live = tracked.threshold(value)
        if live is not None:
            return (live,)
    return calibration.thresholds_for(knob, value)
