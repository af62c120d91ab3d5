"""Tiny hand-built ONNX classifiers for tests, with hand-counted FLOPs."""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def tiny_classifier(
    path: Path, classes: int = 5, side: int = 4, input_name: str = "x", seed: int = 0
) -> Path:
    """Conv(1->2, 3x3, pad 1) -> Flatten -> Gemm(2*side*side -> classes), random weights
    drawn from ``seed``.

    FLOPs per image: conv 2 * (2*side*side) * 9 + gemm 2 * classes * (2*side*side).
    """
    rng = np.random.default_rng(seed)
    weights = [
        numpy_helper.from_array(rng.normal(size=(2, 1, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(
            rng.normal(size=(2 * side * side, classes)).astype(np.float32), "g"
        ),
    ]
    nodes = [
        helper.make_node("Conv", [input_name, "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("Gemm", ["f", "g"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", 1, side, side])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def tiny_flops(classes: int = 5, side: int = 4) -> int:
    return 2 * (2 * side * side) * 9 + 2 * classes * (2 * side * side)


def builder_args(student: Path, teacher: Path, out: Path, val_data: object) -> list[str]:
    """The repository builder's command line for a pair, calibrated on ``val_data``."""
    return [
        "--student",
        str(student),
        "--teacher",
        str(teacher),
        "--out",
        str(out),
        "--val-data",
        str(val_data),
    ]


def labelled_npz(path: Path, rows: int, side: int = 4, classes: int = 5, seed: int = 0) -> Path:
    """Random ``images: (rows, 1, side, side)`` and ``labels`` in ``[0, classes)`` as the
    builder's ``--val-data`` file; returns ``path``."""
    rng = np.random.default_rng(seed)
    images = rng.random((rows, 1, side, side), dtype=np.float32)
    np.savez(path, images=images, labels=rng.integers(0, classes, rows))
    return path
