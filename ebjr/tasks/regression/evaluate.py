"""Offline EBJR for regression (paper eqs. 8-11): thresholds chosen on the rotated validation
images, reported on the rotated test images (``make eval`` writes
``evaluation/REGRESSION.md``).

A threshold ``t`` keeps the Student's angle where its score is at least ``t``, else takes the
Teacher's; the cascade's error is the mean absolute error (degrees) over all images. Costs are
the paper's average FLOPs per image.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ebjr.build.model_config import parameters, read
from ebjr.build.onnx_info import describe_graph
from ebjr.build.report import cost_plot, report_main
from ebjr.core.calibration import cascade_flops, cheapest_reaching, read_calibration
from ebjr.core.layout import DEFAULT_REPOSITORY, calibration_path, config_path
from ebjr.tasks.regression import (
    REGRESSION_MODELS,
    REGRESSOR_ROUTER,
    REGRESSOR_STUDENT,
    REGRESSOR_TEACHER,
)
from ebjr.tasks.regression.data import make_rotated
from ebjr.tasks.regression.repository import METRIC, errors, frontier, outputs
from ebjr.tasks.regression.scores import BASELINES, PREDICTIONS, SCORES, EnergyHead, score

log = logging.getLogger(__name__)
TARGETS = {"parity": 1 + METRIC.tolerance, "+10% MAE": 1.10}  # multiples of the Teacher's MAE
SHARES = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def at(keep: np.ndarray, err_s: np.ndarray, err_t: np.ndarray, fs: float, ft: float):
    """``(MAE, Teacher share, average FLOPs)`` of the cascade keeping the Student where
    ``keep: (N,)``."""
    fraction = float((~keep).mean())
    return float(np.where(keep, err_s, err_t).mean()), fraction, cascade_flops(fs, ft, fraction)


def evaluate(models: Path, out: Path, repo: Path = DEFAULT_REPOSITORY) -> str:
    paths = {n: models / f"{n}.onnx" for n in (REGRESSOR_STUDENT, REGRESSOR_TEACHER)}
    fs, ft = (describe_graph(p).flops for p in paths.values())
    head = EnergyHead.from_parameters(parameters(read(config_path(repo, REGRESSOR_ROUTER))))
    forms = parameters(read(config_path(repo, REGRESSOR_ROUTER)))["prediction"].split(",")
    prediction = dict(zip((REGRESSOR_STUDENT, REGRESSOR_TEACHER), forms, strict=True))
    data = {split: make_rotated(split) for split in ("val", "test")}
    found = {(m, s): outputs(p, data[s].images) for m, p in paths.items() for s in data}
    err = {
        (m, s): errors(found[m, s], data[s].angles, prediction[m], head)
        for m in paths
        for s in data
    }
    student, teacher = REGRESSOR_STUDENT, REGRESSOR_TEACHER
    lines = [
        "## Regression (paper eqs. 8-11)",
        "",
        f"Rotated Fashion-MNIST (`ebjr.tasks.regression.data`): the angle in [-60, 60] degrees. "
        f"Thresholds chosen on {len(data['val'].angles)} validation images, reported on "
        f"{len(data['test'].angles)} test images. Student {fs / 1e6:.2f} MFLOPs, Teacher "
        f"{ft / 1e6:.2f} MFLOPs per image. Parity: the cascade's validation MAE within "
        f"{METRIC.tolerance:.0%} of the Teacher's.",
        "",
        "Test MAE (degrees) of every prediction form (each model answers in the form with its "
        f"lowest validation MAE: `{prediction[REGRESSOR_STUDENT]}` for the Student, "
        f"`{prediction[REGRESSOR_TEACHER]}` for the Teacher):",
        "",
        "| model | " + " | ".join(PREDICTIONS) + " |",
        "|---|" + "---|" * len(PREDICTIONS),
        *[
            f"| {m} | "
            + " | ".join(
                f"{errors(found[m, 'test'], data['test'].angles, p, head).mean():.3f}"
                for p in PREDICTIONS
            )
            + " |"
            for m in paths
        ],
        "",
        "| score | target | test MAE | to Teacher | fewer FLOPs than Teacher |",
        "|---|---|---|---|---|",
    ]
    teacher_val = err[teacher, "val"].mean()
    curves = {}
    for name in SCORES + BASELINES:
        s_val, s_test = (score(name, found[student, s], head) for s in ("val", "test"))
        front = frontier(s_val, err[student, "val"], err[teacher, "val"], (fs, ft))
        for label, factor in TARGETS.items():
            i = cheapest_reaching(front.accuracy, front.flops, -factor * teacher_val)
            mae, fraction, cost = at(
                s_test >= front.thresholds[i, 0], err[student, "test"], err[teacher, "test"], fs, ft
            )
            lines.append(f"| {name} | {label} | {mae:.3f} | {fraction:.1%} | {ft / cost:.2f}x |")
        cuts = [np.quantile(s_val, q) for q in SHARES[1:-1]]
        curves[name] = [
            at(s_test >= t, err[student, "test"], err[teacher, "test"], fs, ft)
            for t in [-np.inf, *cuts, np.inf]
        ]
    rng = np.random.default_rng(0)
    for fraction in (0.3, 0.5):
        keep = rng.random(len(data["test"].angles)) >= fraction
        mae, share, cost = at(keep, err[student, "test"], err[teacher, "test"], fs, ft)
        lines.append(
            f"| random | {fraction:.0%} to Teacher | {mae:.3f} | {share:.1%} | {ft / cost:.2f}x |"
        )
    gain = err[student, "test"] - err[teacher, "test"]  # the oracle: largest gain first
    oracle = frontier(-gain, err[student, "test"], err[teacher, "test"], (fs, ft))
    teacher_test = err[teacher, "test"].mean()
    for label, factor in TARGETS.items():
        i = cheapest_reaching(oracle.accuracy, oracle.flops, -factor * teacher_test)
        lines.append(
            f"| oracle (largest Student-Teacher error gap first; cut on test) | {label} | "
            f"{-oracle.accuracy[i]:.3f} | {oracle.teacher_fraction[i]:.1%} | "
            f"{ft / oracle.flops[i]:.2f}x |"
        )
    points = {k: [(p[2] / ft, p[0]) for p in c] for k, c in curves.items()}
    png = cost_plot(points, "test MAE (degrees)", out.parent / "regression_mae_vs_cost.png")
    lines += [
        "",
        "Test MAE against the Teacher share (thresholds: validation quantiles of each score):",
        "",
        "| score | " + " | ".join(f"{s:.0%}" for s in SHARES) + " |",
        "|---|" + "---|" * len(SHARES),
        *[
            f"| {name} | " + " | ".join(f"{p[0]:.3f}" for p in points) + " |"
            for name, points in curves.items()
        ],
        *served(repo),
        "",
        f"![MAE against cost]({png})",
    ]
    return "\n".join(lines) + "\n"


def served(repo: Path) -> list[str]:
    record = read_calibration(calibration_path(repo, REGRESSOR_ROUTER))
    return [
        "",
        f"The served router `{REGRESSOR_ROUTER}` routes on `{record.scores[0]}`, the energy form "
        f"its calibration found cheapest at parity on validation; its default threshold "
        f"{record.parity_thresholds[0]:.3f} sends {record.parity_teacher_fraction:.1%} to the "
        f"Teacher for a validation MAE of {-record.parity_accuracy:.3f} (Teacher "
        f"{-record.teacher_accuracy:.3f}), {record.stage_flops[1] / record.parity_flops:.2f}x "
        "fewer FLOPs.",
    ]


def main(argv: list[str] | None = None) -> None:
    report_main(
        argv, __doc__, "REGRESSION", REGRESSION_MODELS, Path("evaluation/REGRESSION.md"), evaluate
    )


if __name__ == "__main__":
    main()
