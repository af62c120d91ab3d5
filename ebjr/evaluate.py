"""Offline evaluation of a model repository, as in the EBJR paper (``make eval``).

    python -m ebjr.evaluate [--repo model_repository] [--out evaluation]
                            [--val-data FILE.npz --test-data FILE.npz]   # your own data

Runs Student and Teacher once per split with onnxruntime (logits cached under ``build/eval``),
then reports on the *test* split with every threshold chosen on the *validation* split:
the paper's Table 1 (Student, Teacher, EBJR), the routing-score ablation (Fig. 3-right) with
random routing and the oracle, and plots (Figs. 2-4). Writes ``EVALUATION.md`` and PNGs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ebjr import data
from ebjr import specialized as spec
from ebjr.calibration import (
    CALIBRATION_FILE,
    PARITY_TOLERANCE,
    Calibration,
    calibrate,
    sweep,
)
from ebjr.onnx_info import describe
from ebjr.onnx_runner import OnnxClassifier
from ebjr.scores import SCORES, get_score

FRACTIONS = (0.1, 0.3, 0.5)
RANDOM_SEEDS = 10


@dataclass(frozen=True)
class Split:
    """Cached model outputs on one labelled split: logits (N, C), labels (N,)."""

    student: np.ndarray
    teacher: np.ndarray
    labels: np.ndarray

    @property
    def student_ok(self) -> np.ndarray:
        return self.student.argmax(1) == self.labels

    @property
    def teacher_ok(self) -> np.ndarray:
        return self.teacher.argmax(1) == self.labels


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def model_outputs(
    repo: Path, split: str, cache: Path, student: str = "student", source: str | None = None
) -> Split:
    """``student`` and Teacher logits on labelled data ``source`` (default: Fashion-MNIST's
    ``split``; see ``ebjr.data.load_labelled``), cached under ``cache``."""
    models = [repo / name / "1" / "model.onnx" for name in (student, "teacher")]
    source = source or f"fashion-mnist:{split}"
    key = hashlib.sha256(source.encode()).hexdigest()[:8]
    path = cache / f"{split}-{key}-{_digest(models)}.npz"
    if path.exists():
        with np.load(path) as archive:
            return Split(archive["student"], archive["teacher"], archive["labels"])
    images, labels = data.load_labelled(source)
    student_logits, teacher = (OnnxClassifier(m, threads=2).predict(images) for m in models)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, student=student_logits, teacher=teacher, labels=labels)
    return Split(student_logits, teacher, labels)


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


def apply(
    scores: np.ndarray, threshold: float, split: Split, fs: float, ft: float,
    student_ok: np.ndarray | None = None,
) -> dict:  # fmt: skip
    """Accuracy, Teacher fraction and FLOPs of routing ``split`` at ``threshold``
    (``student_ok`` overrides the Student's correctness, e.g. for a specialized Student)."""
    to_teacher = scores < threshold
    fraction = float(to_teacher.mean())
    ok = split.student_ok if student_ok is None else student_ok
    accuracy = float(np.where(to_teacher, split.teacher_ok, ok).mean())
    return {"threshold": threshold, "accuracy": accuracy, "teacher_fraction": fraction,
            "flops": fs + fraction * ft}  # fmt: skip


def ablation(val: Split, test: Split, fs: float, ft: float, temperature: float) -> dict:
    """Per score: thresholds chosen on validation, applied to test."""
    rows = {}
    names = {n: (n, 1.0) for n in SCORES}
    if temperature != 1.0:
        names[f"energy (T={temperature:g})"] = ("energy", temperature)
    for label, (name, t) in names.items():
        score = get_score(name, t)
        val_scores, test_scores = score(val.student), score(test.student)
        record = calibrate(val_scores, val.student_ok, val.teacher_ok, fs, ft, name, t)
        parity = apply(test_scores, float(record["parity_threshold"]), test, fs, ft)
        at_fraction = {
            f: apply(test_scores, float(np.quantile(val_scores, f)), test, fs, ft)
            for f in FRACTIONS
        }
        rows[label] = {"parity": parity, "at_fraction": at_fraction, "test_scores": test_scores}
    return rows


def random_routing(test: Split, fs: float, ft: float) -> dict:
    """Random routing at each fixed Teacher fraction: mean and std of accuracy over seeds."""
    out = {}
    for f in FRACTIONS:
        accs = []
        for seed in range(RANDOM_SEEDS):
            to_teacher = np.random.default_rng(seed).random(len(test.labels)) < f
            accs.append(np.where(to_teacher, test.teacher_ok, test.student_ok).mean())
        out[f] = (float(np.mean(accs)), float(np.std(accs)))
    return out


def plots(out: Path, test: Split, rows: dict, fs: float, ft: float, threshold: float) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig, (ax_flops, ax_frac) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, row in rows.items():
        s = sweep(row["test_scores"], test.student_ok, test.teacher_ok, fs, ft)
        ax_flops.plot(s.flops / 1e6, s.accuracy * 100, label=label)
        ax_frac.plot(s.teacher_fraction * 100, s.accuracy * 100, label=label)
    for ax, x_s, x_t in ((ax_flops, fs / 1e6, ft / 1e6), (ax_frac, 0, 100)):
        ax.scatter([x_s], [test.student_ok.mean() * 100], marker="s", c="k", zorder=3)
        ax.scatter([x_t], [test.teacher_ok.mean() * 100], marker="*", s=150, c="k", zorder=3)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    ax_flops.set_xlabel("average MFLOPs per image (paper's formula)")
    ax_frac.set_xlabel("images sent to the Teacher (%)")
    ax_flops.legend()
    fig.suptitle("EBJR on Fashion-MNIST test: square = Student, star = Teacher")
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_cost.png", dpi=110)
    files.append("accuracy_vs_cost.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    scores = rows["energy"]["test_scores"]
    bins = np.linspace(scores.min(), scores.max(), 60)
    ax.hist(scores[test.student_ok], bins, alpha=0.6, density=True, label="Student right")
    ax.hist(scores[~test.student_ok], bins, alpha=0.6, density=True, label="Student wrong")
    ax.axvline(
        threshold, color="k", ls="--", label=f"energy parity threshold {threshold:.3f} (val)"
    )
    ax.set_xlabel("energy score logsumexp(z)")
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "energy_distribution.png", dpi=110)
    files.append("energy_distribution.png")
    plt.close(fig)
    return files


SHARES = (0.25, 0.5, 0.75, 0.9)


@dataclass(frozen=True)
class Stream:
    """One model's routing inputs on a skewed stream: scores (N,), student_ok (N,)."""

    scores: np.ndarray
    student_ok: np.ndarray
    split: Split


def _streams(general: Split, special: Split, rows: np.ndarray, served, record: dict):
    """(general, specialized) ``Stream``s on ``rows`` of one split."""
    classes, other = np.array(record["popular"]), len(record["popular"])
    score = get_score(record["score"], record["temperature"])
    g = Split(general.student[rows], general.teacher[rows], general.labels[rows])
    s = Split(special.student[rows], special.teacher[rows], special.labels[rows])
    raw = spec.specialized_scores(s.student, other, score)
    return (
        Stream(served(g.student), g.student_ok, g),
        Stream(spec.effective_scores(raw, s.student, other),
               spec.student_correct(s.student, s.labels, classes, other), s),
    )  # fmt: skip


def specialized_report(
    repo: Path, cache: Path, out: Path, general: dict[str, Split], served, fs: float, ft: float
):
    """Specialized vs general EBJR on skewed streams (paper Fig. 6); ``general`` holds the
    general Student's ``val`` and ``test`` splits. Returns (lines, pngs)."""
    path = repo / "ebjr_specialized" / CALIBRATION_FILE
    if not path.exists():
        return [], []
    record = json.loads(path.read_text())
    popular = tuple(record["popular"])
    f_special = describe(repo / "student_specialized" / "1" / "model.onnx").flops
    splits = {name: (general[name], model_outputs(repo, name, cache, "student_specialized"))
              for name in ("val", "test")}  # fmt: skip
    results, curves = {}, {}
    for share in SHARES:
        val_rows = spec.skewed_stream(splits["val"][0].labels, popular, share, 5000, seed=0)
        test_rows = spec.skewed_stream(splits["test"][0].labels, popular, share, 10000, seed=1)
        val = _streams(*splits["val"], val_rows, served, record)
        test = _streams(*splits["test"], test_rows, served, record)
        results[share] = {}
        for kind, v, t, f_s in (("general", val[0], test[0], fs),
                                ("specialized", val[1], test[1], f_special)):  # fmt: skip
            cal = calibrate(v.scores, v.student_ok, v.split.teacher_ok, f_s, ft,
                            specialized=kind == "specialized")  # fmt: skip
            point = apply(t.scores, float(cal["parity_threshold"]), t.split, f_s, ft, t.student_ok)
            results[share][kind] = {**point, "teacher_accuracy": float(t.split.teacher_ok.mean()),
                                    "val_fraction": cal["parity_teacher_fraction"]}  # fmt: skip
            if share == 0.75:
                curve = sweep(t.scores, t.student_ok, t.split.teacher_ok, f_s, ft)
                if kind == "specialized":
                    curve = curve.without_minus_inf()
                curves[kind] = curve
        # Equal cost: the general router at the specialized router's validation Teacher fraction
        # (the specialized one cannot go below its "other" rows, the general one can).
        fraction = results[share]["specialized"]["val_fraction"]
        threshold = float(np.quantile(val[0].scores, fraction, method="inverted_cdf"))
        results[share]["same_cost"] = apply(test[0].scores, threshold, test[0].split, fs, ft,
                                            test[0].student_ok)  # fmt: skip
    lines = [
        "## Specialized EBJR (paper section 2.4, Fig. 6)",
        "",
        f"Specialized Student: popular classes {list(popular)} "
        f'({", ".join(data.CLASS_NAMES[c] for c in popular)}) + "other", '
        f"{f_special / 1e6:.3f} MFLOPs; routing score {record['score']} over the top-C logits "
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
    for share, r in results.items():
        g, s, c = r["general"], r["specialized"], r["same_cost"]
        lines.append(
            f"| {share:.0%} | {g['teacher_accuracy']:.2%} | {g['accuracy']:.2%} | "
            f"{g['teacher_fraction']:.1%} | {ft / g['flops']:.2f}x | {s['accuracy']:.2%} | "
            f"{s['teacher_fraction']:.1%} | {ft / s['flops']:.2f}x | {c['accuracy']:.2%} | "
            f"{c['teacher_fraction']:.1%} |"
        )
    cheaper = [s for s, r in results.items() if r["specialized"]["flops"] < r["general"]["flops"]]
    margin = PARITY_TOLERANCE
    better = [s for s, r in results.items()
              if r["specialized"]["accuracy"] > r["same_cost"]["accuracy"] + margin]  # fmt: skip
    lines += [
        "",
        "On this run, at Teacher parity the specialized router is cheaper than the general one "
        "at popular shares: "
        + (", ".join(f"{w:.0%}" for w in cheaper) or "none measured")
        + f"; at equal cost (its own Teacher fraction) it is more accurate than the general "
        f"router, by more than {PARITY_TOLERANCE:.1%}, at: "
        + (", ".join(f"{w:.0%}" for w in better) or "none measured")
        + ". Where neither holds, the specialized Student does not pay off.",
        "",
    ]
    pngs = _specialized_plots(out, results, curves, ft)
    return lines + [f"![{p}]({p})" for p in pngs] + [""], pngs


def _specialized_plots(out: Path, results: dict, curves: dict, ft: float) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for kind, curve in curves.items():
        left.plot(curve.flops / 1e6, curve.accuracy * 100, label=f"{kind} EBJR")
    left.set_xlabel("average MFLOPs per image")
    left.set_ylabel("test-stream accuracy (%)")
    left.set_title("75% of images from the popular classes")
    for kind in ("general", "specialized"):
        shares = list(results)
        right.plot([100 * s for s in shares],
                   [ft / results[s][kind]["flops"] for s in shares], "o-", label=kind)  # fmt: skip
    right.set_xlabel("share of images from the popular classes (%)")
    right.set_ylabel("fewer FLOPs than the Teacher at parity (x)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "specialized.png", dpi=110)
    plt.close(fig)
    return ["specialized.png"]


def report(
    repo: Path, out: Path, temperature: float = 1.0,
    val_data: str = "fashion-mnist:val", test_data: str = "fashion-mnist:test",
) -> str:  # fmt: skip
    """Evaluate ``repo`` and write ``out/EVALUATION.md`` with its plots; return the text.
    Thresholds are chosen on ``val_data`` and reported on ``test_data``."""
    cache = Path("build/eval")
    val = model_outputs(repo, "val", cache, source=val_data)
    test = model_outputs(repo, "test", cache, source=test_data)
    student_path, teacher_path = (repo / n / "1" / "model.onnx" for n in ("student", "teacher"))
    fs, ft = describe(student_path).flops, describe(teacher_path).flops
    images = data.load_labelled(val_data)[0]
    ls, lt = latency_ms(student_path, images), latency_ms(teacher_path, images)
    calibration = Calibration.load(repo / "ebjr_router" / CALIBRATION_FILE)
    record = json.loads((repo / "ebjr_router" / CALIBRATION_FILE).read_text())
    served = get_score(calibration.score, calibration.temperature)
    ebjr = apply(served(test.student), calibration.default_threshold, test, fs, ft)
    crossing = apply(served(test.student), record["crossing_threshold"], test, fs, ft)
    rows = ablation(val, test, fs, ft, temperature)
    rand = random_routing(test, fs, ft)
    oracle_fraction = float((~test.student_ok).mean())
    oracle_acc = float((test.student_ok | test.teacher_ok).mean())
    out.mkdir(parents=True, exist_ok=True)
    pngs = plots(out, test, rows, fs, ft, float(rows["energy"]["parity"]["threshold"]))

    def cost_row(name: str, acc: float, fraction: float) -> str:
        flops = fs + fraction * ft
        return (f"| {name} | {acc:.2%} | {flops / 1e6:.3f} | {ft / flops:.2f}x | "
                f"{fraction:.1%} | {ls + fraction * lt:.3f} |")  # fmt: skip

    lines = [
        "# EVALUATION (generated by `make eval`; do not edit)",
        "",
        f"Repository `{repo}`. Thresholds are chosen on the validation data `{val_data}` "
        f"({len(val.labels)} images) and applied to the test data `{test_data}` "
        f"({len(test.labels)} images). "
        f"Machine: {platform.machine()}, {platform.system()}. FLOPs are 2 x multiply-adds of "
        "Conv/Gemm/MatMul per image; EBJR's average is `(N_S*F_S + N_T*(F_S+F_T)) / N`. "
        "Latency is the median single-image onnxruntime time (1 thread) measured in this run; "
        "EBJR's is the expected `L_S + f * L_T`.",
        "",
        "## Table 1: Student, Teacher and EBJR (test split)",
        "",
        "| model | accuracy | MFLOPs/image | fewer FLOPs than Teacher | to Teacher | latency ms |",
        "|---|---|---|---|---|---|",
        f"| Student | {test.student_ok.mean():.2%} | {fs / 1e6:.3f} | - | 0% | {ls:.3f} |",
        f"| Teacher | {test.teacher_ok.mean():.2%} | {ft / 1e6:.3f} | 1.00x | 100% | {lt:.3f} |",
        cost_row(
            f"EBJR, {calibration.score}, t={calibration.default_threshold:.3f} (val parity)",
            ebjr["accuracy"],
            ebjr["teacher_fraction"],
        ),  # fmt: skip
        cost_row(
            f"EBJR, crossing point t={record['crossing_threshold']:.3f} (val, Fig. 4)",
            crossing["accuracy"],
            crossing["teacher_fraction"],
        ),  # fmt: skip
        "",
        "As in the paper's Table 1, the reduction is `F_T / FLOPs`: the Teacher served alone "
        "against EBJR's average, which pays for the Student on every image.",
        "",
        "## Routing-score ablation (paper Fig. 3-right), test split",
        "",
        "Parity = the cheapest validation threshold within "
        f"{PARITY_TOLERANCE:.1%} of the Teacher's validation accuracy, applied to test. "
        "Fixed fractions use the validation quantile of each score.",
        "",
        "| score | parity: test accuracy | parity: to Teacher | parity: FLOPs reduction | "
        + " | ".join(f"acc @ {f:.0%} Teacher" for f in FRACTIONS)
        + " |",
        "|---|---|---|---|" + "---|" * len(FRACTIONS),
    ]
    for label, row in rows.items():
        p = row["parity"]
        cells = " | ".join(
            f"{point['accuracy']:.2%} ({point['teacher_fraction']:.1%})"
            for point in (row["at_fraction"][f] for f in FRACTIONS)
        )
        lines.append(
            f"| {label} | {p['accuracy']:.2%} | {p['teacher_fraction']:.1%} | "
            f"{ft / p['flops']:.2f}x | {cells} |"
        )
    lines.append(
        f"| random ({RANDOM_SEEDS} seeds, mean ± std) | - | - | - | "
        + " | ".join(f"{rand[f][0]:.2%} ± {rand[f][1]:.2%}" for f in FRACTIONS)
        + " |"
    )
    lines.append(
        f"| oracle (Teacher only where the Student is wrong) | {oracle_acc:.2%} | "
        f"{oracle_fraction:.1%} | {ft / (fs + oracle_fraction * ft):.2f}x | - | - | - |"
    )
    best = min(rows, key=lambda n: rows[n]["parity"]["flops"])
    energy_p, soft_p, ent_p = (rows[n]["parity"] for n in ("energy", "softmax", "entropy"))
    lines += [
        "",
        "## Does energy beat softmax confidence and entropy here?",
        "",
        f"At validation-chosen parity thresholds, the test-split FLOPs reductions are: energy "
        f"{ft / energy_p['flops']:.2f}x, softmax confidence "
        f"{ft / soft_p['flops']:.2f}x, negative entropy {ft / ent_p['flops']:.2f}x. "
        f"The cheapest score at parity on this run is **{best}**. The router serves "
        f"**{calibration.score}** (calibration: {record['chosen_by']}, on validation). "
        "Calibration evidence per score (validation): "
        + ", ".join(
            f"{n} {e['parity_teacher_fraction']:.1%} to Teacher"
            for n, e in record["evidence"].items()
        )
        + ".",
        "",
        "## Plots",
        "",
        *[f"![{name}]({name})" for name in pngs],
        "",
        *(
            specialized_report(repo, cache, out, {"val": val, "test": test}, served, fs, ft)[0]
            if test_data == "fashion-mnist:test"
            else []
        ),  # fmt: skip
    ]
    text = "\n".join(lines)
    (out / "EVALUATION.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Offline EBJR evaluation of a repository.")
    parser.add_argument("--repo", type=Path, default=Path("model_repository"))
    parser.add_argument("--out", type=Path, default=Path("evaluation"))
    parser.add_argument("--temperature", type=float, default=2.0,
                        help="also ablate energy at this temperature")  # fmt: skip
    parser.add_argument("--val-data", default="fashion-mnist:val",
                        help="labelled data to choose thresholds on: fashion-mnist:val, "
                        "FILE.npz (images, labels) or IMAGES.idx,LABELS.idx")  # fmt: skip
    parser.add_argument("--test-data", default="fashion-mnist:test",
                        help="labelled data to report on (same formats)")  # fmt: skip
    args = parser.parse_args(argv)
    report(args.repo, args.out, args.temperature, args.val_data, args.test_data)
    print(f"Wrote {args.out / 'EVALUATION.md'}")


if __name__ == "__main__":
    main()
