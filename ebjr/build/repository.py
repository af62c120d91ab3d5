"""The writer every task's repository builder shares: an ONNX model's folder, a router's
folder (its ``config.pbtxt`` and one-line ``model.py``), and its calibration, written next to it
and published into its parameters."""

from __future__ import annotations

import argparse
import logging
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ebjr.build import model_config as mc
from ebjr.build.deadline import measured_deadline_ms
from ebjr.build.model_config import BACKENDS, ModelServing
from ebjr.build.router_config import MEASURED, RouterSettings, published_parameters
from ebjr.core.calibration import Calibration, write_calibration
from ebjr.core.layout import VERSION, calibration_path, config_path, onnx_path
from ebjr.core.router_spec import RouterSpec
from ebjr.core.tensors import GraphInfo, ModelInfo

log = logging.getLogger(__name__)


def model_py_source(serving_module: str) -> str:
    """A Python-backend model's whole ``1/model.py``: the ``TritonPythonModel`` of
    ``serving_module`` (``ebjr.serving.router``, ``.detector``, ...), where its logic lives."""
    return f"from {serving_module} import TritonPythonModel  # noqa: F401\n"


def write_model_py(out: Path, name: str, serving_module: str) -> None:
    """``out/<name>/1/model.py``: the ``TritonPythonModel`` of ``serving_module``."""
    model_py = out / name / VERSION / "model.py"
    model_py.parent.mkdir(parents=True, exist_ok=True)
    model_py.write_text(model_py_source(serving_module))


def publish(out: Path, router: str, record: Calibration) -> None:
    """Write ``record`` as the router's ``calibration.json``, and its score and operating
    points into the router's ``config.pbtxt`` parameters, where clients read them
    (``published_parameters``)."""
    write_calibration(calibration_path(out, router), record)
    path = config_path(out, router)
    mc.write(path, mc.edited(mc.read(path), published_parameters(record)))


def router_settings(
    settings: RouterSettings | None,
    serving: ModelServing,
    teacher_onnx: Path,
    teacher: ModelInfo | GraphInfo,
) -> RouterSettings:
    """The router settings a builder writes: ``settings`` (default ``RouterSettings()``), every
    stage over BLS on GPU (the router's process has no GPU session), and a Teacher deadline
    measured on ``teacher_onnx`` where it is left ``MEASURED`` (``measured_deadline_ms``)."""
    settings = settings or RouterSettings()
    if serving.device == "gpu":
        settings = replace(settings, student_execution="bls", teacher_execution="bls")
    if settings.teacher_timeout_ms == MEASURED:
        batch = settings.stage_batch_size
        deadline = measured_deadline_ms(teacher_onnx, teacher, batch)
        settings = replace(settings, teacher_timeout_ms=deadline)
        log.info("Teacher deadline %d ms, measured on %s (%d rows)", deadline, teacher_onnx, batch)
    return settings


def write_onnx_model(
    out: Path,
    name: str,
    source: Path,
    info: ModelInfo | GraphInfo,
    batch: int,
    serving: ModelServing,
) -> None:
    """``out/<name>/``: the ONNX file (copied from ``source``) and its config, served as
    ``serving`` says (with a ``1/model.py`` for the Python backend)."""
    target = onnx_path(out, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    if Path(source).resolve() != target.resolve():
        shutil.copyfile(source, target)
    model_py = target.with_name("model.py")
    if serving.backend == "python":
        model_py.write_text(model_py_source("ebjr.serving.onnx_model"))
    else:
        model_py.unlink(missing_ok=True)
    mc.write(config_path(out, name), mc.onnx_model(name, info, batch, serving))


def write_router(out: Path, config: mc.ModelConfig, spec: RouterSpec) -> None:
    """The router's folder (its ``1/model.py`` the ``TritonPythonModel`` of ``spec``'s
    serving module), without the calibration and gates of an earlier build."""
    declared = tuple(o.name for o in config.output)
    if declared != spec.outputs:
        raise ValueError(f"{config.name}'s outputs {declared} are not its spec's {spec.outputs}")
    write_model_py(out, config.name, spec.serving_module)
    mc.write(config_path(out, config.name), config)
    calibration_path(out, config.name).unlink(missing_ok=True)
    for gate in (out / config.name).glob("gate*.onnx"):
        gate.unlink()


def add_pair_arguments(
    parser: argparse.ArgumentParser, models: Path, student: str, teacher: str
) -> None:
    """The arguments a task's builder takes for its pair: ``--student`` and ``--teacher`` (ONNX
    files, by default ``models/<name>.onnx``), the ``--out`` repository, the ``--backend`` and
    the Teacher deadline."""
    for flag, name in (("--student", student), ("--teacher", teacher)):
        parser.add_argument(flag, type=Path, default=models / f"{name}.onnx")
    parser.add_argument("--out", type=Path, required=True, help="repository folder to add to")
    parser.add_argument("--backend", choices=BACKENDS, default=ModelServing.backend)
    add_deadline_argument(parser)


def add_deadline_argument(parser: argparse.ArgumentParser) -> None:
    """``--teacher-timeout-ms``: the router's deadline for its later stages (default measured,
    ``router_settings``)."""
    parser.add_argument(
        "--teacher-timeout-ms",
        type=int,
        default=MEASURED,
        help="how long the router waits for the Teacher, in ms (0: no deadline; default: 4x "
        "its slowest call on a full batch, measured here, at least 100 ms)",
    )


def run_builder(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    build: Callable[[argparse.Namespace], Calibration | None],
    models: tuple[str, ...],
) -> Calibration | None:
    """A task builder's command line: parse ``argv``, ``build(args)``, and say which
    ``models`` it wrote to ``--out``; a ``ValueError`` is one ``error:`` line and exit code 2.
    Returns the calibration ``build`` made (None: uncalibrated)."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        record = build(args)
    except ValueError as err:
        parser.exit(2, f"error: {err}\n")
    print(f"Wrote {args.out}/{{{','.join(models)}}}")
    return record
