"""Thin helpers over the official ``tritonclient`` for HTTP and gRPC.

client = connect("127.0.0.1:8000", "http")
answer = classify(client, images, threshold=8.0)   # images: (N, 1, 28, 28) float32
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import np_to_triton_dtype

from ebjr.layout import ROUTER

PROTOCOLS: dict[str, ModuleType] = {"http": httpclient, "grpc": grpcclient}
DEFAULT_URLS = {"http": "127.0.0.1:8000", "grpc": "127.0.0.1:8001"}


@dataclass
class Answer:
    """The router's answer for ``N`` rows."""

    logits: np.ndarray  # (N, C) float32
    classes: np.ndarray  # (N,) int64
    scores: np.ndarray  # (N,) float32, the Student's routing score
    thresholds: np.ndarray  # (N,) float32, the threshold applied
    routes: np.ndarray  # (N,) str: "student", "teacher" or "student_fallback"


def cli_args(argv: list[str] | None) -> list[str]:
    """Command-line arguments with ``-inf`` protected from argparse (which would read it as an
    option): ``--threshold -inf`` then works like ``--threshold=-inf``."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    return [" " + a if a.lower() in ("-inf", "-infinity") else a for a in args]


def connect(url: str | None = None, protocol: str = "http", **kwargs):
    """An ``InferenceServerClient`` for ``protocol`` (``http`` or ``grpc``)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}")
    return PROTOCOLS[protocol].InferenceServerClient(url or DEFAULT_URLS[protocol], **kwargs)


def _module(client) -> ModuleType:
    return grpcclient if isinstance(client, grpcclient.InferenceServerClient) else httpclient


def infer(client, model: str, inputs: dict[str, np.ndarray], outputs: list[str], **params):
    """Run ``model`` on named numpy ``inputs``; return ``{output name: array}``.

    Keyword arguments become request parameters (e.g. ``threshold=8.0``).
    """
    module = _module(client)
    tensors = []
    for name, array in inputs.items():
        tensor = module.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    requested = [module.InferRequestedOutput(name) for name in outputs]
    result = client.infer(model, tensors, outputs=requested, parameters=params or None)
    return {name: result.as_numpy(name) for name in outputs}


def classify(client, images: np.ndarray, model: str = ROUTER, **params) -> Answer:
    """Send ``images`` to the EBJR router; ``params`` such as ``threshold`` go with the request."""
    out = infer(
        client,
        model,
        {"image": np.ascontiguousarray(images, dtype=np.float32)},
        ["logits", "class", "score", "threshold", "route"],
        **params,
    )
    return Answer(
        logits=out["logits"],
        classes=out["class"].reshape(-1),
        scores=out["score"].reshape(-1),
        thresholds=out["threshold"].reshape(-1),
        routes=np.array([r.decode() for r in out["route"].reshape(-1)]),
    )
