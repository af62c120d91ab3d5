"""Add the EBJR regressor router to a Triton model repository, and calibrate it.

    python -m ebjr.tasks.regression.repository --out model_repository     # part of `make models`

Writes ``regressor_student/``, ``regressor_teacher/`` (Triton's native ONNX Runtime backend)
and ``ebjr_regressor/``, calibrated on the rotated validation images
(``ebjr.tasks.regression.data``): each model answers in its prediction form with the lowest
validation error, and the energy form (binned or sampled) that reaches the Teacher's error (within
the ``negative_mae`` metric's tolerance) at the fewest FLOPs is the routing score; that point is
the default threshold. The other models of ``--out`` are left alone. Regressors must share the
outputs of ``ebjr.tasks.regression.models.RegressorExport``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from ebjr.build import model_config as mc
from ebjr.build import repository as builder
from ebjr.build.model_config import ModelServing
from ebjr.build.onnx_info import describe_graph
from ebjr.build.router_config import RouterSettings
from ebjr.core.calibration import (
    Calibration,
    Frontier,
    Metric,
    cheapest_score,
    sweep,
)
from ebjr.core.cascade_calibration import pareto
from ebjr.core.onnx_runner import OnnxModel
from ebjr.core.packing import joint_layout, stage_parameters
from ebjr.tasks.regression import (
    REGRESSION_MODELS,
    REGRESSOR_ROUTER,
    REGRESSOR_STUDENT,
    REGRESSOR_TEACHER,
    ROUTER_SPEC,
)
from ebjr.tasks.regression.data import Rotated, make_rotated
from ebjr.tasks.regression.scores import PREDICTIONS, SCORES, EnergyHead, predict, score

log = logging.getLogger(__name__)
# minus the mean absolute error in degrees; "at the Teacher's error": within 2% of its MAE
METRIC = Metric("negative_mae", "max_error", tolerance=0.02, relative=True, error=True)


def outputs(path: Path, images: np.ndarray, batch_size: int = 1000) -> dict[str, np.ndarray]:
    """The regressor at ``path``'s outputs on ``images: (N, 1, 28, 28)``, by name."""
    model = OnnxModel(path, threads=2)
    chunks = [model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return {n: np.concatenate([c[k] for c in chunks]) for k, n in enumerate(model.output_names)}


def errors(found: dict, angles: np.ndarray, prediction: str, head: EnergyHead) -> np.ndarray:
    """(N,) absolute error of ``prediction`` against the true ``angles``."""
    return np.abs(predict(prediction, found, head) - angles)


def frontier(scores: np.ndarray, student_error, teacher_error, flops) -> Frontier:
    """The cheapest-for-their-error thresholds of ``scores``; ``accuracy`` is minus the MAE."""
    s = sweep(scores, -student_error, -teacher_error, *flops)
    return pareto(s)


def calibrate_regressor(
    student: dict,
    teacher: dict,
    angles: np.ndarray,
    head: EnergyHead,
    flops: tuple[float, float],
    stages: tuple[str, str],
    split: str = "val",
) -> tuple[Calibration, tuple[str, str]]:
    """The regressor router's calibration on labelled ``split`` (never ``test``), and the
    prediction form each stage answers with (the one with its lowest validation MAE)."""
    if split == "test":
        raise ValueError("calibration must not use the test split")
    prediction = tuple(
        min(PREDICTIONS, key=lambda p, f=f: errors(f, angles, p, head).mean())
        for f in (student, teacher)
    )
    err_s, err_t = (
        errors(f, angles, p, head) for f, p in zip((student, teacher), prediction, strict=True)
    )
    fronts = {name: frontier(score(name, student, head), err_s, err_t, flops) for name in SCORES}
    record = cheapest_score(
        fronts,
        METRIC.parity_target(-err_t.mean()),
        split,
        len(angles),
        stages,
        (-err_s.mean(), -err_t.mean()),
        flops,
        metric=METRIC,
    )
    for name, point in record.evidence.items():
        log.info(
            "%s: MAE %.3f at %.2fx fewer FLOPs",
            name,
            -point["parity_accuracy"],
            point["fewer_flops_than_teacher_at_parity"],
        )
    return record, prediction


def build_regressor_router(
    student_onnx: Path,
    teacher_onnx: Path,
    out: Path,
    validation: Rotated,
    settings: RouterSettings | None = None,
    serving: ModelServing | None = None,
    head: EnergyHead | None = None,
) -> Calibration:
    """Write ``out/{regressor_student,regressor_teacher,ebjr_regressor}``, calibrated on
    ``validation``; return the calibration record."""
    serving, head = serving or ModelServing(), head or EnergyHead()
    student, teacher = describe_graph(student_onnx), describe_graph(teacher_onnx)
    settings = builder.router_settings(settings, serving, teacher_onnx, teacher)
    layout = joint_layout(student, teacher)
    found = {
        name: outputs(p, validation.images)
        for name, p in (("s", student_onnx), ("t", teacher_onnx))
    }
    record, prediction = calibrate_regressor(
        found["s"],
        found["t"],
        validation.angles,
        head,
        (student.flops, teacher.flops),
        (REGRESSOR_STUDENT, REGRESSOR_TEACHER),
    )
    batch = settings.stage_batch_size
    builder.write_onnx_model(out, REGRESSOR_STUDENT, student_onnx, student, batch, serving)
    builder.write_onnx_model(out, REGRESSOR_TEACHER, teacher_onnx, teacher, batch, serving)
    values = {
        **stage_parameters(REGRESSOR_STUDENT, REGRESSOR_TEACHER, student.input.name, layout),
        "prediction": ",".join(prediction),
        **head.parameters(),
        **settings.parameters(),
    }
    config = mc.python_router(
        REGRESSOR_ROUTER,
        student.input,
        ROUTER_SPEC.tensors({"prediction": (1,)}),
        settings.admission_window,
        settings.instances,
        settings.max_queue_delay_us,
        values,
    )
    builder.write_router(out, config, ROUTER_SPEC)
    builder.publish(out, REGRESSOR_ROUTER, record)
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    builder.add_pair_arguments(parser, REGRESSION_MODELS, REGRESSOR_STUDENT, REGRESSOR_TEACHER)

    def build(args: argparse.Namespace) -> Calibration:
        return build_regressor_router(
            args.student,
            args.teacher,
            args.out,
            make_rotated("val"),
            RouterSettings(teacher_timeout_ms=args.teacher_timeout_ms),
            ModelServing(args.backend),
        )

    record = builder.run_builder(
        parser, argv, build, (REGRESSOR_STUDENT, REGRESSOR_TEACHER, REGRESSOR_ROUTER)
    )
    print(
        f"Calibrated on {record.rows} validation images: score {record.scores[0]}, default "
        f"threshold {record.parity_thresholds[0]:.4g} sends {record.parity_teacher_fraction:.1%} "
        f"to the Teacher for MAE {-record.parity_accuracy:.3f} "
        f"(Teacher {-record.teacher_accuracy:.3f})"
    )


if __name__ == "__main__":
    main()
