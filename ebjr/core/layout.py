"""Where things live: the project's folders and a model repository's layout, in one place.

A Triton model repository holds one folder per model, ``<model>/config.pbtxt`` and version ``1``
(``<model>/1/model.onnx`` or ``<model>/1/model.py``); a router also keeps its calibration file
next to its ``config.pbtxt``.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REPOSITORY = PROJECT_ROOT / "model_repository"
# every Student ``make models`` trained, ``<name>.onnx``, with its gate ``<name>.gate.onnx``
STUDENT_CANDIDATES = PROJECT_ROOT / "student_candidates"
VERSION = "1"
# the Teacher recipes ``make teacher-study`` compared (``ebjr.tasks.classification.teacher_study``)
TEACHER_STUDY = PROJECT_ROOT / "evaluation" / "teacher_study.json"

# Model names in the default repository and in everything the builders write (each task
# names its own in its package: ``ebjr.tasks.detection``, ``ebjr.tasks.regression``).
ROUTER, STUDENT, TEACHER = "ebjr_router", "student", "teacher"
SPECIALIZED_ROUTER, SPECIALIZED_STUDENT = "ebjr_specialized", "student_specialized"
# A Teacher server's entry for encoded images (the edge client's): decoder, then the Teacher
DECODER, TEACHER_BYTES = "image_decoder", "teacher_bytes"
CALIBRATION_FILE = "calibration.json"


def middle_stage(k: int) -> str:
    """The model name of an N-stage cascade's ``k``-th middle stage (1-based): ``student_2``
    is the second Student, after ``student``."""
    return f"student_{k + 1}"


def config_path(repository: Path, model: str) -> Path:
    """``<repository>/<model>/config.pbtxt``."""
    return Path(repository) / model / "config.pbtxt"


def onnx_path(repository: Path, model: str) -> Path:
    """``<repository>/<model>/1/model.onnx``."""
    return Path(repository) / model / VERSION / "model.onnx"


def calibration_path(repository: Path, router: str = ROUTER) -> Path:
    """``<repository>/<router>/calibration.json``."""
    return Path(repository) / router / CALIBRATION_FILE


GATE_FILE = "gate.onnx"


def gate_file(boundary: int = 0) -> str:
    """The gate file of stage boundary ``boundary``: ``gate.onnx`` after the Student, then
    ``gate_1.onnx``, ... after each middle stage of an N-stage cascade."""
    return GATE_FILE if boundary == 0 else f"gate_{boundary}.onnx"


def gate_path(repository: Path, router: str = ROUTER, boundary: int = 0) -> Path:
    """``<repository>/<router>/gate.onnx``: the router's learned deferral gate, if it has one
    (``gate_file(boundary)`` for a later stage boundary)."""
    return Path(repository) / router / gate_file(boundary)


def candidate_gate(candidate: Path) -> Path:
    """A candidate Student's learned gate: ``<name>.gate.onnx`` beside ``<name>.onnx``."""
    return Path(candidate).with_suffix(".gate.onnx")
