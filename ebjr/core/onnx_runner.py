"""Run an ONNX model with onnxruntime on the CPU. ``predict`` resizes image rows larger than
the model's input to its size, as the router does for a stage at its own resolution
(``ebjr.core.resize``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from ebjr.core.resize import fit_to


class OnnxModel:
    """``model(batch) -> [outputs]`` for a single-input ONNX file, every output in graph order."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # pool threads spin within a run (fast hand-offs between operators) and sleep after it:
        # one spinning between runs takes a core from the rest of the server
        options.add_session_config_entry("session.force_spinning_stop", "1")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.row_shape = tuple(self.session.get_inputs()[0].shape[1:])  # per row; may be symbolic
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: batch})

    def fit(self, images: np.ndarray) -> np.ndarray:
        """``(N, C, H, W)`` images resized to the model's fixed input height and width (as is
        when they have it, or when the model's input is not a fixed image)."""
        if images.ndim == 4 and all(isinstance(d, int) for d in self.row_shape):
            return fit_to(images, self.row_shape)
        return images


class OnnxClassifier(OnnxModel):
    """``model(images) -> logits`` for a single-input, single-output ONNX file."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        super().__init__(path, threads)
        self.output_names = self.output_names[:1]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """``batch: (N, ...)`` in the model's input dtype -> ``(N, C)`` outputs."""
        return super().__call__(batch)[0]

    def predict(self, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Run ``images: (N, ...)`` in chunks of ``batch_size`` and return ``(N, C)`` outputs;
        images of another height and width than the model's are resized first (``fit``)."""
        images = self.fit(images)
        chunks = [self(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        return np.concatenate(chunks)
