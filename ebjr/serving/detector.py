"""The EBJR detector router (paper eqs. 12-14): the classification router
(``ebjr.serving.router``) with a detector's outputs in place of logits.

The Student detector runs once per dynamic batch; each image's score is the negative free
energy of the boxes the Student keeps (``ebjr.detection_routing``); the images below their
request's threshold go to the Teacher detector in one BLS call, and every image gets the
answering detector's boxes, classes, box scores and valid mask, plus ``score``, ``threshold``
and ``route``. The knobs are the classification router's: ``threshold``, ``teacher_fraction``
and ``min_accuracy`` (in COCO mAP@[.5:.95] on the calibration scenes). The Teacher is local
(``teacher_url`` is refused).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ebjr.detection_routing import RowLayout, detection_score
from ebjr.onnx_runner import OnnxModel
from ebjr.router_config import ModelRef, RouterConfig
from ebjr.routing import Routed
from ebjr.serving import router
from ebjr.serving.triton import call_outputs


class TritonPythonModel(router.TritonPythonModel):
    def _read_config(self, args: dict, parameters: dict[str, str]) -> RouterConfig:
        self.layout = RowLayout.from_json(parameters.get("detection_layout", ""))
        bin_width = float(parameters.get("bin_width", "1"))
        config = RouterConfig.from_parameters(
            parameters,
            self.calibration,
            num_classes=self.layout.shape("class_logits")[-1],
            score_for=lambda name: detection_score(name, self.layout, bin_width),
        )
        if config.teacher_url or len(config.stages) != 2:
            raise ValueError("a detector router has a Student and a local Teacher, nothing else")
        for name, _, outputs in config.stages:
            if tuple(outputs.split(",")) != self.layout.names:
                raise ValueError(f"{name}'s outputs {outputs} are not {self.layout.names}")
        return config

    def _load_student(self, path: Path) -> Callable[[np.ndarray], np.ndarray]:
        model = OnnxModel(path)
        return lambda images: self.layout.pack(model(images))

    def _call(self, stage: ModelRef, images: np.ndarray, timeout_s: float) -> np.ndarray:
        model, image, _ = stage
        return self.layout.pack(call_outputs(model, image, self.layout.names, images, timeout_s))

    def _columns(self, routed: Routed, thresholds: np.ndarray) -> dict[str, np.ndarray]:
        found = self.layout.unpack(routed.logits)
        return {
            "boxes": found["boxes"],
            "classes": found["class_logits"].argmax(axis=-1).astype(np.int64),
            "scores": found["scores"],
            "valid": found["valid"],
            "score": routed.scores[:, None],
            "threshold": thresholds,
            "route": router.ROUTE_BYTES[routed.route][:, None],
        }
