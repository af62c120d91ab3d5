"""Write a Triton model repository for any ONNX Student/Teacher classifier pair.

    python -m ebjr.repository --student S.onnx --teacher T.onnx --out model_repository

Produces ``student/``, ``teacher/`` and ``ebjr_router/``. Input/output names, shapes and dtypes
are read from the ONNX files; a Student and Teacher that disagree on the input or the class
count are refused. ``--backend python`` (default) serves each ONNX file with onnxruntime inside
the Python backend (the only backend in the ``nvidia-pytriton`` server build);
``--backend onnxruntime`` writes ``platform: "onnxruntime_onnx"`` configs for a full Triton
container, and ``--tensorrt`` adds the TensorRT execution accelerator on GPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ebjr.calibration import CALIBRATION_FILE, calibrate_scores
from ebjr.data import load_labelled
from ebjr.onnx_info import ModelInfo, TensorSpec, describe
from ebjr.onnx_runner import OnnxClassifier

ROUTER, STUDENT, TEACHER = "ebjr_router", "student", "teacher"
ONNX_MODEL_PY = "from ebjr.serving.onnx_model import TritonPythonModel  # noqa: F401\n"
ROUTER_MODEL_PY = "from ebjr.serving.router import TritonPythonModel  # noqa: F401\n"


@dataclass(frozen=True)
class RouterSettings:
    """Router knobs written into its ``config.pbtxt`` parameters."""

    default_threshold: str = "calibrated"  # or a number
    score: str = "calibrated"  # or energy, softmax, entropy, energy_of_softmax
    temperature: float = 1.0
    max_batch_size: int = 64
    max_queue_delay_us: int = 200
    on_teacher_error: str = "fallback"  # or "fail"
    teacher_timeout_ms: int = 0  # 0 = no timeout


def _dims(shape: tuple[int, ...]) -> str:
    return ", ".join(str(d) for d in shape)


def _tensor(spec: TensorSpec, name: str | None = None) -> str:
    return (
        f'  {{ name: "{name or spec.name}", data_type: {spec.triton_dtype}, '
        f"dims: [ {_dims(spec.shape)} ] }}"
    )


def _parameters(values: dict[str, object]) -> str:
    rows = [f'  {{ key: "{k}", value: {{ string_value: "{v}" }} }}' for k, v in values.items()]
    return "parameters [\n" + ",\n".join(rows) + "\n]\n"


def onnx_model_config(
    name: str, info: ModelInfo, max_batch_size: int, backend: str, tensorrt: bool
) -> str:
    """``config.pbtxt`` text for one ONNX classifier."""
    if backend == "python":
        head = f'name: "{name}"\nbackend: "python"\n'
        instances = "instance_group [ { count: 1, kind: KIND_CPU } ]\n"
        extra = _parameters({"intra_op_threads": 1})
    else:
        head = f'name: "{name}"\nplatform: "onnxruntime_onnx"\n'
        instances = "instance_group [ { count: 1, kind: KIND_GPU } ]\n"
        extra = (
            "optimization { execution_accelerators { gpu_execution_accelerator: "
            '[ { name: "tensorrt", parameters { key: "precision_mode", value: "FP16" } } ] } }\n'
            if tensorrt
            else ""
        )
    return (
        head
        + f"max_batch_size: {max_batch_size}\n"
        + f"input [\n{_tensor(info.input)}\n]\n"
        + f"output [\n{_tensor(info.output)}\n]\n"
        + "dynamic_batching { max_queue_delay_microseconds: 100 }\n"
        + instances
        + extra
    )


def router_config(student: ModelInfo, teacher: ModelInfo, settings: RouterSettings) -> str:
    """``config.pbtxt`` text for the BLS router: input ``image``, per-row outputs."""
    outputs = [
        _tensor(student.output, "logits"),
        '  { name: "class", data_type: TYPE_INT64, dims: [ 1 ] }',
        '  { name: "score", data_type: TYPE_FP32, dims: [ 1 ] }',
        '  { name: "threshold", data_type: TYPE_FP32, dims: [ 1 ] }',
        '  { name: "route", data_type: TYPE_STRING, dims: [ 1 ] }',
    ]
    params = {
        "student_model": STUDENT,
        "student_input": student.input.name,
        "student_output": student.output.name,
        "teacher_model": TEACHER,
        "teacher_input": teacher.input.name,
        "teacher_output": teacher.output.name,
        "default_threshold": settings.default_threshold,
        "score": settings.score,
        "temperature": settings.temperature,
        "on_teacher_error": settings.on_teacher_error,
        "teacher_timeout_ms": settings.teacher_timeout_ms,
    }
    return (
        f'name: "{ROUTER}"\nbackend: "python"\n'
        + f"max_batch_size: {settings.max_batch_size}\n"
        + f"input [\n{_tensor(student.input, 'image')}\n]\n"
        + "output [\n"
        + ",\n".join(outputs)
        + "\n]\n"
        + f"dynamic_batching {{ max_queue_delay_microseconds: {settings.max_queue_delay_us} }}\n"
        + "instance_group [ { count: 1, kind: KIND_CPU } ]\n"
        + _parameters(params)
    )


def check_pair(student: ModelInfo, teacher: ModelInfo) -> None:
    """Refuse a Student/Teacher pair the router cannot join."""
    if student.input.shape != teacher.input.shape or (
        student.input.triton_dtype != teacher.input.triton_dtype
    ):
        raise ValueError(
            f"Student input {student.input.shape} {student.input.triton_dtype} differs from "
            f"Teacher input {teacher.input.shape} {teacher.input.triton_dtype}"
        )
    if student.num_classes != teacher.num_classes:
        raise ValueError(
            f"Student has {student.num_classes} classes but Teacher has {teacher.num_classes}: "
            "EBJR needs the same label space (eq. 7)"
        )


def write_calibration(
    out: Path,
    images: np.ndarray,
    labels: np.ndarray,
    pinned_score: str | None = None,
    temperature: float = 1.0,
) -> dict:
    """Run the repository's Student and Teacher on labelled validation data (never the test
    split) and write ``ebjr_router/calibration.json``; return its record."""
    models = {name: out / name / "1" / "model.onnx" for name in (STUDENT, TEACHER)}
    logits = {n: OnnxClassifier(path, threads=2).predict(images) for n, path in models.items()}
    record = calibrate_scores(
        logits[STUDENT], logits[TEACHER], labels,
        describe(models[STUDENT]).flops, describe(models[TEACHER]).flops,
        pinned=pinned_score, temperature=temperature,
    )  # fmt: skip
    (out / ROUTER / CALIBRATION_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return record


def build_repository(
    student_onnx: Path,
    teacher_onnx: Path,
    out: Path,
    settings: RouterSettings = RouterSettings(),
    backend: str = "python",
    tensorrt: bool = False,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    pinned_score: str | None = None,
) -> dict | None:
    """Write ``out/{student,teacher,ebjr_router}`` for the given ONNX pair.

    With ``validation`` (images, labels) the router is calibrated on it and the calibration
    record is returned. Without it, ``settings`` must give a numeric default threshold and a
    score name.
    """
    student, teacher = describe(student_onnx), describe(teacher_onnx)
    check_pair(student, teacher)
    if validation is None and "calibrated" in (settings.default_threshold, settings.score):
        raise ValueError(
            "without validation data give a numeric default threshold and a score name "
            "(--default-threshold, --score), or calibrate with --val-data"
        )
    model_batch = max(settings.max_batch_size, 1)
    for name, source, info in ((STUDENT, student_onnx, student), (TEACHER, teacher_onnx, teacher)):
        version = out / name / "1"
        version.mkdir(parents=True, exist_ok=True)
        if Path(source).resolve() != (version / "model.onnx").resolve():
            shutil.copyfile(source, version / "model.onnx")
        if backend == "python":
            (version / "model.py").write_text(ONNX_MODEL_PY)
        else:
            (version / "model.py").unlink(missing_ok=True)
        config = onnx_model_config(name, info, model_batch, backend, tensorrt)
        (out / name / "config.pbtxt").write_text(config)
    (out / ROUTER / "1").mkdir(parents=True, exist_ok=True)
    (out / ROUTER / "1" / "model.py").write_text(ROUTER_MODEL_PY)
    (out / ROUTER / "config.pbtxt").write_text(router_config(student, teacher, settings))
    (out / ROUTER / CALIBRATION_FILE).unlink(missing_ok=True)
    if validation is None:
        return None
    return write_calibration(out, *validation, pinned_score, settings.temperature)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write an EBJR Triton model repository.")
    parser.add_argument("--student", type=Path, required=True, help="Student ONNX file")
    parser.add_argument("--teacher", type=Path, required=True, help="Teacher ONNX file")
    parser.add_argument("--out", type=Path, required=True, help="repository folder to write")
    parser.add_argument("--backend", choices=("python", "onnxruntime"), default="python")
    parser.add_argument("--tensorrt", action="store_true", help="TensorRT accelerator (GPU)")
    parser.add_argument(
        "--val-data",
        help="labelled validation data to calibrate on: fashion-mnist:val, FILE.npz "
        "(images, labels) or IMAGES.idx,LABELS.idx",
    )
    parser.add_argument("--score", help="pin the routing score instead of choosing by measurement")
    parser.add_argument("--temperature", type=float, default=1.0, help="energy temperature T")
    parser.add_argument("--default-threshold", help="numeric default (required without --val-data)")
    parser.add_argument("--max-batch-size", type=int, default=RouterSettings.max_batch_size)
    args = parser.parse_args(argv)
    settings = RouterSettings(
        default_threshold=args.default_threshold or "calibrated",
        score="calibrated" if args.val_data else (args.score or "energy"),
        temperature=args.temperature,
        max_batch_size=args.max_batch_size,
    )
    try:
        validation = load_labelled(args.val_data) if args.val_data else None
        record = build_repository(
            args.student, args.teacher, args.out, settings, args.backend, args.tensorrt,
            validation, args.score,
        )  # fmt: skip
    except ValueError as err:
        parser.exit(2, f"error: {err}\n")
    print(f"Wrote {args.out}/{{{STUDENT},{TEACHER},{ROUTER}}}")
    if record:
        print(
            f"Calibrated on {record['rows']} rows: score {record['score']} "
            f"({record['chosen_by']}), default threshold {record['default_threshold']} "
            f"sends {record['parity_teacher_fraction']:.1%} to the Teacher"
        )


if __name__ == "__main__":
    main()
