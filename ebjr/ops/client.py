"""Thin helpers over the official ``tritonclient`` for HTTP and gRPC.

client = connect("127.0.0.1:8000", "http")
answer = classify(client, images, threshold=8.0)   # images: (N, 1, 28, 28) float32
found = detect(client, scenes, teacher_fraction=0.3)   # scenes: (N, 1, 96, 96) float32
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from ebjr.core.layout import ROUTER
from ebjr.core.preprocess import IMAGE, IMAGE_BYTES, Preprocessing
from ebjr.ops.restricted import admin_headers
from ebjr.tasks.detection import DETECTOR_ROUTER

PROTOCOLS: dict[str, ModuleType] = {"http": httpclient, "grpc": grpcclient}
DEFAULT_URLS = {"http": "127.0.0.1:8000", "grpc": "127.0.0.1:8001"}
# Admission control's refusals, with their words: a full Triton queue or a request that waited
# past its queue's timeout (HTTP 503, gRPC UNAVAILABLE), or the router's admit_requests ("is
# overloaded": HTTP 500, gRPC INTERNAL; see ebjr.serving.triton.refusal_response). ``infer``
# retries them RETRIES times, BACKOFF_S doubling each time.
REFUSALS = ("500", "503", "429", "StatusCode.INTERNAL", "StatusCode.UNAVAILABLE")
REFUSAL_WORDS = ("maximum queue size", "timeout expired", "is overloaded")
RETRIES, BACKOFF_S = 3, 0.05


@dataclass
class Answer:
    """The router's answer for ``N`` rows."""

    logits: np.ndarray  # (N, C) float32
    classes: np.ndarray  # (N,) int64
    scores: np.ndarray  # (N,) float32, the routing score of the last stage that scored the row
    thresholds: np.ndarray  # (N,) float32, the threshold applied; (N, S - 1) for S > 2 stages
    routes: np.ndarray  # (N,) str: a route name of ebjr.core.routing.ROUTE_NAMES


@dataclass
class Detections:
    """The detector router's answer for ``N`` images of up to ``K`` boxes each."""

    boxes: np.ndarray  # (N, K, 4) float32, x0 y0 x1 y1 in pixels
    classes: np.ndarray  # (N, K) int64
    box_scores: np.ndarray  # (N, K) float32, the detector's confidence per box
    valid: np.ndarray  # (N, K) bool: the boxes the answering detector kept
    scores: np.ndarray  # (N,) float32, the routing score (eq. 14)
    thresholds: np.ndarray  # (N,) float32
    routes: np.ndarray  # (N,) str


def read_file(path: str) -> bytes:
    """A file's bytes; ``ClientError`` if it is missing."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ClientError(f"no such file: {path}") from None


def load_image(path: str, invert: bool, side: int) -> np.ndarray:
    """An image file as ``(1, side, side) float32`` in [0, 1], light objects on a dark
    background (``invert`` for a dark object on a light one): colour becomes grey
    (luminance), transparent pixels background. ``ClientError`` if it is missing or not an
    image."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise ClientError(f"no such file: {path}") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ClientError(f"{path} is not an image this client can read ({err})") from None
    # the router's own decoding of image_bytes, on a white background for a dark object
    grey = Preprocessing(1, side, side, resize="bicubic", background=255 if invert else 0)
    pixels = grey.tensor(image)
    return 1.0 - pixels if invert else pixels


def cli_args(argv: list[str] | None) -> list[str]:
    """Command-line arguments with ``-inf`` protected from argparse (which would read it as an
    option): ``--threshold -inf`` then works like ``--threshold=-inf``."""
    args = sys.argv[1:] if argv is None else argv
    return [" " + a if a.lower() in ("-inf", "-infinity") else a for a in args]


def connect(url: str | None = None, protocol: str = "http", **kwargs):
    """An ``InferenceServerClient`` for ``protocol`` (``http`` or ``grpc``)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}")
    return PROTOCOLS[protocol].InferenceServerClient(url or DEFAULT_URLS[protocol], **kwargs)


class ClientError(Exception):
    """What went wrong, and what to do, in one line (the CLIs print it and exit non-zero)."""


class Overloaded(ClientError):
    """The server kept refusing the request (its queue was full or too slow): retry later."""


def run_cli(run: Callable[[list[str] | None], int], argv: list[str] | None) -> int:
    """A CLI's ``main``: ``run(argv)``, with a ``ClientError`` printed as one line on stderr
    and exit code 1."""
    try:
        return run(argv)
    except ClientError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every CLI that talks to the router shares."""
    parser.add_argument("--protocol", choices=("http", "grpc"), default="http")
    parser.add_argument("--url", help="host:port (default 127.0.0.1:8000 http, :8001 grpc)")
    parser.add_argument("--model", default=ROUTER, help="the router to ask (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to reach the server")


def add_knob_arguments(
    parser: argparse.ArgumentParser, min_accuracy: str, certified: bool = True
) -> None:
    """The per-request knobs, at most one: ``--threshold``, ``--teacher-fraction``,
    ``--min-accuracy`` (``min_accuracy`` says in what units) or, for a classifier router
    (``certified``), ``--max-accuracy-drop`` with its ``--confidence``."""
    knob = parser.add_mutually_exclusive_group()
    knob.add_argument("--threshold", help="score threshold t (number, inf or -inf)")
    knob.add_argument("--teacher-fraction", type=float, help="calibrated share sent to Teacher")
    knob.add_argument("--min-accuracy", type=float, help=min_accuracy)
    if certified:
        knob.add_argument(
            "--max-accuracy-drop",
            type=float,
            help="accuracy the cascade may lose against the Teacher (0.005 = 0.5 point), "
            "certified on the calibration rows",
        )
        parser.add_argument("--confidence", type=float, help="of --max-accuracy-drop (default 0.9)")


def knob_parameters(args: argparse.Namespace) -> dict[str, object]:
    """The request parameters of the knob ``add_knob_arguments`` parsed, if any."""
    knobs = ("threshold", "teacher_fraction", "min_accuracy", "max_accuracy_drop", "confidence")
    return {key: getattr(args, key) for key in knobs if getattr(args, key, None) is not None}


def open_client(url: str, protocol: str, model: str = ROUTER, timeout_s: float = 10.0):
    """A client for ``url`` after checking that the server answers within ``timeout_s`` and
    that ``model`` is ready there; else ``ClientError`` saying what to do."""
    kwargs = (
        {"connection_timeout": timeout_s, "network_timeout": timeout_s}
        if protocol == "http"
        else {}
    )
    client = connect(url, protocol, **kwargs)
    try:
        check_ready(client, url, protocol, model, timeout_s)
    except ClientError:
        client.close()  # an idle connection left open would hold a server's shutdown
        raise
    return client


def check_ready(client, url: str, protocol: str, model: str, timeout_s: float) -> None:
    """``ClientError`` unless the server at ``url`` answers ``client`` within ``timeout_s``
    and serves ``model``."""
    timeout = {} if protocol == "http" else {"client_timeout": timeout_s}
    try:
        ready = client.is_server_ready(**timeout)
        model_ready = ready and client.is_model_ready(model, **timeout)
    except Exception as err:  # refused, timed out, not Triton: each client raises its own
        raise ClientError(
            f"cannot reach a Triton server at {url} over {protocol} ({unreachable(err)}); "
            "start one with `make serve`, or give --url host:port (and --protocol)"
        ) from None
    if not ready:
        raise ClientError(f"the server at {url} is not ready yet (loading models?); retry soon")
    if not model_ready:
        raise ClientError(f"model {model!r} is not ready at {url}; {ready_models(client)}")


def ready_models(client) -> str:
    """ "ready models: a, b" from the repository index, which is a restricted endpoint: read
    with the admin token when one is configured (``ebjr.ops.restricted``), else a line saying
    the list needs it."""
    try:
        index = client.get_model_repository_index(headers=admin_headers(protocol_of(client)))
    except InferenceServerException:
        return "the list of models needs the admin token (EBJR_ADMIN_TOKEN, SECURITY.md)"
    entries = index if isinstance(index, list) else list(index.models)
    models = sorted(
        m["name"] if isinstance(m, dict) else m.name
        for m in entries
        if (m.get("state") if isinstance(m, dict) else m.state) == "READY"
    )
    return f"ready models: {', '.join(models) or 'none'}"


def unreachable(err: Exception) -> str:
    """A short reason from whatever a client raised for a server it could not talk to."""
    text = err.message() if hasattr(err, "message") and callable(err.message) else str(err)
    lowered = text.lower()
    if isinstance(err, ConnectionRefusedError) or "refused" in lowered or "unavailable" in lowered:
        return "connection refused"
    if isinstance(err, TimeoutError) or "timed out" in lowered or "deadline" in lowered:
        return "timed out"
    return text.splitlines()[0] if text else type(err).__name__


def protocol_of(client) -> str:
    """``"grpc"`` or ``"http"``: which ``tritonclient`` module ``client`` comes from."""
    return "grpc" if isinstance(client, grpcclient.InferenceServerClient) else "http"


def _module(client) -> ModuleType:
    return grpcclient if protocol_of(client) == "grpc" else httpclient


def infer(client, model: str, inputs: dict[str, np.ndarray], outputs: list[str], **params):
    """Run ``model`` on named numpy ``inputs``; return ``{output name: array}``.

    Keyword arguments become request parameters (e.g. ``threshold=8.0``). A refusal
    (``REFUSALS``: the server's admission control) is retried with backoff, then raises
    ``Overloaded``; any other error is the server's ``InferenceServerException``.
    """
    module = _module(client)
    tensors = []
    for name, array in inputs.items():
        tensor = module.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    requested = [module.InferRequestedOutput(name) for name in outputs]
    for attempt in range(RETRIES + 1):
        try:
            result = client.infer(model, tensors, outputs=requested, parameters=params or None)
            break
        except InferenceServerException as err:
            if not refused(err):
                raise
            if attempt == RETRIES:
                raise Overloaded(
                    f"{model} refused the request {RETRIES + 1} times, the last with "
                    f"{err.status()} ({err.message()}): the server is overloaded, retry later"
                ) from None
            time.sleep(BACKOFF_S * 2**attempt)
    return {name: result.as_numpy(name) for name in outputs}


def refused(err: InferenceServerException) -> bool:
    """Whether ``err`` is the server's admission control turning a request away."""
    text = (err.message() or "").lower()
    return str(err.status()) in REFUSALS and any(w in text for w in REFUSAL_WORDS)


def _per_row(thresholds: np.ndarray) -> np.ndarray:
    """``(N, 1) -> (N,)``: one threshold per row for two stages; ``(N, S - 1)`` kept as is."""
    return thresholds[:, 0] if thresholds.shape[1] == 1 else thresholds


def encoded(payloads: list[bytes]) -> np.ndarray:
    """PNG or JPEG files' bytes as the router's ``image_bytes`` input, ``(N, 1)`` object."""
    column = np.empty((len(payloads), 1), dtype=np.object_)
    column[:, 0] = payloads
    return column


def classify(client, images: np.ndarray, model: str = ROUTER, **params) -> Answer:
    """Send ``images`` to the EBJR router: pixels ``(N, 1, 28, 28)``, or encoded images
    (``encoded``: PNG or JPEG bytes, decoded by the router); ``params`` such as ``threshold``
    go with the request."""
    if images.dtype == np.object_:
        inputs = {IMAGE_BYTES: images}
    else:
        inputs = {IMAGE: np.ascontiguousarray(images, dtype=np.float32)}
    out = infer(client, model, inputs, ["logits", "class", "score", "threshold", "route"], **params)
    return Answer(
        logits=out["logits"],
        classes=out["class"].reshape(-1),
        scores=out["score"].reshape(-1),
        thresholds=_per_row(out["threshold"]),
        routes=np.array([r.decode() for r in out["route"].reshape(-1)]),
    )


def detect(client, images: np.ndarray, model: str = DETECTOR_ROUTER, **params) -> Detections:
    """Send ``images`` to the detector router; ``params`` such as ``threshold`` go with it."""
    out = infer(
        client,
        model,
        {"image": np.ascontiguousarray(images, dtype=np.float32)},
        ["boxes", "classes", "scores", "valid", "score", "threshold", "route"],
        **params,
    )
    return Detections(
        boxes=out["boxes"],
        classes=out["classes"],
        box_scores=out["scores"],
        valid=out["valid"],
        scores=out["score"].reshape(-1),
        thresholds=out["threshold"].reshape(-1),
        routes=np.array([r.decode() for r in out["route"].reshape(-1)]),
    )


@dataclass(frozen=True)
class RouterInfo:
    """What a router publishes in its model config: the routing score per stage boundary (the
    units of a raw ``threshold``), its default threshold(s), calibrated operating points and,
    where it has the ``max_accuracy_drop`` knob, its certified Teacher shares."""

    score: str
    default_threshold: str
    operating_points: dict
    certified_points: dict | None = None


def describe_router(client, model: str = ROUTER) -> RouterInfo:
    """Read ``model``'s published calibration from its model config (any client can)."""
    config = (
        client.get_model_config(model, as_json=True)["config"]
        if _module(client) is grpcclient
        else client.get_model_config(model)
    )
    # proto3 JSON leaves an empty string out: {"teacher_url": {}}
    p = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
    if "served_score" not in p:
        return RouterInfo(p.get("score", "?"), p.get("default_threshold", "?"), {})
    return RouterInfo(
        p["served_score"],
        p["served_default_threshold"],
        json.loads(p["operating_points"]),
        json.loads(p["certified_points"]) if "certified_points" in p else None,
    )
