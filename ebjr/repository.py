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
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ebjr import specialized as spec
from ebjr.calibration import CALIBRATION_FILE, calibrate_scores
from ebjr.data import load_labelled
from ebjr.onnx_info import ModelInfo, TensorSpec, describe
from ebjr.onnx_runner import OnnxClassifier

ROUTER, STUDENT, TEACHER = "ebjr_router", "student", "teacher"
SPECIALIZED_ROUTER, SPECIALIZED_STUDENT = "ebjr_specialized", "student_specialized"
ONNX_MODEL_PY = "from ebjr.serving.onnx_model import TritonPythonModel  # noqa: F401\n"
ROUTER_MODEL_PY = "from ebjr.serving.router import TritonPythonModel  # noqa: F401\n"


@dataclass(frozen=True)
class RouterSettings:
    """Router knobs written into its ``config.pbtxt`` parameters."""

    default_threshold: str = "calibrated"  # or a number
    score: str = "calibrated"  # or energy, softmax, entropy, energy_of_softmax
    temperature: float = 1.0
    max_batch_size: int = 64
    max_queue_delay_us: int = 0  # batch what is already queued; never wait for more
    instances: int = 1
    # "in_process": the router runs a Python-backend Student's ONNX itself (one IPC hop less);
    # "bls": call the Student model over BLS (always so for the onnxruntime backend).
    student_execution: str = "in_process"
    metrics: str = "on"  # the router's custom Prometheus metrics ("off" to skip their cost)
    on_teacher_error: str = "fallback"  # or "fail"
    teacher_timeout_ms: int = 0  # 0 = no timeout


@dataclass(frozen=True)
class Specialized:
    """A specialized Student (paper section 2.4): ONNX with ``len(popular) + 1`` outputs, the
    last one "other"; ``popular[i]`` is the Teacher label of its output ``i``. Calibrated on a
    validation stream where ``share`` of the rows come from the popular classes."""

    onnx: Path
    popular: tuple[int, ...]
    share: float = 0.75

    @property
    def other_index(self) -> int:
        return len(self.popular)


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
        + "dynamic_batching { max_queue_delay_microseconds: 0 }\n"
        + instances
        + extra
    )


def router_config(
    student: ModelInfo,
    teacher: ModelInfo,
    settings: RouterSettings,
    specialized: Specialized | None = None,
) -> str:
    """``config.pbtxt`` text for the BLS router: input ``image``, per-row outputs in the
    Teacher's label space."""
    outputs = [
        _tensor(teacher.output, "logits"),
        '  { name: "class", data_type: TYPE_INT64, dims: [ 1 ] }',
        '  { name: "score", data_type: TYPE_FP32, dims: [ 1 ] }',
        '  { name: "threshold", data_type: TYPE_FP32, dims: [ 1 ] }',
        '  { name: "route", data_type: TYPE_STRING, dims: [ 1 ] }',
    ]
    params = {
        "student_model": SPECIALIZED_STUDENT if specialized else STUDENT,
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
        "student_execution": settings.student_execution,
        "metrics": settings.metrics,
    }
    if specialized is not None:
        params["mode"] = "specialized"
        params["student_classes"] = ",".join(str(c) for c in specialized.popular)
        params["other_index"] = specialized.other_index
    name = SPECIALIZED_ROUTER if specialized else ROUTER
    return (
        f'name: "{name}"\nbackend: "python"\n'
        + f"max_batch_size: {settings.max_batch_size}\n"
        + f"input [\n{_tensor(student.input, 'image')}\n]\n"
        + "output [\n"
        + ",\n".join(outputs)
        + "\n]\n"
        + f"dynamic_batching {{ max_queue_delay_microseconds: {settings.max_queue_delay_us} }}\n"
        + f"instance_group [ {{ count: {settings.instances}, kind: KIND_CPU }} ]\n"
        + _parameters(params)
    )


def edit_config(text: str, parameters: dict[str, object] | None = None, **fields: object) -> str:
    """Change a generated ``config.pbtxt``: ``parameters`` values by key, and top-level
    ``name``, ``max_queue_delay_microseconds`` or instance ``count`` given as keywords."""
    for key, value in (parameters or {}).items():
        start = text.index(f'key: "{key}"')
        old = text[start : text.index("}", start) + 1]
        text = text.replace(old, f'key: "{key}", value: {{ string_value: "{value}" }}')
    patterns = {
        "name": (r'^name: "[^"]*"', 'name: "{}"'),
        "max_queue_delay_microseconds": (r"max_queue_delay_microseconds: \d+",
                                         "max_queue_delay_microseconds: {}"),
        "count": (r"count: \d+", "count: {}"),
    }  # fmt: skip
    for field, value in fields.items():
        pattern, replacement = patterns[field]
        text = re.sub(pattern, replacement.format(value), text, count=1, flags=re.MULTILINE)
    return text


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


def check_specialized(student: ModelInfo, teacher: ModelInfo, spec: Specialized) -> None:
    """Refuse a specialized Student whose outputs do not match ``spec.popular`` + "other"."""
    if student.input.shape != teacher.input.shape:
        raise ValueError(f"specialized Student input {student.input.shape} differs from Teacher's")
    if student.num_classes != len(spec.popular) + 1:
        raise ValueError(
            f"specialized Student has {student.num_classes} outputs; expected "
            f"{len(spec.popular) + 1} ({len(spec.popular)} popular classes + 'other')"
        )
    if len(set(spec.popular)) != len(spec.popular) or not all(
        0 <= c < teacher.num_classes for c in spec.popular
    ):
        raise ValueError(f"popular classes {spec.popular} must be distinct Teacher labels")


def write_calibration(
    out: Path,
    images: np.ndarray,
    labels: np.ndarray,
    pinned_score: str | None = None,
    temperature: float = 1.0,
    specialized: Specialized | None = None,
) -> dict:
    """Run the repository's Student and Teacher on labelled validation data (never the test
    split) and write the router's ``calibration.json``; return its record. The specialized
    router is calibrated on a stream with ``specialized.share`` popular rows."""
    student_name = SPECIALIZED_STUDENT if specialized else STUDENT
    router = SPECIALIZED_ROUTER if specialized else ROUTER
    if specialized is not None:
        rows = spec.skewed_stream(labels, specialized.popular, specialized.share, len(labels))
        images, labels = images[rows], labels[rows]
    models = {name: out / name / "1" / "model.onnx" for name in (student_name, TEACHER)}
    logits = {n: OnnxClassifier(path, threads=2).predict(images) for n, path in models.items()}
    record = calibrate_scores(
        logits[student_name], logits[TEACHER], labels,
        describe(models[student_name]).flops, describe(models[TEACHER]).flops,
        pinned=pinned_score, temperature=temperature,
        specialized=(np.array(specialized.popular), specialized.other_index)
        if specialized else None,
    )  # fmt: skip
    if specialized is not None:
        record["popular"], record["share"] = list(specialized.popular), specialized.share
    (out / router / CALIBRATION_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return record


def _write_onnx_model(
    out: Path, name: str, source: Path, info: ModelInfo, batch: int, backend: str, tensorrt: bool
) -> None:
    version = out / name / "1"
    version.mkdir(parents=True, exist_ok=True)
    if Path(source).resolve() != (version / "model.onnx").resolve():
        shutil.copyfile(source, version / "model.onnx")
    if backend == "python":
        (version / "model.py").write_text(ONNX_MODEL_PY)
    else:
        (version / "model.py").unlink(missing_ok=True)
    (out / name / "config.pbtxt").write_text(
        onnx_model_config(name, info, batch, backend, tensorrt)
    )


def _write_router(out: Path, config: str, name: str) -> None:
    (out / name / "1").mkdir(parents=True, exist_ok=True)
    (out / name / "1" / "model.py").write_text(ROUTER_MODEL_PY)
    (out / name / "config.pbtxt").write_text(config)
    (out / name / CALIBRATION_FILE).unlink(missing_ok=True)


def build_repository(
    student_onnx: Path,
    teacher_onnx: Path,
    out: Path,
    settings: RouterSettings = RouterSettings(),
    backend: str = "python",
    tensorrt: bool = False,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    pinned_score: str | None = None,
    specialized: Specialized | None = None,
) -> dict | None:
    """Write ``out/{student,teacher,ebjr_router}`` for the given ONNX pair, and with
    ``specialized`` also ``out/{student_specialized,ebjr_specialized}``.

    With ``validation`` (images, labels) the router is calibrated on it and the calibration
    record is returned. Without it, ``settings`` must give a numeric default threshold and a
    score name.
    """
    student, teacher = describe(student_onnx), describe(teacher_onnx)
    check_pair(student, teacher)
    if backend != "python":
        settings = replace(settings, student_execution="bls")
    if validation is None and "calibrated" in (settings.default_threshold, settings.score):
        raise ValueError(
            "without validation data give a numeric default threshold and a score name "
            "(--default-threshold, --score), or calibrate with --val-data"
        )
    batch = max(settings.max_batch_size, 1)
    _write_onnx_model(out, STUDENT, student_onnx, student, batch, backend, tensorrt)
    _write_onnx_model(out, TEACHER, teacher_onnx, teacher, batch, backend, tensorrt)
    _write_router(out, router_config(student, teacher, settings), ROUTER)
    if specialized is not None:
        special = describe(specialized.onnx)
        check_specialized(special, teacher, specialized)
        _write_onnx_model(
            out, SPECIALIZED_STUDENT, specialized.onnx, special, batch, backend, tensorrt
        )
        config = router_config(special, teacher, settings, specialized)
        _write_router(out, config, SPECIALIZED_ROUTER)
    if validation is None:
        return None
    record = write_calibration(out, *validation, pinned_score, settings.temperature)
    if specialized is not None:
        write_calibration(out, *validation, pinned_score, settings.temperature, specialized)
    return record


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
    parser.add_argument(
        "--specialized-student", type=Path, help="also serve a top-C + 'other' Student"
    )
    parser.add_argument("--popular", help="its classes as Teacher labels, e.g. 0,1,2")
    parser.add_argument("--share", type=float, default=0.75,
                        help="popular share of the stream it is calibrated on")  # fmt: skip
    args = parser.parse_args(argv)
    if bool(args.specialized_student) != bool(args.popular):
        parser.error("--specialized-student and --popular go together")
    specialized = (
        Specialized(args.specialized_student, tuple(int(c) for c in args.popular.split(",")),
                    args.share)
        if args.specialized_student else None
    )  # fmt: skip
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
            validation, args.score, specialized,
        )  # fmt: skip
    except ValueError as err:
        parser.exit(2, f"error: {err}\n")
    names = [STUDENT, TEACHER, ROUTER] + (
        [SPECIALIZED_STUDENT, SPECIALIZED_ROUTER] if specialized else []
    )
    print(f"Wrote {args.out}/{{{','.join(names)}}}")
    if record:
        print(
            f"Calibrated on {record['rows']} rows: score {record['score']} "
            f"({record['chosen_by']}), default threshold {record['default_threshold']} "
            f"sends {record['parity_teacher_fraction']:.1%} to the Teacher"
        )


if __name__ == "__main__":
    main()
