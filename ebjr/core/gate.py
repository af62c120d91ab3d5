"""The learned deferral gate: a routing score computed by a small network from the Student's
logits, trained (``ebjr.tasks.classification.gate_training``) to spot the rows the Student gets
wrong and the Teacher gets right. Like every routing score, higher means "keep on the Student".

It is an ONNX file next to the router (``<router>/gate.onnx``; ``gate_1.onnx``... after the
middle stages of an N-stage cascade), run with onnxruntime in the
router's process on the logits the router already has. Calibration serves it only where it
measures cheaper at Teacher parity than the closed-form scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ebjr.core.layout import gate_file
from ebjr.core.onnx_runner import OnnxClassifier
from ebjr.core.scores import ScoreFn, get_score

GATE_SCORE = "gate"


class GateScore:
    """A ``ScoreFn``: ``logits: (N, C) float32 -> (N,) float32`` from the gate's ONNX file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.model = OnnxClassifier(self.path, threads=1)

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        return self.model(np.ascontiguousarray(logits, dtype=np.float32))[:, 0]


def routing_score(
    name: str, temperature: float, model_dir: Path | None, boundary: int = 0
) -> ScoreFn:
    """The score called ``name``: the gate in ``model_dir`` (``gate_file(boundary)``), or one
    of ``ebjr.core.scores``."""
    if name == GATE_SCORE:
        file = gate_file(boundary)
        if model_dir is None or not (Path(model_dir) / file).exists():
            raise ValueError(f"score {GATE_SCORE!r} needs a {file} next to the router")
        return GateScore(Path(model_dir) / file)
    return get_score(name, temperature)
