"""Add the EBJR detector router to a Triton model repository, for any pair of detectors with
the outputs of ``ebjr.tasks.detection.models.DetectorExport``.

    python -m ebjr.tasks.detection.repository --student S.onnx --teacher T.onnx \
        --out model_repository

Writes ``detector_student/``, ``detector_teacher/`` (Triton's native ONNX Runtime backend, or
onnxruntime in the Python backend with ``--backend python``) and ``ebjr_detector/``, calibrated
on the validation scenes (``ebjr.tasks.detection.data``) with COCO mAP; the other models of
``--out`` are left alone. A Student and Teacher whose input or outputs differ are refused; a
detector without ``box_logits`` (a plain box head) is routed on the classification term alone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ebjr.build import model_config as mc
from ebjr.build import repository as builder
from ebjr.build.model_config import DEVICES, ModelServing
from ebjr.build.onnx_info import describe_graph
from ebjr.build.router_config import RouterSettings
from ebjr.core.calibration import Calibration
from ebjr.core.packing import RowLayout, joint_layout, stage_parameters
from ebjr.core.tensors import GraphInfo
from ebjr.tasks.detection import (
    DETECTION_MODELS,
    DETECTOR_ROUTER,
    DETECTOR_STUDENT,
    DETECTOR_TEACHER,
    ROUTER_SPEC,
)
from ebjr.tasks.detection.calibration import DEFAULT_SHARE, calibrate_detector
from ebjr.tasks.detection.data import Scenes, make_scenes
from ebjr.tasks.detection.metrics import detections
from ebjr.tasks.detection.models import BIN_WIDTH
from ebjr.tasks.detection.scores import detector_layout

VAL_SCENES = 1000


def check_detectors(student: GraphInfo, teacher: GraphInfo) -> RowLayout:
    """The layout both detectors answer in; ``ValueError`` if the router cannot join them."""
    return detector_layout(joint_layout(student, teacher).specs)


def detector_router_config(
    image: GraphInfo, layout: RowLayout, settings: RouterSettings, bin_width: float
) -> mc.ModelConfig:
    """The detector router's config: the detectors it calls, their packed layout, the box
    head's bin width and ``settings`` as parameters."""
    values = {
        **stage_parameters(DETECTOR_STUDENT, DETECTOR_TEACHER, image.input.name, layout),
        "bin_width": repr(float(bin_width)),
        **settings.parameters(),
    }
    top_k = layout.shape("boxes")[0]
    outputs = ROUTER_SPEC.tensors(
        {"boxes": (top_k, 4), "classes": (top_k,), "scores": (top_k,), "valid": (top_k,)}
    )
    return mc.python_router(
        DETECTOR_ROUTER,
        image.input,
        outputs,
        settings.admission_window,
        settings.instances,
        settings.max_queue_delay_us,
        values,
    )


def build_detector_router(
    student_onnx: Path,
    teacher_onnx: Path,
    out: Path,
    validation: Scenes | None,
    settings: RouterSettings | None = None,
    serving: ModelServing | None = None,
    bin_width: float = BIN_WIDTH,
    share: float = DEFAULT_SHARE,
) -> Calibration | None:
    """Write ``out/{detector_student,detector_teacher,ebjr_detector}``; with ``validation``
    scenes, calibrate the router on them (its default: the cheapest point reaching ``share`` of
    the Teacher's mAP) and return the record. Without, ``settings`` must give a numeric
    default threshold and a score name."""
    serving = serving or ModelServing()
    student, teacher = describe_graph(student_onnx), describe_graph(teacher_onnx)
    layout = check_detectors(student, teacher)
    settings = builder.router_settings(settings, serving, teacher_onnx, teacher)
    if validation is None and "calibrated" in (settings.default_threshold, settings.score):
        raise ValueError("without validation scenes give a numeric default threshold and a score")
    batch = settings.stage_batch_size
    builder.write_onnx_model(out, DETECTOR_STUDENT, student_onnx, student, batch, serving)
    builder.write_onnx_model(out, DETECTOR_TEACHER, teacher_onnx, teacher, batch, serving)
    builder.write_router(
        out, detector_router_config(student, layout, settings, bin_width), ROUTER_SPEC
    )
    if validation is None:
        return None
    record = calibrate_detector(
        validation,
        detections(student_onnx, validation.images),
        detections(teacher_onnx, validation.images),
        layout,
        bin_width,
        (student.flops, teacher.flops),
        (DETECTOR_STUDENT, DETECTOR_TEACHER),
        split="val",
        share=share,
    )
    builder.publish(out, DETECTOR_ROUTER, record)
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    builder.add_pair_arguments(parser, DETECTION_MODELS, DETECTOR_STUDENT, DETECTOR_TEACHER)
    parser.add_argument("--device", choices=DEVICES, default=ModelServing.device)
    parser.add_argument(
        "--val-scenes",
        type=int,
        default=VAL_SCENES,
        help="validation scenes to calibrate on (0: no calibration; then give --score and "
        "--default-threshold)",
    )
    parser.add_argument("--bin-width", type=float, default=BIN_WIDTH, help="box head bin width")
    parser.add_argument(
        "--share",
        type=float,
        default=DEFAULT_SHARE,
        help="the default threshold reaches this share of the Teacher's validation mAP",
    )
    parser.add_argument("--score", default="calibrated", help="pin a detection score")
    parser.add_argument("--default-threshold", default="calibrated")

    def build(args: argparse.Namespace) -> Calibration | None:
        return build_detector_router(
            args.student,
            args.teacher,
            args.out,
            make_scenes("val", args.val_scenes) if args.val_scenes else None,
            RouterSettings(
                default_threshold=args.default_threshold,
                score=args.score,
                teacher_timeout_ms=args.teacher_timeout_ms,
                # a scene is 36 KB: a wider window would let a valid request's body pass this
                # Triton's 4 MB HTTP crash (docs/operations.md)
                admission_window=RouterSettings.stage_batch_size,
            ),
            ModelServing(args.backend, args.device),
            args.bin_width,
            args.share,
        )

    record = builder.run_builder(
        parser, argv, build, (DETECTOR_STUDENT, DETECTOR_TEACHER, DETECTOR_ROUTER)
    )
    if record:
        print(
            f"Calibrated on {record.rows} validation scenes: score {record.scores[0]}, default "
            f"threshold {record.parity_thresholds[0]:.4g} sends "
            f"{record.parity_teacher_fraction:.1%} to the Teacher for "
            f"{record.parity_accuracy:.3f} mAP (Teacher {record.teacher_accuracy:.3f})"
        )


if __name__ == "__main__":
    main()
