"""Where things live: the project's folders and a model repository's layout, in one place.

A Triton model repository holds one folder per model, ``<model>/config.pbtxt`` and version ``1``
(``<model>/1/model.onnx`` or ``<model>/1/model.py``); a router also keeps its calibration file
next to its ``config.pbtxt``.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REPOSITORY = PROJECT_ROOT / "model_repository"
VERSION = "1"

# Model names in the default repository and in everything the builder writes.
ROUTER, STUDENT, TEACHER = "ebjr_router", "student", "teacher"
SPECIALIZED_ROUTER, SPECIALIZED_STUDENT = "ebjr_specialized", "student_specialized"
CALIBRATION_FILE = "calibration.json"


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


def gate_path(repository: Path, router: str = ROUTER) -> Path:
    """``<repository>/<router>/gate.onnx``: the router's learned deferral gate, if it has one."""
    return Path(repository) / router / GATE_FILE
