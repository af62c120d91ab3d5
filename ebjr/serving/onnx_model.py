"""Serve one ONNX model (``1/model.onnx``: a classifier, or a detector with several outputs)
with onnxruntime inside the Python backend (``--backend python``, for a host that cannot build
the native backend).

All requests Triton hands to ``execute`` are run as one batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from ebjr.core.layout import onnx_path
from ebjr.core.onnx_runner import OnnxModel
from ebjr.core.routing import request_slices
from ebjr.serving.triton import error_response, model_parameters


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        threads = int(model_parameters(args).get("intra_op_threads", "1"))
        path = onnx_path(Path(args["model_repository"]).parent, args["model_name"])
        self.model = OnnxModel(path, threads=threads)
        self.input_name = config["input"][0]["name"]

    def execute(self, requests: list) -> list:
        batches = [
            pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests
        ]
        try:
            outputs = self.model(np.concatenate(batches))
        except Exception as err:  # one failed run fails this batch only, never the server
            return [error_response(f"onnxruntime failed: {err}") for _ in requests]
        rows = request_slices([len(b) for b in batches], len(outputs[0]))
        named = list(zip(self.model.output_names, outputs, strict=True))
        return [
            pb_utils.InferenceResponse([pb_utils.Tensor(name, out[r]) for name, out in named])
            for r in rows
        ]
