"""A router whose stages answer several tensors per input (a detector, an energy-based
regressor): the classification router (``ebjr.serving.router``) with each stage's outputs
packed in one row per input (``ebjr.core.packing``). A subclass names its task's
``RouterSpec`` and score registry (``spec``, ``scores``) and builds the response's columns.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ebjr.build.router_config import ModelRef, RouterConfig
from ebjr.core.onnx_runner import OnnxModel
from ebjr.core.packing import LAYOUT_PARAMETER, RowLayout
from ebjr.serving import router
from ebjr.serving.triton import call_outputs


class PackedRouter(router.TritonPythonModel):
    def _read_config(self, args: dict, parameters: dict[str, str]) -> RouterConfig:
        self.layout = RowLayout.from_json(parameters.get(LAYOUT_PARAMETER, ""))
        config = RouterConfig.from_parameters(
            parameters,
            self.calibration,
            num_classes=0,  # no class labels to map: general EBJR only
            registry=self.scores,
        )
        if config.settings.teacher_url or len(config.stages) != 2:
            raise ValueError(f"{args['model_name']} has a Student and a local Teacher, no more")
        for name, _, outputs in config.stages:
            if tuple(outputs.split(",")) != self.layout.names:
                raise ValueError(f"{name}'s outputs {outputs} are not {self.layout.names}")
        return config

    def _load_model(self, path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
        model = OnnxModel(path, threads)
        return lambda images: self.layout.pack(model(images))

    def _call(self, stage: ModelRef, images: np.ndarray, timeout_s: float) -> np.ndarray:
        model, image, _ = stage
        return self.layout.pack(call_outputs(model, image, self.layout.names, images, timeout_s))
