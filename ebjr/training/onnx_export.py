"""Export a Torch module to ONNX with a dynamic batch axis, checked against Torch (Torch for
training and export only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ebjr.core.onnx_runner import OnnxModel


def export_checked(
    module: nn.Module, path: Path, example: np.ndarray, outputs: list[str], atol: float = 1e-4
) -> None:
    """Write ``module`` (input ``image``, ``outputs`` named in order) to ``path``, give every
    output fixed per-image dims (``fix_output_dims``), and raise if onnxruntime's answers on
    ``example: (N, ...)`` differ from Torch's beyond ``atol`` (and ``rtol`` 1e-4)."""
    x = torch.from_numpy(example)
    torch.onnx.export(
        module,
        (x,),
        str(path),
        input_names=["image"],
        output_names=outputs,
        dynamic_axes={name: {0: "batch"} for name in ["image", *outputs]},
        opset_version=17,
        dynamo=False,
    )
    with torch.no_grad():
        expected = module(x)
    expected = [t.numpy() for t in (expected if isinstance(expected, tuple) else (expected,))]
    fix_output_dims(path, [e.shape[1:] for e in expected])
    for name, e, g in zip(outputs, expected, OnnxModel(path)(example), strict=True):
        if not np.allclose(g, e, atol=atol, rtol=1e-4):
            raise RuntimeError(f"{path}: ONNX {name} differs from Torch by {np.abs(g - e).max()}")


def fix_output_dims(path: Path, shapes: list[tuple[int, ...]]) -> None:
    """Write each output's per-image ``shapes`` into the ONNX file (the exporter leaves some
    symbolic; a Triton config needs them fixed). The batch axis stays dynamic."""
    model = onnx.load(str(path))
    for output, shape in zip(model.graph.output, shapes, strict=True):
        dims = output.type.tensor_type.shape.dim
        for dim, size in zip(dims[1:], shape, strict=True):
            dim.Clear()
            dim.dim_value = size
    onnx.save(model, str(path))
