"""``EVALUATION.md`` and its plots (``make eval``): ``evaluate`` computes an ``Evaluation``, this
renders it through the Markdown templates in ``templates/`` (the prose, with ``$placeholders``;
the tables are built here): the cost table, the score ablation, the Teacher study, the Student
candidates and specialized EBJR.

    python -m ebjr.tasks.classification.report [--repo model_repository] [--out evaluation]
                            [--val-data FILE.npz --test-data FILE.npz]   # your own data
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
from pathlib import Path
from string import Template

import numpy as np

from ebjr.core.calibration import (
    sweep,
)
from ebjr.core.layout import (
    PROJECT_ROOT,
    TEACHER_STUDY,
)
from ebjr.tasks.classification import drift_study as drift
from ebjr.tasks.classification.evaluate import (
    FRACTIONS,
    RANDOM_SEEDS,
    TOLERANCE,
    Evaluation,
    Point,
    SpecializedComparison,
    evaluate,
)
from ebjr.tasks.classification.risk_study import (
    ALLOWANCE,
    CONFIDENCES,
    SPLITS,
    TARGETS,
    Violations,
)
from ebjr.training import data

TEMPLATES = Path(__file__).with_name("templates")  # the report's prose, one file per section


def fill(template: str, **values: object) -> list[str]:
    """The lines of ``templates/<template>.md`` with its ``$placeholders`` filled."""
    text = (TEMPLATES / f"{template}.md").read_text().removesuffix("\n")
    return Template(text).substitute(values).split("\n")


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

    cost_rows = [
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
    ]
    best = min(e.scores, key=lambda n: e.scores[n].parity.flops)
    energy_p, soft_p, ent_p = (e.scores[n].parity for n in ("energy", "softmax", "entropy"))
    lines = fill(
        "evaluation",
        repo=e.repo,
        val_data=e.val_data,
        val_rows=e.val_rows,
        test_data=e.test_data,
        test_rows=e.test_rows,
        machine=platform.machine(),
        system=platform.system(),
        cost_rows="\n".join(cost_rows),
        test_gap=f"{(e.teacher_accuracy - e.served.accuracy) * 100:.2f}",
        held_rows=e.held_out["rows"],
        held_halves=e.held_out["halves"],
        held_mean=f"{e.held_out['mean'] * 100:.2f}",
        held_p90=f"{e.held_out['p90'] * 100:.2f}",
        tolerance=f"{TOLERANCE:.1%}",
        ablation_table="\n".join(ablation_table(e, ft)),
        energy_x=f"{ft / energy_p.flops:.2f}",
        softmax_x=f"{ft / soft_p.flops:.2f}",
        entropy_x=f"{ft / ent_p.flops:.2f}",
        best=best,
        served_score=cal.scores[0],
        chosen_by=cal.chosen_by,
        evidence=", ".join(
            f"{n} {point['parity_teacher_fraction']:.1%} to Teacher"
            for n, point in cal.evidence.items()
        ),
        plots="\n".join(f"![{name}]({name})" for name in pngs),
    )
    lines += risk_lines(e, out)
    lines += drift_lines(e)
    lines += teacher_lines(e.candidates.get("teacher_candidates"), TEACHER_STUDY)
    lines += candidate_lines(e, ft)
    if e.specialized is not None:
        lines += specialized_lines(e.specialized, ft)
        lines += [f"![{p}]({p})" for p in _specialized_plots(out, e.specialized, ft)] + [""]
    text = "\n".join(lines)
    (out / "EVALUATION.md").write_text(text)
    return text


def ablation_table(e: Evaluation, ft: float) -> list[str]:
    """Each score at parity and at fixed Teacher fractions, then random and oracle routing."""
    lines = [
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
    return [
        *lines,
        f"| random ({RANDOM_SEEDS} seeds, mean ± std) | - | - | - | "
        + " | ".join(f"{e.random[f][0]:.2%} ± {e.random[f][1]:.2%}" for f in FRACTIONS)
        + " |",
        f"| oracle (Teacher only where the Student is wrong) | {e.oracle.accuracy:.2%} | "
        f"{e.oracle.teacher_fraction:.1%} | {ft / e.oracle.flops:.2f}x | - | - | - |",
        "| oracle at parity, the limit for any router (just enough rows that the Student gets "
        f"wrong and the Teacher right) | {e.parity_oracle.accuracy:.2%} | "
        f"{e.parity_oracle.teacher_fraction:.1%} | {ft / e.parity_oracle.flops:.2f}x | - | - "
        "| - |",
    ]


def risk_lines(e: Evaluation, out: Path) -> list[str]:
    """The ``max_accuracy_drop`` knob: the served table at the study's targets, the
    violation study against ``min_accuracy``, and its plot."""
    risk = e.calibration.risk
    if risk is None:
        return []
    served = []
    for drop, confidence in TARGETS:
        d, k = risk.point(drop, confidence)
        served.append(
            f"| {drop * 100:.1f} pt | {confidence:g} | {risk.teacher_fraction[d, k]:.1%} | "
            f"{risk.lost[d, k]:.2%} |"
        )
    study = {(v.drop, v.confidence): v for v in e.risk}
    rows = []
    for drop, confidence in TARGETS:
        v = study[(drop, confidence)]
        rows.append(
            f"| {drop * 100:.1f} pt | {confidence:g} | {v.certified:.1%} | {v.min_accuracy:.1%} | "
            f"<= {1 - confidence + ALLOWANCE:.0%} | {'yes' if v.met else 'no'} | "
            f"{v.certified_share:.1%} | {v.min_accuracy_share:.1%} | {v.certified_lost:.1%} |"
        )
    headline = study[TARGETS[0]]
    lines = fill(
        "risk_control",
        val_rows=risk.rows,
        served_rows="\n".join(served),
        test_data=e.test_data,
        splits=SPLITS,
        allowance=f"{ALLOWANCE:.2f}",
        study_rows="\n".join(rows),
        held_rows=e.test_rows - e.test_rows // 2,
        extra_share=f"{(headline.certified_share - headline.min_accuracy_share) * 100:.1f} points",
    )
    _risk_plot(out, e.risk)
    return [*lines, ""]


def drift_lines(e: Evaluation) -> list[str]:
    """``teacher_fraction`` with and without tracking, on the clean and noisy streams."""
    rows = [
        f"| {d.stream} | {d.asked:.0%} | {d.calibrated_share:.1%} | {d.calibrated_accuracy:.2%} | "
        f"{d.tracked_share:.1%} | {d.tracked_accuracy:.2%} | "
        f"{'yes' if d.met else 'no' if d.stream != 'clean' else '-'} |"
        for d in e.drift
    ]
    clean, noisy = (next(d for d in e.drift if (d.stream == "clean") == c) for c in (True, False))
    lines = fill(
        "drift",
        noisy_student=f"{noisy.student_accuracy:.1%}",
        noisy_teacher=f"{noisy.teacher_accuracy:.1%}",
        clean_student=f"{clean.student_accuracy:.1%}",
        clean_teacher=f"{clean.teacher_accuracy:.1%}",
        batch=drift.BATCH,
        sigma=drift.SIGMA,
        window=drift.WINDOW,
        allowed=f"{drift.ALLOWED:.2f}",
        rows="\n".join(rows),
    )
    return [*lines, ""]


def _risk_plot(out: Path, study: list[Violations]) -> None:
    """Violation rate and Teacher share against the drop asked for, per rule."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    series = [
        (f"max_accuracy_drop, confidence {c:g}", "o-", c, "certified") for c in CONFIDENCES
    ] + [("min_accuracy = Teacher - drop", "s--", CONFIDENCES[0], "min_accuracy")]
    for label, style, confidence, rule in series:
        rows = [v for v in study if v.confidence == confidence]
        drops = [100 * v.drop for v in rows]
        left.plot(drops, [100 * getattr(v, rule) for v in rows], style, label=label)
        right.plot(drops, [100 * getattr(v, f"{rule}_share") for v in rows], style, label=label)
    for confidence in CONFIDENCES:
        left.axhline(100 * (1 - confidence), ls=":", c="grey")
    left.set_ylabel("evaluation halves more than the drop below the Teacher (%)")
    right.set_ylabel("images sent to the Teacher (%)")
    for ax in (left, right):
        ax.set_xlabel("accuracy drop asked for (points)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{SPLITS} random calibration / evaluation halves of the test split")
    fig.tight_layout()
    fig.savefig(out / "risk_control.png", dpi=110)
    plt.close(fig)


def teacher_lines(views: dict | None, study_file: Path) -> list[str]:
    """The Teacher candidates: the recipes of ``make teacher-study`` (``study_file``) and the
    views of the trained Teacher that ``make models`` chose between (``views``)."""
    lines = []
    if study_file.exists():
        study = json.loads(study_file.read_text())
        name, view = study["chosen"]
        rows = {f"{n} ({v})": m for n, vs in study["candidates"].items() for v, m in vs.items()}
        lines += fill("teacher_study", name=name, view=view, table="\n".join(_teacher_table(rows)))
    if views:
        table = "\n".join(_teacher_table(views["candidates"]))
        lines += fill("served_teacher", chosen=views["chosen"], table=table)
    return lines


def _teacher_table(rows: dict[str, dict]) -> list[str]:
    lines = [
        "| candidate | architecture | members | epochs | MFLOPs | val acc. | test acc. "
        "| train minutes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m in rows.items():
        arch = m["architecture"]
        lines.append(
            f"| {name} | widths {tuple(arch['widths'])}, {arch['blocks']} blocks, stem stride "
            f"{arch['stem_stride']} | {m['members']} | {m['recipe']['epochs']} | "
            f"{m['flops'] / 1e6:.1f} | "
            f"{m['val_accuracy']:.2%} | {m['test_accuracy']:.2%} | {m['train_seconds'] / 60:.1f} |"
        )
    return [*lines, ""]


def candidate_lines(e: Evaluation, ft: float) -> list[str]:
    """The Student candidates of ``make models`` and the cascades they make."""
    if not e.cascades:
        return []
    found = e.candidates["student_candidates"]
    rows = []
    for row in e.cascades:
        accuracy, fraction, flops = row.test
        if len(row.stages) == 2:
            c = found["candidates"][row.stages[0]]
            size = "x".join(str(d) for d in c["input"]["shape"][1:])
            rows.append(
                f"| {row.stages[0]} | {size} | {'yes' if c['distilled'] else 'no'} | "
                f"{c['flops'] / 1e6:.3f} | {c['val_accuracy']:.2%} | {c['test_accuracy']:.2%} | "
                f"{c['val_score']} | {row.val_reduction:.2f}x | {accuracy:.2%} | {fraction:.1%} | "
                f"{ft / flops:.2f}x |"
            )
        else:
            rows.append(
                f"| {' -> '.join(row.stages)} (three stages) | | | | | | | "
                f"{row.val_reduction:.2f}x | {accuracy:.2%} | {fraction:.1%} | {ft / flops:.2f}x |"
            )
    lines = fill("students", chosen=found["chosen"], rows="\n".join(rows))
    three = e.candidates.get("three_stage")
    if three:
        held = three["val_held_out"]
        lines += fill(
            "three_stages",
            stages=" -> ".join(three["stages"]),
            three_x=f"{three['val_fewer_flops_than_teacher_at_parity']:.2f}",
            two_x=f"{three['two_stage_val_fewer_flops_than_teacher_at_parity']:.2f}",
            share_cheaper=f"{held['share_cheaper']:.0%}",
            flops_ratio=f"{held['flops_ratio']:.3f}",
            accuracy_difference=f"{held['accuracy_difference']:+.2%}",
            served="three stages" if three["served"] else "two stages",
        )
    return [*lines, ""]


def specialized_lines(s: SpecializedComparison, ft: float) -> list[str]:
    """The specialized section's Markdown."""
    popular = s.record.popular
    rows = []
    for share, r in s.results.items():
        g, p, c = r["general"], r["specialized"], r["same_cost"]
        rows.append(
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
    return fill(
        "specialized",
        popular=list(popular),
        popular_names=", ".join(data.CLASS_NAMES[c] for c in popular),
        mflops=f"{s.flops / 1e6:.3f}",
        score=s.record.scores[0],
        rows="\n".join(rows),
        cheaper=", ".join(f"{w:.0%}" for w in cheaper) or "none measured",
        tolerance=f"{TOLERANCE:.1%}",
        better=", ".join(f"{w:.0%}" for w in better) or "none measured",
    )


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
