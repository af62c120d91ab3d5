"""Triton ``config.pbtxt`` files as data: built, read and written through Triton's protobuf
schema (``tritonclient.grpc.model_config_pb2``), never through string templates or regexes.

    config = read(path)                       # -> model_config_pb2.ModelConfig
    set_parameters(config, {"metrics": "off"})
    write(path, config)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from ebjr.core.preprocess import IMAGE, IMAGE_BYTES, Preprocessing
from ebjr.core.preprocess import PARAMETER as PREPROCESSING
from ebjr.core.tensors import GraphInfo, ModelInfo, TensorSpec

ModelConfig = pb.ModelConfig
BACKENDS = ("onnxruntime", "python")  # how a Student or Teacher ONNX file is served
DEVICES = ("cpu", "gpu")


@dataclass(frozen=True)
class QueuePolicy:
    """Admission control for one model's queue (Triton's ``default_queue_policy``): at most
    ``max_queue_size`` requests wait (one more is refused at once), and one that has waited
    ``timeout_ms`` is refused when it would start (``timeout_action: REJECT``); 0 leaves that
    bound off. Refusals are HTTP 503 / gRPC UNAVAILABLE.

    Off by default: on this Triton build (2.51) any ``default_queue_policy`` makes the dynamic
    batcher hold some requests about 500 ms (measured by ``make overload``'s ``router_bounded``:
    OVERLOAD.md), which costs far more than it saves. Set it for a Triton without that fault.
    """

    max_queue_size: int = 0
    timeout_ms: int = 0

    def __post_init__(self) -> None:
        if self.max_queue_size < 0 or self.timeout_ms < 0:
            raise ValueError(
                f"max_queue_size and queue timeout must be >= 0 (0 = off), not "
                f"{self.max_queue_size} and {self.timeout_ms}"
            )


@dataclass(frozen=True)
class ModelServing:
    """How one ONNX classifier is served.

    ``onnxruntime`` is Triton's native ONNX Runtime backend (``platform: "onnxruntime_onnx"``);
    ``python`` wraps onnxruntime in the Python backend (``1/model.py``), for a host that cannot
    build the native backend. ``gpu`` (native backend only) places the instances on the GPU with
    ONNX Runtime's CUDA execution provider, plus TensorRT when ``tensorrt`` is set.
    """

    backend: str = "onnxruntime"
    device: str = "cpu"
    tensorrt: bool = False
    instances: int = 1
    intra_op_threads: int = 1
    max_queue_delay_us: int = 0  # batch what is queued; never wait for more
    queue: QueuePolicy = QueuePolicy()  # off: see QueuePolicy

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {self.backend!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, not {self.device!r}")
        if self.device == "gpu" and self.backend != "onnxruntime":
            raise ValueError("GPU serving needs the onnxruntime backend (--backend onnxruntime)")
        if self.tensorrt and self.device != "gpu":
            raise ValueError("TensorRT needs --device gpu")


def parse(text: str) -> ModelConfig:
    """A ``config.pbtxt`` text as a ``ModelConfig`` (``ParseError`` if it is not one)."""
    return text_format.Parse(text, ModelConfig())


def read(path: Path) -> ModelConfig:
    return parse(Path(path).read_text())


def to_text(config: ModelConfig) -> str:
    return text_format.MessageToString(config)


def write(path: Path, config: ModelConfig) -> None:
    Path(path).write_text(to_text(config))


def parameters(config: ModelConfig) -> dict[str, str]:
    """The config's ``parameters`` as ``{key: string value}``."""
    return {key: value.string_value for key, value in config.parameters.items()}


def set_parameters(config: ModelConfig, values: dict[str, object]) -> ModelConfig:
    """Set ``parameters`` entries (values written as strings); return ``config``."""
    for key, value in values.items():
        config.parameters[key].string_value = str(value)
    return config


def _data_type(triton_dtype: str) -> int:
    return pb.DataType.Value(triton_dtype)


def _tensor(container, spec: TensorSpec, name: str | None = None) -> None:
    container.add(
        name=name or spec.name, data_type=_data_type(spec.triton_dtype), dims=list(spec.shape)
    )


def set_batching(config: ModelConfig, max_queue_delay_us: int, queue: QueuePolicy) -> None:
    """Give ``config`` dynamic batching with this queue delay and ``queue`` policy."""
    batching = config.dynamic_batching
    batching.SetInParent()
    batching.max_queue_delay_microseconds = max_queue_delay_us
    if queue.max_queue_size or queue.timeout_ms:
        policy = batching.default_queue_policy
        policy.max_queue_size = queue.max_queue_size
        policy.default_timeout_microseconds = queue.timeout_ms * 1000
        policy.timeout_action = pb.ModelQueuePolicy.REJECT


def _kind(device: str) -> int:
    return pb.ModelInstanceGroup.KIND_GPU if device == "gpu" else pb.ModelInstanceGroup.KIND_CPU


def onnx_model(
    name: str, info: ModelInfo | GraphInfo, max_batch_size: int, serving: ModelServing
) -> ModelConfig:
    """The config of one ONNX model (every output of it) served as ``serving`` says."""
    config = ModelConfig(name=name, max_batch_size=max_batch_size)
    if serving.backend == "python":
        config.backend = "python"
        set_parameters(config, {"intra_op_threads": serving.intra_op_threads})
    else:
        config.platform = "onnxruntime_onnx"
        set_parameters(
            config, {"intra_op_thread_count": serving.intra_op_threads, "inter_op_thread_count": 1}
        )
    _tensor(config.input, info.input)
    for output in info.outputs:
        _tensor(config.output, output)
    set_batching(config, serving.max_queue_delay_us, serving.queue)
    config.instance_group.add(count=serving.instances, kind=_kind(serving.device))
    if serving.tensorrt:
        accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator.add(
            name="tensorrt"
        )
        accelerator.parameters["precision_mode"] = "FP16"
        accelerator.parameters["max_workspace_size_bytes"] = str(1 << 30)
    return config


def python_router(
    name: str,
    image: TensorSpec,
    outputs: list[TensorSpec],
    max_batch_size: int,
    instances: int,
    max_queue_delay_us: int,
    values: dict[str, object],
    queue: QueuePolicy = QueuePolicy(),
) -> ModelConfig:
    """A BLS router's config: inputs ``image`` (pixels as the Student takes them) and
    ``image_bytes`` (one PNG or JPEG per row, decoded as the ``preprocessing`` parameter says:
    ``ebjr.core.preprocess``), each optional, a request sends one; per-row ``outputs`` (its
    task's ``RouterSpec.tensors``: the answer, then the routing columns); ``values`` as
    parameters; its queue under ``queue``."""
    config = ModelConfig(name=name, backend="python", max_batch_size=max_batch_size)
    _tensor(config.input, image, IMAGE)
    _tensor(config.input, TensorSpec(IMAGE_BYTES, (1,), "TYPE_STRING"))
    for tensor in config.input:
        tensor.optional = True
    values = {PREPROCESSING: Preprocessing.for_shape(image.shape).to_parameter(), **values}
    for output in outputs:
        _tensor(config.output, output)
    set_batching(config, max_queue_delay_us, queue)
    config.instance_group.add(count=instances, kind=pb.ModelInstanceGroup.KIND_CPU)
    return set_parameters(config, values)


def image_decoder(name: str, image: TensorSpec, max_batch_size: int) -> ModelConfig:
    """The config of a decoder model (``ebjr.serving.decoder``): input ``image_bytes``, one
    PNG or JPEG per row; output ``image`` of ``image``'s shape and dtype, decoded by the
    ``preprocessing`` parameter written for that shape."""
    config = ModelConfig(name=name, backend="python", max_batch_size=max_batch_size)
    _tensor(config.input, TensorSpec(IMAGE_BYTES, (1,), "TYPE_STRING"))
    _tensor(config.output, image, IMAGE)
    set_batching(config, 0, QueuePolicy())
    config.instance_group.add(count=1, kind=pb.ModelInstanceGroup.KIND_CPU)
    return set_parameters(
        config, {PREPROCESSING: Preprocessing.for_shape(image.shape).to_parameter()}
    )


def decoded_ensemble(
    name: str, decoder: str, model: str, info: ModelInfo, max_batch_size: int
) -> ModelConfig:
    """An ensemble that takes ``image_bytes``, decodes them with ``decoder``
    (``image_decoder``) and answers with ``model``'s output (``info``: its tensors)."""
    config = ModelConfig(name=name, platform="ensemble", max_batch_size=max_batch_size)
    _tensor(config.input, TensorSpec(IMAGE_BYTES, (1,), "TYPE_STRING"))
    _tensor(config.output, info.output)
    steps = config.ensemble_scheduling.step
    steps.add(model_name=decoder, model_version=-1).input_map[IMAGE_BYTES] = IMAGE_BYTES
    steps[0].output_map[IMAGE] = "pixels"
    steps.add(model_name=model, model_version=-1).input_map[info.input.name] = "pixels"
    steps[1].output_map[info.output.name] = info.output.name
    return config


def edited(
    config: ModelConfig,
    parameters: dict[str, object] | None = None,
    *,
    name: str | None = None,
    instances: int | None = None,
    max_queue_delay_us: int | None = None,
) -> ModelConfig:
    """A copy of ``config`` with ``parameters`` set and, where given, a new ``name``, instance
    count (of its first instance group) or dynamic-batching queue delay."""
    copy = ModelConfig()
    copy.CopyFrom(config)
    set_parameters(copy, parameters or {})
    if name is not None:
        copy.name = name
    if instances is not None:
        copy.instance_group[0].count = instances
    if max_queue_delay_us is not None:
        copy.dynamic_batching.max_queue_delay_microseconds = max_queue_delay_us
    return copy
