"""What the routers and the repository builders need to know about an ONNX model.

``describe`` reads a classifier's single input and output (names, per-row shapes, dtypes) and
counts the FLOPs per image; ``describe_graph`` does the same for a model with several outputs
(a detector): 2 x the multiply-adds of every Conv, Gemm and MatMul node, the convention of
the EBJR paper (FLOPs = 2 x MACs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import shape_inference

from ebjr.core.tensors import GraphInfo, ModelInfo, TensorSpec

# ONNX tensor element types -> Triton config data types.
TRITON_DTYPES = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.UINT8: "TYPE_UINT8",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.BOOL: "TYPE_BOOL",
}


def _spec(value: onnx.ValueInfoProto, path: Path) -> TensorSpec:
    tensor = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
    if not dims or dims[0] not in (-1, 0) or tensor.shape.dim[0].HasField("dim_value"):
        raise ValueError(f"{path}: {value.name!r} needs a dynamic leading batch axis, got {dims}")
    if any(d <= 0 for d in dims[1:]):
        raise ValueError(f"{path}: {value.name!r} must have fixed non-batch dims, got {dims}")
    if tensor.elem_type not in TRITON_DTYPES:
        raise ValueError(f"{path}: {value.name!r} has unsupported element type {tensor.elem_type}")
    return TensorSpec(value.name, tuple(dims[1:]), TRITON_DTYPES[tensor.elem_type])


def _graph_io(model: onnx.ModelProto) -> tuple[list, list]:
    initializers = {init.name for init in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    return inputs, list(model.graph.output)


def count_flops(model: onnx.ModelProto) -> int:
    """FLOPs for one image: 2 x multiply-adds of Conv, Gemm and MatMul nodes."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inputs, outputs = _graph_io(model)
    for value in inputs + outputs:
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes: dict[str, tuple[int, ...]] = {
        init.name: tuple(init.dims) for init in model.graph.initializer
    }
    for value in list(model.graph.value_info) + inputs + list(model.graph.output):
        shapes[value.name] = tuple(d.dim_value for d in value.type.tensor_type.shape.dim)
    flops = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            out = shapes[node.output[0]]
            weight = shapes[node.input[1]]  # (C_out, C_in / groups, kh, kw)
            flops += 2 * int(np.prod(out)) * int(np.prod(weight[1:]))
        elif node.op_type in ("Gemm", "MatMul"):
            a, out = shapes[node.input[0]], shapes[node.output[0]]
            trans_a = any(attr.name == "transA" and attr.i for attr in node.attribute)
            inner = a[-2] if trans_a else a[-1]
            flops += 2 * int(np.prod(out)) * int(inner)
    return flops


def describe_graph(path: str | Path) -> GraphInfo:
    """Read the single input, the outputs and the FLOPs of the ONNX model at ``path``."""
    path = Path(path)
    model = onnx.load(str(path))
    inputs, outputs = _graph_io(model)
    if len(inputs) != 1:
        raise ValueError(f"{path}: expected one input, got {[v.name for v in inputs]}")
    return GraphInfo(
        input=_spec(inputs[0], path),
        outputs=tuple(_spec(v, path) for v in outputs),
        flops=count_flops(model),
    )


def describe(path: str | Path) -> ModelInfo:
    """Read the single input/output and FLOPs of the ONNX classifier at ``path``."""
    graph = describe_graph(path)
    if len(graph.outputs) != 1:
        raise ValueError(
            f"{path}: expected one input and one output, got {graph.input.name!r} -> "
            f"{[o.name for o in graph.outputs]}"
        )
    output = graph.outputs[0]
    if len(output.shape) != 1:
        raise ValueError(f"{path}: output {output.name!r} must be (batch, classes), got {output}")
    return ModelInfo(input=graph.input, output=output, flops=graph.flops)


__all__ = ["describe", "describe_graph", "count_flops"]
