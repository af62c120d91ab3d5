"""Offline evaluation of a model repository, as in the EBJR paper (``make eval``).

    python -m ebjr.evaluate [--repo model_repository] [--out evaluation]

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
from ebjr.calibration import CALIBRATION_FILE, PARITY_TOLERANCE, Calibration, calibrate, sweep
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


def model_outputs(repo: Path, split: str, cache: Path, spec: str | None = None) -> Split:
    """Student and Teacher logits on ``split`` (``fashion-mnist:<split>`` unless ``spec``)."""
    models = [repo / name / "1" / "model.onnx" for name in ("student", "teacher")]
    spec = spec or f"fashion-mnist:{split}"
    key = hashlib.sha256(spec.encode()).hexdigest()[:8]
    path = cache / f"{split}-{key}-{_digest(models)}.npz"
    if path.exists():
        with np.load(path) as archive:
            return Split(archive["student"], archive["teacher"], archive["labels"])
    images, labels = data.load_labelled(spec)
    student, teacher = (OnnxClassifier(m, threads=2).predict(images) for m in models)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, student=student, teacher=teacher, labels=labels)
    return Split(student, teacher, labels)


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


def apply(scores: np.ndarray, threshold: float, split: Split, fs: float, ft: float) -> dict:
    """Accuracy, Teacher fraction and FLOPs of routing ``split`` at ``threshold``."""
    to_teacher = scores < threshold
    fraction = float(to_teacher.mean())
    accuracy = float(np.where(to_teacher, split.teacher_ok, split.student_ok).mean())
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
    ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.3f} (from val)")
    ax.set_xlabel("energy score logsumexp(z)")
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "energy_distribution.png", dpi=110)
    files.append("energy_distribution.png")
    plt.close(fig)
    return files


def report(repo: Path, out: Path, temperature: float = 1.0) -> str:
    """Evaluate ``repo`` and write ``out/EVALUATION.md`` with its plots; return the text."""
    cache = Path("build/eval")
    val, test = model_outputs(repo, "val", cache), model_outputs(repo, "test", cache)
    student_path, teacher_path = (repo / n / "1" / "model.onnx" for n in ("student", "teacher"))
    fs, ft = describe(student_path).flops, describe(teacher_path).flops
    images = data.load_split("val")[0]
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
        f"Repository `{repo}`, Fashion-MNIST. Thresholds are chosen on the validation split "
        f"({len(val.labels)} images) and applied to the test split ({len(test.labels)} images). "
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
    args = parser.parse_args(argv)
    report(args.repo, args.out, args.temperature)
    print(f"Wrote {args.out / 'EVALUATION.md'}")


if __name__ == "__main__":
    main()
