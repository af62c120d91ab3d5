"""Offline evaluation of a model repository, as in the EBJR paper (``make eval``).

    python -m ebjr.tasks.classification.evaluate [--repo model_repository] [--out evaluation]
                            [--val-data FILE.npz --test-data FILE.npz]   # your own data

Runs Student and Teacher once per split with onnxruntime (logits cached under ``build/eval``),
then reports on the *test* split with every threshold chosen on the *validation* split:
the paper's Table 1 (Student, Teacher, EBJR), the routing-score ablation (Fig. 3-right) with
random routing and the oracle, and plots (Figs. 2-4). ``evaluate`` computes the results;
``render`` writes ``EVALUATION.md`` and the PNGs from them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ebjr.build.onnx_info import describe
from ebjr.core.calibration import (
    METRICS,
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
    TEACHER_STUDY,
    calibration_path,
    candidate_gate,
    gate_path,
    onnx_path,
)
from ebjr.core.onnx_runner import OnnxClassifier
from ebjr.core.policy import GeneralPolicy, RoutingPolicy, SpecializedPolicy
from ebjr.core.routing import to_student
from ebjr.core.scores import SCORES, get_score
from ebjr.tasks.classification import specialized as spec
from ebjr.training import data

FRACTIONS = (0.1, 0.3, 0.5)
BELOW_TEACHER = (0.005, 0.01)  # operating points this far under the Teacher's accuracy
RANDOM_SEEDS = 10
SHARES = (0.25, 0.5, 0.75, 0.9)
TOLERANCE = METRICS["accuracy"].tolerance  # "reaches the Teacher": within 0.1 point
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
    repo: Path, split: str, student: str = STUDENT, source: str | None = None, cache: Path = CACHE
) -> Logits:
    """``student`` and Teacher logits on labelled data ``source`` (default: Fashion-MNIST's
    ``split``; see ``ebjr.training.data.load_labelled``), cached under ``cache``."""
    models = [onnx_path(repo, name) for name in (student, TEACHER)]
    source = source or f"fashion-mnist:{split}"
    key = hashlib.sha256(source.encode()).hexdigest()[:8]
    path = cache / f"{split}-{key}-{_digest(models)}.npz"
    if path.exists():
        with np.load(path) as archive:
            return Logits(archive["student"], archive["teacher"], archive["labels"])
    log.info("running %s and %s on %s", student, TEACHER, source)
    images, labels = data.load_labelled(source)
    student_logits, teacher = (OnnxClassifier(m, threads=2).predict(images) for m in models)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, student=student_logits, teacher=teacher, labels=labels)
    return Logits(student_logits, teacher, labels)


def latency_ms(model_path: Path, images: np.ndarray, runs: int = 300) -> float:
    """Median single-image onnxruntime latency in milliseconds (1 thread)."""
    model = OnnxClassifier(model_path, threads=1)
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
        routing_score(calibration.scores[0], calibration.temperature, router_dir)
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
    )


def render(e: Evaluation, out: Path) -> str:
    """Write ``out/EVALUATION.md`` and its plots from ``e``; return the text."""
    out.mkdir(parents=True, exist_ok=True)
    fs, ft, cal = e.student_flops, e.teacher_flops, e.calibration
    pngs = plots(out, e)

    def cost_row(name: str, point: Point) -> str:
        latency = e.student_ms + point.teacher_fraction * e.teacher_ms
        return (
            f"| {name} | {point.accuracy:.2%} | {point.flops / 1e6:.3f} | "
            f"{ft / point.flops:.2f}x | {point.teacher_fraction:.1%} | {latency:.3f} |"
        )

    lines = [
        "# EVALUATION (generated by `make eval`; do not edit)",
        "",
        f"Repository `{e.repo}`. Thresholds are chosen on the validation data `{e.val_data}` "
        f"({e.val_rows} images) and applied to the test data `{e.test_data}` "
        f"({e.test_rows} images). "
        f"Machine: {platform.machine()}, {platform.system()}. FLOPs are 2 x multiply-adds of "
        "Conv/Gemm/MatMul per image; EBJR's average is `(N_S*F_S + N_T*(F_S+F_T)) / N`. "
        "Latency is the median single-image onnxruntime time (1 thread) measured in this run; "
        "EBJR's is the expected `L_S + f * L_T`.",
        "",
        "## Table 1: Student, Teacher and EBJR (test split)",
        "",
        "| model | accuracy | MFLOPs/image | fewer FLOPs than Teacher | to Teacher | latency ms |",
        "|---|---|---|---|---|---|",
        f"| Student | {e.student_accuracy:.2%} | {fs / 1e6:.3f} | - | 0% | {e.student_ms:.3f} |",
        f"| Teacher | {e.teacher_accuracy:.2%} | {ft / 1e6:.3f} | 1.00x | 100% | "
        f"{e.teacher_ms:.3f} |",
        cost_row(f"EBJR, {cal.scores[0]}, t={cal.parity_thresholds[0]:.3f} (val parity)", e.served),
        *(
            cost_row(
                f"EBJR, {cal.scores[0]}, t={p.threshold:.3f} (val: Teacher - {gap * 100:.1f} pt)", p
            )
            for gap, p in e.below.items()
        ),
        cost_row(f"EBJR, crossing point t={cal.crossing_threshold:.3f} (val, Fig. 4)", e.crossing),
        "",
        "As in the paper's Table 1, the reduction is `F_T / FLOPs`: the Teacher served alone "
        "against EBJR's average, which pays for the Student on every image.",
        "",
        f"**How far validation parity carries.** On test the default is "
        f"{(e.teacher_accuracy - e.served.accuracy) * 100:.2f} pt below the Teacher. The "
        "rule's own noise, measured on validation alone: with its threshold taken on one "
        f"random half ({e.held_out['rows']} rows) and measured on the other, "
        f"{e.held_out['halves']} halves, the "
        f"cascade falls {e.held_out['mean'] * 100:.2f} pt short of the Teacher on average "
        f"and {e.held_out['p90'] * 100:.2f} pt at the 90th percentile. A promise tighter than "
        "that needs more validation rows or a margin for their noise.",
        "",
        "## Routing-score ablation (paper Fig. 3-right), test split",
        "",
        "Parity = the cheapest validation threshold within "
        f"{TOLERANCE:.1%} of the Teacher's validation accuracy, applied to test. "
        "Fixed fractions use the validation quantile of each score.",
        "",
        "| score | parity: test accuracy | parity: to Teacher | parity: FLOPs reduction | "
        + " | ".join(f"acc @ {f:.0%} Teacher" for f in FRACTIONS)
        + " |",
        "|---|---|---|---|" + "---|" * len(FRACTIONS),
    ]
    for label, row in e.scores.items():
        p = row.parity
        cells = " | ".join(
            f"{point.accuracy:.2%} ({point.teacher_fraction:.1%})"
            for point in (row.at_fraction[f] for f in FRACTIONS)
        )
        lines.append(
            f"| {label} | {p.accuracy:.2%} | {p.teacher_fraction:.1%} | {ft / p.flops:.2f}x | "
            f"{cells} |"
        )
    lines.append(
        f"| random ({RANDOM_SEEDS} seeds, mean ± std) | - | - | - | "
        + " | ".join(f"{e.random[f][0]:.2%} ± {e.random[f][1]:.2%}" for f in FRACTIONS)
        + " |"
    )
    lines.append(
        f"| oracle (Teacher only where the Student is wrong) | {e.oracle.accuracy:.2%} | "
        f"{e.oracle.teacher_fraction:.1%} | {ft / e.oracle.flops:.2f}x | - | - | - |"
    )
    lines.append(
        "| oracle at parity, the limit for any router (just enough rows that the Student gets "
        f"wrong and the Teacher right) | {e.parity_oracle.accuracy:.2%} | "
        f"{e.parity_oracle.teacher_fraction:.1%} | {ft / e.parity_oracle.flops:.2f}x | - | - "
        "| - |"
    )
    best = min(e.scores, key=lambda n: e.scores[n].parity.flops)
    energy_p, soft_p, ent_p = (e.scores[n].parity for n in ("energy", "softmax", "entropy"))
    lines += [
        "",
        "## Does energy beat softmax confidence and entropy here?",
        "",
        f"At validation-chosen parity thresholds, the test-split FLOPs reductions are: energy "
        f"{ft / energy_p.flops:.2f}x, softmax confidence {ft / soft_p.flops:.2f}x, negative "
        f"entropy {ft / ent_p.flops:.2f}x. The cheapest score at parity on this run is "
        f"**{best}**. The router serves **{cal.scores[0]}** (calibration: {cal.chosen_by}, on "
        "validation). Calibration evidence per score (validation): "
        + ", ".join(
            f"{n} {point['parity_teacher_fraction']:.1%} to Teacher"
            for n, point in cal.evidence.items()
        )
        + ".",
        "",
        "## Plots",
        "",
        *[f"![{name}]({name})" for name in pngs],
        "",
    ]
    lines += teacher_lines(e.candidates.get("teacher_candidates"), TEACHER_STUDY)
    lines += candidate_lines(e, ft)
    if e.specialized is not None:
        lines += specialized_lines(e.specialized, ft)
        lines += [f"![{p}]({p})" for p in _specialized_plots(out, e.specialized, ft)] + [""]
    text = "\n".join(lines)
    (out / "EVALUATION.md").write_text(text)
    return text


def teacher_lines(views: dict | None, study_file: Path) -> list[str]:
    """The Teacher candidates: the recipes of ``make teacher-study`` (``study_file``) and the
    views of the trained Teacher that ``make models`` chose between (``views``)."""
    lines = []
    if study_file.exists():
        study = json.loads(study_file.read_text())
        name, view = study["chosen"]
        lines += [
            "## Teacher candidates (`make teacher-study`)",
            "",
            "Each recipe trained on the training split with its seed, in each view: plain, and "
            "with a test-time flip (the mean of the logits on the image and its mirror, twice the "
            f"FLOPs). The most accurate on validation is **{name} ({view})**; `make models` "
            "trains that recipe. Test is reported, never used.",
            "",
            *_teacher_table(
                {f"{n} ({v})": m for n, vs in study["candidates"].items() for v, m in vs.items()}
            ),
        ]
    if views:
        lines += [
            "### The served Teacher (`make models`)",
            "",
            f"`make models` keeps the view most accurate on validation: **{views['chosen']}**.",
            "",
            *_teacher_table(views["candidates"]),
        ]
    return lines


def _teacher_table(rows: dict[str, dict]) -> list[str]:
    lines = [
        "| candidate | architecture | epochs | MFLOPs | val acc. | test acc. | train minutes |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in rows.items():
        arch = m["architecture"]
        lines.append(
            f"| {name} | widths {tuple(arch['widths'])}, {arch['blocks']} blocks, stem stride "
            f"{arch['stem_stride']} | {m['recipe']['epochs']} | {m['flops'] / 1e6:.1f} | "
            f"{m['val_accuracy']:.2%} | {m['test_accuracy']:.2%} | {m['train_seconds'] / 60:.1f} |"
        )
    return [*lines, ""]


def candidate_lines(e: Evaluation, ft: float) -> list[str]:
    """The Student candidates of ``make models`` and the cascades they make."""
    if not e.cascades:
        return []
    found = e.candidates["student_candidates"]
    lines = [
        "## Students built for the cascade (`make models`)",
        "",
        "Every candidate Student, plain or distilled from the Teacher, with its learned gate "
        "trained on the training split. `make models` keeps the one whose cascade reaches the "
        "Teacher's validation accuracy at the fewest FLOPs (the Student's on every image "
        f"counted): **{found['chosen']}**. Test figures use the thresholds chosen on validation.",
        "",
        "| candidate | distilled | MFLOPs | val acc. | test acc. | score | val: fewer FLOPs at "
        "parity | test: acc. | test: to Teacher | test: fewer FLOPs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in e.cascades:
        accuracy, fraction, flops = row.test
        if len(row.stages) == 2:
            c = found["candidates"][row.stages[0]]
            lines.append(
                f"| {row.stages[0]} | {'yes' if c['distilled'] else 'no'} | "
                f"{c['flops'] / 1e6:.3f} | {c['val_accuracy']:.2%} | {c['test_accuracy']:.2%} | "
                f"{c['val_score']} | {row.val_reduction:.2f}x | {accuracy:.2%} | {fraction:.1%} | "
                f"{ft / flops:.2f}x |"
            )
        else:
            lines.append(
                f"| {' -> '.join(row.stages)} (three stages) | | | | | | "
                f"{row.val_reduction:.2f}x | {accuracy:.2%} | {fraction:.1%} | {ft / flops:.2f}x |"
            )
    three = e.candidates.get("three_stage")
    if three:
        held = three["val_held_out"]
        lines += [
            "",
            f"**Three stages** ({' -> '.join(three['stages'])}, one threshold per boundary, "
            "the pair searched jointly on validation) reach parity at "
            f"{three['val_fewer_flops_than_teacher_at_parity']:.2f}x on validation against "
            f"{three['two_stage_val_fewer_flops_than_teacher_at_parity']:.2f}x for the best two "
            "stages. On held-out halves of validation (thresholds taken on one half, measured on "
            f"the other) they are cheaper in {held['share_cheaper']:.0%} of the halves, at "
            f"{held['flops_ratio']:.3f}x the two-stage FLOPs and "
            f"{held['accuracy_difference']:+.2%} accuracy on average. FLOPs are not the served "
            "cost, though: every stage is one more model call per batch. `BENCHMARKS.md` "
            "measures the three-stage router beside the two-stage one on the server, and that "
            "measurement decides what is served by default: "
            f"**{'three stages' if three['served'] else 'two stages'}** "
            "(`make models THREE_STAGE=1` builds three).",
        ]
    return [*lines, ""]


def specialized_lines(s: SpecializedComparison, ft: float) -> list[str]:
    """The specialized section's Markdown."""
    popular = s.record.popular
    lines = [
        "## Specialized EBJR (paper section 2.4, Fig. 6)",
        "",
        f"Specialized Student: popular classes {list(popular)} "
        f'({", ".join(data.CLASS_NAMES[c] for c in popular)}) + "other", '
        f"{s.flops / 1e6:.3f} MFLOPs; routing score {s.record.scores[0]} over the top-C logits "
        '(eq. 17), "other" always to the Teacher (eq. 16). Streams sampled with replacement '
        "from the validation split (thresholds chosen there) and the test split (reported), "
        "fixed seeds; general EBJR serves its own calibrated score.",
        "",
        "Parity = the cheapest validation threshold reaching the Teacher's validation-stream "
        'accuracy; "same cost" = the specialized router at the general router\'s validation '
        "Teacher fraction.",
        "",
        "| popular share | Teacher acc. | general: acc. | general: to Teacher | "
        "general: fewer FLOPs | specialized at parity: acc. | to Teacher | fewer FLOPs | "
        "general at the specialized's cost: acc. | to Teacher |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for share, r in s.results.items():
        g, p, c = r["general"], r["specialized"], r["same_cost"]
        lines.append(
            f"| {share:.0%} | {s.teacher_accuracy[share]:.2%} | {g.accuracy:.2%} | "
            f"{g.teacher_fraction:.1%} | {ft / g.flops:.2f}x | {p.accuracy:.2%} | "
            f"{p.teacher_fraction:.1%} | {ft / p.flops:.2f}x | {c.accuracy:.2%} | "
            f"{c.teacher_fraction:.1%} |"
        )
    cheaper = [w for w, r in s.results.items() if r["specialized"].flops < r["general"].flops]
    better = [
        w
        for w, r in s.results.items()
        if r["specialized"].accuracy > r["same_cost"].accuracy + TOLERANCE
    ]
    return lines + [
        "",
        "On this run, at Teacher parity the specialized router is cheaper than the general one "
        "at popular shares: "
        + (", ".join(f"{w:.0%}" for w in cheaper) or "none measured")
        + f"; at equal cost (its own Teacher fraction) it is more accurate than the general "
        f"router, by more than {TOLERANCE:.1%}, at: "
        + (", ".join(f"{w:.0%}" for w in better) or "none measured")
        + ". Where neither holds, the specialized Student does not pay off.",
        "",
    ]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plots(out: Path, e: Evaluation) -> list[str]:
    """Accuracy against cost per score (Figs. 2-3) and the energy distribution (Fig. 4)."""
    plt = _pyplot()
    fs, ft, test = e.student_flops, e.teacher_flops, e.test
    fig, (ax_flops, ax_frac) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, row in e.scores.items():
        s = sweep(row.test_scores, test.student_ok, test.teacher_ok, fs, ft)
        ax_flops.plot(s.flops / 1e6, s.accuracy * 100, label=label)
        ax_frac.plot(s.teacher_fraction * 100, s.accuracy * 100, label=label)
    for ax, x_s, x_t in ((ax_flops, fs / 1e6, ft / 1e6), (ax_frac, 0, 100)):
        ax.scatter([x_s], [e.student_accuracy * 100], marker="s", c="k", zorder=3)
        ax.scatter([x_t], [e.teacher_accuracy * 100], marker="*", s=150, c="k", zorder=3)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    ax_flops.set_xlabel("average MFLOPs per image (paper's formula)")
    ax_frac.set_xlabel("images sent to the Teacher (%)")
    ax_flops.legend()
    fig.suptitle("EBJR on Fashion-MNIST test: square = Student, star = Teacher")
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_cost.png", dpi=110)
    plt.close(fig)

    energy = e.scores["energy"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    bins = np.linspace(energy.test_scores.min(), energy.test_scores.max(), 60)
    ax.hist(
        energy.test_scores[test.student_ok], bins, alpha=0.6, density=True, label="Student right"
    )
    ax.hist(
        energy.test_scores[~test.student_ok], bins, alpha=0.6, density=True, label="Student wrong"
    )
    threshold = energy.parity.threshold
    ax.axvline(
        threshold, color="k", ls="--", label=f"energy parity threshold {threshold:.3f} (val)"
    )
    ax.set_xlabel("energy score logsumexp(z)")
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "energy_distribution.png", dpi=110)
    plt.close(fig)
    return ["accuracy_vs_cost.png", "energy_distribution.png"]


def _specialized_plots(out: Path, s: SpecializedComparison, ft: float) -> list[str]:
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for kind, curve in s.curves.items():
        left.plot(curve.flops / 1e6, curve.accuracy * 100, label=f"{kind} EBJR")
    left.set_xlabel("average MFLOPs per image")
    left.set_ylabel("test-stream accuracy (%)")
    left.set_title("75% of images from the popular classes")
    shares = list(s.results)
    for kind in ("general", "specialized"):
        right.plot(
            [100 * w for w in shares],
            [ft / s.results[w][kind].flops for w in shares],
            "o-",
            label=kind,
        )
    right.set_xlabel("share of images from the popular classes (%)")
    right.set_ylabel("fewer FLOPs than the Teacher at parity (x)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "specialized.png", dpi=110)
    plt.close(fig)
    return ["specialized.png"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Offline EBJR evaluation of a repository.")
    parser.add_argument("--repo", type=Path, default=PROJECT_ROOT / "model_repository")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "evaluation")
    parser.add_argument(
        "--temperature", type=float, default=2.0, help="also ablate energy at this temperature"
    )
    data.add_labelled_argument(parser, "--val-data", "to choose thresholds on", "fashion-mnist:val")
    data.add_labelled_argument(parser, "--test-data", "to report on", "fashion-mnist:test")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    render(evaluate(args.repo, args.temperature, args.val_data, args.test_data), args.out)
    print(f"Wrote {args.out / 'EVALUATION.md'}")


if __name__ == "__main__":
    main()
