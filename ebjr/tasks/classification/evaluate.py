"""Offline evaluation of a model repository, as in the EBJR paper (``make eval``, whose command
line is ``ebjr.tasks.classification.report``).

Runs Student and Teacher once per split with onnxruntime (logits cached under ``build/eval``),
then reports on the *test* split with every threshold chosen on the *validation* split:
the paper's Table 1 (Student, Teacher, EBJR), the routing-score ablation (Fig. 3-right) with
random routing and the oracle, the ``max_accuracy_drop`` violation study (``risk_study``),
``teacher_fraction`` under drift (``drift_study``), and plots (Figs. 2-4). ``evaluate``
computes the results; ``report.render`` writes ``EVALUATION.md`` and the PNGs from them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import astuple, dataclass, field
from pathlib import Path

import numpy as np

from ebjr.build.onnx_info import describe
from ebjr.core.calibration import (
    ACCURACY,
    Calibration,
    calibrate,
    cascade_flops,
    cheapest_reaching,
    read_calibration,
    sweep,
)
from ebjr.core.cascade_calibration import Stages, held_out_shortfall
from ebjr.core.gate import GATE_SCORE, GateScore, routing_score
from ebjr.core.layout import (
    PROJECT_ROOT,
    SPECIALIZED_ROUTER,
    SPECIALIZED_STUDENT,
    STUDENT,
    STUDENT_CANDIDATES,
    TEACHER,
    calibration_path,
    candidate_gate,
    gate_path,
    onnx_path,
)
from ebjr.core.onnx_runner import OnnxClassifier
from ebjr.core.policy import GeneralPolicy, RoutingPolicy, SpecializedPolicy
from ebjr.core.routing import to_student
from ebjr.core.scores import SCORES, ScoreContext, get_score
from ebjr.tasks.classification import specialized as spec
from ebjr.tasks.classification.drift_study import SIGMA, Served, drift_study, noisy
from ebjr.tasks.classification.risk_study import Violations, violation_study
from ebjr.training import data

FRACTIONS = (0.1, 0.3, 0.5)
BELOW_TEACHER = (0.005, 0.01)  # operating points this far under the Teacher's accuracy
RANDOM_SEEDS = 10
SHARES = (0.25, 0.5, 0.75, 0.9)
TOLERANCE = ACCURACY.tolerance  # "reaches the Teacher": within 0.1 point
CACHE = PROJECT_ROOT / "build" / "eval"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Logits:
    """Cached model outputs on one labelled split: student (N, C_s), teacher (N, C_t),
    labels (N,)."""

    student: np.ndarray
    teacher: np.ndarray
    labels: np.ndarray

    def take(self, rows: np.ndarray) -> Logits:
        return Logits(self.student[rows], self.teacher[rows], self.labels[rows])


@dataclass(frozen=True)
class Stream:
    """What routing needs on one labelled split, under one policy: ``scores`` (N,) (the
    policy's effective scores), ``student_ok`` and ``teacher_ok`` (N,) bool."""

    scores: np.ndarray
    student_ok: np.ndarray
    teacher_ok: np.ndarray

    @classmethod
    def of(cls, policy: RoutingPolicy, logits: Logits) -> Stream:
        return cls(
            policy.effective_scores(logits.student),
            policy.student_correct(logits.student, logits.labels),
            logits.teacher.argmax(axis=1) == logits.labels,
        )


@dataclass(frozen=True)
class Point:
    """One operating point on a split."""

    threshold: float
    accuracy: float
    teacher_fraction: float
    flops: float


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def model_outputs(
    repo: Path,
    split: str,
    student: str = STUDENT,
    source: str | None = None,
    cache: Path = CACHE,
    noise: float = 0.0,
) -> Logits:
    """``student`` and Teacher logits on labelled data ``source`` (default: Fashion-MNIST's
    ``split``; see ``ebjr.training.data.load_labelled``), its images with Gaussian ``noise``
    if any (``drift_study.noisy``), cached under ``cache``."""
    models = [onnx_path(repo, name) for name in (student, TEACHER)]
    source = source or f"fashion-mnist:{split}"
    key = hashlib.sha256(f"{source}{f' noise {noise!r}' if noise else ''}".encode()).hexdigest()
    path = cache / f"{split}-{key[:8]}-{_digest(models)}.npz"
    if path.exists():
        with np.load(path) as archive:
            return Logits(archive["student"], archive["teacher"], archive["labels"])
    log.info(
        "running %s and %s on %s%s", student, TEACHER, source, f" + noise {noise}" * bool(noise)
    )
    images, labels = data.load_labelled(source)
    if noise:
        images = noisy(images, noise)
    student_logits, teacher = (OnnxClassifier(m, threads=2).predict(images) for m in models)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, student=student_logits, teacher=teacher, labels=labels)
    return Logits(student_logits, teacher, labels)


def latency_ms(model_path: Path, images: np.ndarray, runs: int = 300) -> float:
    """Median single-image onnxruntime latency in milliseconds (1 thread)."""
    model = OnnxClassifier(model_path, threads=1)
    images = model.fit(images[:runs])
    for image in images[:20]:
        model(image[None])
    times = []
    for image in images[:runs]:
        start = time.perf_counter()
        model(image[None])
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def apply(stream: Stream, threshold: float, fs: float, ft: float) -> Point:
    """Accuracy, Teacher fraction and FLOPs of routing ``stream`` at ``threshold`` (eq. 6)."""
    to_teacher = ~to_student(stream.scores, threshold)
    fraction = float(to_teacher.mean())
    accuracy = float(np.where(to_teacher, stream.teacher_ok, stream.student_ok).mean())
    return Point(threshold, accuracy, fraction, float(cascade_flops(fs, ft, fraction)))


def _calibrated(stream: Stream, fs: float, ft: float, policy: RoutingPolicy) -> Calibration:
    return calibrate(
        stream.scores,
        stream.student_ok,
        stream.teacher_ok,
        fs,
        ft,
        keeps_everything_at_minus_inf=policy.keeps_everything_at_minus_inf,
    )


def below_teacher(stream: Stream, gap: float) -> float:
    """The cheapest threshold on ``stream`` (validation) reaching the Teacher's accuracy
    minus ``gap``."""
    s = sweep(stream.scores, stream.student_ok, stream.teacher_ok)
    target = float(stream.teacher_ok.mean()) - gap
    return float(s.thresholds[cheapest_reaching(s.accuracy, s.teacher_fraction, target), 0])


@dataclass(frozen=True)
class CascadeRow:
    """A cascade of candidate Students then the Teacher, at its validation parity
    thresholds: ``val_reduction`` there, and ``test`` (accuracy, Teacher share, FLOPs)."""

    stages: tuple[str, ...]
    thresholds: tuple[float, ...]
    val_reduction: float
    test: tuple[float, float, float]


def _candidate_metrics(repo: Path) -> dict:
    metrics = json.loads((repo / "metrics.json").read_text())
    keys = ("student_candidates", "three_stage", "teacher_candidates")
    return {key: metrics[key] for key in keys if key in metrics}


def candidate_cascades(repo: Path, val: Logits, test: Logits) -> list[CascadeRow]:
    """Every candidate Student of ``make models`` (in ``STUDENT_CANDIDATES``) in front of the
    Teacher, each on the score it measured best with on validation, and the three-stage
    cascade ``make models`` compared: thresholds from ``val``, reported on ``test``."""
    chosen = _candidate_metrics(repo)
    if "student_candidates" not in chosen:
        return []
    names = list(chosen["student_candidates"]["candidates"])
    stages = {}
    for name in names:
        path = STUDENT_CANDIDATES / f"{name}.onnx"
        score_name = chosen["student_candidates"]["candidates"][name]["val_score"]
        score = (
            GateScore(candidate_gate(path)) if score_name == GATE_SCORE else get_score(score_name)
        )
        model = OnnxClassifier(path, threads=2)
        stages[name] = {
            split: (score(out := model.predict(images)), out.argmax(1) == labels)
            for split, (images, labels) in (
                ("val", data.load_split("val")),
                ("test", data.load_split("test")),
            )
        }
        stages[name]["flops"] = describe(path).flops
    teacher_ok = {
        "val": val.teacher.argmax(1) == val.labels,
        "test": test.teacher.argmax(1) == test.labels,
    }
    ft = describe(onnx_path(repo, TEACHER)).flops
    lineups = [(name,) for name in names]
    if "three_stage" in chosen:
        lineups.append(tuple(chosen["three_stage"]["stages"][:-1]))
    rows = []
    for lineup in lineups:
        split = {
            part: Stages(
                [stages[n][part][0] for n in lineup],
                [*(stages[n][part][1] for n in lineup), teacher_ok[part]],
                [*(stages[n]["flops"] for n in lineup), ft],
            )
            for part in ("val", "test")
        }
        thresholds, flops = split["val"].parity()
        rows.append(
            CascadeRow((*lineup, TEACHER), thresholds, ft / flops, split["test"].at(thresholds))
        )
    return rows


@dataclass(frozen=True)
class ScoreRow:
    """One routing score in the ablation: thresholds chosen on validation, applied to test."""

    parity: Point
    at_fraction: dict[float, Point]
    test_scores: np.ndarray


def ablation(
    val: Logits, test: Logits, fs: float, ft: float, temperature: float, gate: Path
) -> dict:
    """``{score label: ScoreRow}`` for every score, energy at ``temperature`` and the learned
    ``gate`` if the router has one."""
    rows = {}
    scores = {n: get_score(n) for n in SCORES}
    if temperature != 1.0:
        scores[f"energy (T={temperature:g})"] = get_score("energy", temperature)
    if gate.exists():
        scores[f"{GATE_SCORE} (learned)"] = GateScore(gate)
    for label, score in scores.items():
        policy = GeneralPolicy(score)
        v, s = Stream.of(policy, val), Stream.of(policy, test)
        record = _calibrated(v, fs, ft, policy)
        at_fraction = {f: apply(s, float(np.quantile(v.scores, f)), fs, ft) for f in FRACTIONS}
        rows[label] = ScoreRow(apply(s, record.parity_thresholds[0], fs, ft), at_fraction, s.scores)
    return rows


def random_routing(stream: Stream) -> dict[float, tuple[float, float]]:
    """Random routing at each fixed Teacher fraction: mean and std of accuracy over seeds."""
    out = {}
    for f in FRACTIONS:
        accs = []
        for seed in range(RANDOM_SEEDS):
            to_teacher = np.random.default_rng(seed).random(len(stream.scores)) < f
            accs.append(np.where(to_teacher, stream.teacher_ok, stream.student_ok).mean())
        out[f] = (float(np.mean(accs)), float(np.std(accs)))
    return out


@dataclass(frozen=True)
class SpecializedComparison:
    """Specialized vs general EBJR on skewed streams (paper Fig. 6)."""

    record: Calibration
    flops: float
    results: dict[float, dict[str, Point]]  # share -> general / specialized / same_cost
    teacher_accuracy: dict[float, float]  # share -> the Teacher's test-stream accuracy
    curves: dict = field(default_factory=dict)  # kind -> test sweep at 75% popular


def specialized(
    repo: Path, general: dict[str, Logits], served: GeneralPolicy, ft: float, fs: float
) -> SpecializedComparison | None:
    """The specialized router against the general one (``served``), thresholds chosen on
    validation streams and reported on test streams; None without a specialized router."""
    path = calibration_path(repo, SPECIALIZED_ROUTER)
    if not path.exists():
        return None
    record = read_calibration(path)
    f_special = describe(onnx_path(repo, SPECIALIZED_STUDENT)).flops
    policy = SpecializedPolicy(
        get_score(record.scores[0], record.temperature),
        record.popular,
        len(record.popular),
        general["test"].teacher.shape[1],
    )
    special = {name: model_outputs(repo, name, SPECIALIZED_STUDENT) for name in ("val", "test")}
    results, teacher_accuracy, curves = {}, {}, {}
    for share in SHARES:
        val_rows = spec.skewed_stream(general["val"].labels, record.popular, share, 5000, seed=0)
        test_rows = spec.skewed_stream(general["test"].labels, record.popular, share, 10000, seed=1)
        kinds = {"general": (served, general, fs), "specialized": (policy, special, f_special)}
        streams = {
            kind: (
                Stream.of(p, logits["val"].take(val_rows)),
                Stream.of(p, logits["test"].take(test_rows)),
                p,
                f_s,
            )
            for kind, (p, logits, f_s) in kinds.items()
        }
        points, fractions = {}, {}
        for kind, (v, t, p, f_s) in streams.items():
            cal = _calibrated(v, f_s, ft, p)
            points[kind] = apply(t, cal.parity_thresholds[0], f_s, ft)
            fractions[kind] = cal.parity_teacher_fraction
            if share == 0.75:
                curve = sweep(t.scores, t.student_ok, t.teacher_ok, f_s, ft)
                keeps_all = p.keeps_everything_at_minus_inf
                curves[kind] = curve if keeps_all else curve.without_minus_inf()
        general_val, general_test = streams["general"][:2]
        teacher_accuracy[share] = float(general_test.teacher_ok.mean())
        # Equal cost: the general router at the specialized router's validation Teacher fraction
        # (the specialized one cannot go below its "other" rows, the general one can).
        threshold = float(
            np.quantile(general_val.scores, fractions["specialized"], method="inverted_cdf")
        )
        points["same_cost"] = apply(general_test, threshold, fs, ft)
        results[share] = points
    return SpecializedComparison(record, f_special, results, teacher_accuracy, curves)


@dataclass(frozen=True)
class Evaluation:
    """Everything ``EVALUATION.md`` reports, computed once."""

    repo: Path
    val_data: str
    test_data: str
    val_rows: int
    test_rows: int
    student_flops: float
    teacher_flops: float
    student_ms: float
    teacher_ms: float
    student_accuracy: float
    teacher_accuracy: float
    calibration: Calibration
    served: Point  # the router's calibrated default, on test
    below: dict[float, Point]  # cheapest val thresholds at this much under Teacher, on test
    crossing: Point  # the paper's Fig. 4 operating point, on test
    scores: dict[str, ScoreRow]
    random: dict[float, tuple[float, float]]
    oracle: Point  # the Teacher only where the Student is wrong
    parity_oracle: Point  # the cheapest deferrals reaching the Teacher's accuracy
    test: Stream  # under the served score
    specialized: SpecializedComparison | None
    cascades: list[CascadeRow]  # every candidate Student's cascade, and three stages
    candidates: (
        dict  # metrics.json's ``student_candidates``, ``three_stage``, ``teacher_candidates``
    )
    held_out: dict  # the parity rule's shortfall on held-out halves of validation
    risk: list[Violations]  # the max_accuracy_drop knob against min_accuracy, on test halves
    drift: list[Served]  # teacher_fraction with and without tracking, clean and noisy


def evaluate(
    repo: Path,
    temperature: float = 1.0,
    val_data: str = "fashion-mnist:val",
    test_data: str = "fashion-mnist:test",
) -> Evaluation:
    """Evaluate ``repo``: thresholds chosen on ``val_data``, reported on ``test_data``."""
    val = model_outputs(repo, "val", source=val_data)
    test = model_outputs(repo, "test", source=test_data)
    student_path, teacher_path = onnx_path(repo, STUDENT), onnx_path(repo, TEACHER)
    fs, ft = describe(student_path).flops, describe(teacher_path).flops
    images = data.load_labelled(val_data)[0]
    calibration = read_calibration(calibration_path(repo))
    router_dir = calibration_path(repo).parent
    served = GeneralPolicy(
        routing_score(calibration.scores[0], ScoreContext(calibration.temperature, router_dir))
    )
    stream = Stream.of(served, test)
    # The oracle defers every row the Student gets wrong; the oracle at parity only rows the
    # Student gets wrong and the Teacher right, each one a gain, just enough of them to reach
    # the Teacher's accuracy.
    fractions = {
        "oracle": float((~stream.student_ok).mean()),
        "parity_oracle": max(0.0, float(stream.teacher_ok.mean() - stream.student_ok.mean())),
    }
    accuracies = {
        "oracle": float((stream.student_ok | stream.teacher_ok).mean()),
        "parity_oracle": float(stream.teacher_ok.mean()),
    }
    oracles = {
        name: Point(float("nan"), accuracies[name], f, float(cascade_flops(fs, ft, f)))
        for name, f in fractions.items()
    }
    fashion = test_data == "fashion-mnist:test"
    on_val = Stream.of(served, val)
    val_cascade = Stages([on_val.scores], [on_val.student_ok, on_val.teacher_ok], [fs, ft])
    return Evaluation(
        repo=repo,
        val_data=val_data,
        test_data=test_data,
        val_rows=len(val.labels),
        test_rows=len(test.labels),
        student_flops=fs,
        teacher_flops=ft,
        student_ms=latency_ms(student_path, images),
        teacher_ms=latency_ms(teacher_path, images),
        student_accuracy=float(stream.student_ok.mean()),
        teacher_accuracy=float(stream.teacher_ok.mean()),
        calibration=calibration,
        served=apply(stream, calibration.parity_thresholds[0], fs, ft),
        below={gap: apply(stream, below_teacher(on_val, gap), fs, ft) for gap in BELOW_TEACHER},
        crossing=apply(stream, calibration.crossing_threshold, fs, ft),
        scores=ablation(val, test, fs, ft, temperature, gate_path(repo)),
        random=random_routing(stream),
        **oracles,
        test=stream,
        specialized=specialized(repo, {"val": val, "test": test}, served, ft, fs)
        if fashion
        else None,
        cascades=candidate_cascades(repo, val, test) if fashion else [],
        candidates=_candidate_metrics(repo) if fashion else {},
        held_out=held_out_shortfall(val_cascade),
        risk=violation_study(stream.scores, stream.student_ok, stream.teacher_ok),
        drift=drift_study(
            {
                "clean": (test.student, test.teacher, test.labels),
                f"noisy (sigma={SIGMA})": astuple(
                    model_outputs(repo, "test", source=test_data, noise=SIGMA)
                ),
            },
            served,
            calibration,
        ),
    )
