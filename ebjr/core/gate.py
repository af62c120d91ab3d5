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
from ebjr.core.scores import SCORES, ScoreContext, ScoreFactory, ScoreFn, closed_form

GATE_SCORE = "gate"


class GateScore:
    """A ``ScoreFn``: ``logits: (N, C) float32 -> (N,) float32`` from the gate's ONNX file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.model = OnnxClassifier(self.path, threads=1)

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        return self.model(np.ascontiguousarray(logits, dtype=np.float32))[:, 0]


def gate_score(name: str, context: ScoreContext) -> GateScore:
    """The ``ScoreFactory`` of the learned gate: ``gate_file(boundary)`` in the router's
    folder."""
    file = gate_file(context.boundary)
    if context.model_dir is None or not (Path(context.model_dir) / file).exists():
        raise ValueError(f"score {GATE_SCORE!r} needs a {file} next to the router")
    return GateScore(Path(context.model_dir) / file)


# a classifier router's scores: the closed-form ones and the learned gate
ROUTING_SCORES: dict[str, ScoreFactory] = {
    **dict.fromkeys(SCORES, closed_form),
    GATE_SCORE: gate_score,
}


def routing_score(
    name: str, context: ScoreContext, registry: dict[str, ScoreFactory] = ROUTING_SCORES
) -> ScoreFn:
    """The score called ``name`` (a key of ``registry``), built for ``context``."""
    if name not in registry:
        known = ", ".join(sorted(registry))
        raise ValueError(f"unknown routing score {name!r}; choose one of {known}")
    return registry[name](name, context)
