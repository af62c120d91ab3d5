"""What the routers and builders know of a model's tensors: names, per-row shapes and Triton
dtypes, and the FLOPs per row (read from ONNX files by ``ebjr.build.onnx_info``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TensorSpec:
    """One ONNX graph input or output; ``shape`` excludes the leading batch axis."""

    name: str
    shape: tuple[int, ...]
    triton_dtype: str


@dataclass(frozen=True)
class ModelInfo:
    input: TensorSpec
    output: TensorSpec
    flops: int

    @property
    def num_classes(self) -> int:
        return self.output.shape[-1]

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return (self.output,)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GraphInfo:
    """A single-input ONNX model with one or more outputs."""

    input: TensorSpec
    outputs: tuple[TensorSpec, ...]
    flops: int
