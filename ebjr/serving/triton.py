"""Small helpers shared by the Python-backend models."""

from __future__ import annotations

import concurrent.futures
import json

import numpy as np
import triton_python_backend_utils as pb_utils

from ebjr.core.routing import StageError


def model_parameters(args: dict) -> dict[str, str]:
    """The ``parameters`` of the model's ``config.pbtxt`` as a plain ``{key: value}`` dict."""
    config = json.loads(args["model_config"])
    return {
        key: value.get("string_value", "") for key, value in config.get("parameters", {}).items()
    }


def error_response(message: str, invalid_argument: bool = False) -> pb_utils.InferenceResponse:
    code = pb_utils.TritonError.INVALID_ARG if invalid_argument else pb_utils.TritonError.INTERNAL
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))


OVERLOADED = "is overloaded"  # the words of every refusal (clients and metrics look for them)


def refusal_response(model: str, reason: str) -> pb_utils.InferenceResponse:
    """A request turned away under load, for the client to retry later. Its code is INTERNAL
    (HTTP 500 / gRPC INTERNAL), not UNAVAILABLE: this Triton puts a request whose Python-backend
    response is UNAVAILABLE back in the queue (tests/server/test_server_admission.py saw the
    refused requests executed again), which would make a refusal a wait."""
    message = f"{model} {OVERLOADED} ({reason}): refused, retry later"
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message))


class ModelCallError(StageError):
    """A BLS call to another model returned an error or timed out."""


# Runs BLS calls that have a timeout; a few threads, as a late call may still hold one.
_TIMED_CALLS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="bls")


def call_model(
    model: str, input_name: str, output_name: str, batch: np.ndarray, timeout_s: float = 0.0
) -> np.ndarray:
    """Run ``batch`` through ``model`` over BLS and return its ``output_name`` tensor
    (``call_outputs`` with one output)."""
    return call_outputs(model, input_name, (output_name,), batch, timeout_s)[0]


def call_outputs(
    model: str,
    input_name: str,
    output_names: tuple[str, ...],
    batch: np.ndarray,
    timeout_s: float = 0.0,
) -> list[np.ndarray]:
    """Run ``batch`` through ``model`` over BLS and return its ``output_names`` tensors.

    A plain blocking ``exec``: the router's ``execute`` is synchronous, since a non-decoupled
    Python model runs one ``execute`` at a time anyway and the asyncio hand-offs of an ``async``
    one measured costlier (``BENCHMARKS.md``). With ``timeout_s > 0`` the call runs on a helper
    thread and the router stops waiting after that long, raising ``ModelCallError``; the late
    answer is dropped when it comes. (Triton's own BLS ``timeout`` bounds queueing only, not a
    model that is already running.)
    """
    request = pb_utils.InferenceRequest(
        model_name=model,
        requested_output_names=list(output_names),
        inputs=[pb_utils.Tensor(input_name, batch)],
    )
    if timeout_s > 0:
        pending = _TIMED_CALLS.submit(request.exec)
        try:
            response = pending.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            pending.add_done_callback(lambda f: f.exception())  # drop the late answer quietly
            late = f"{model} did not answer within {timeout_s * 1000:.0f} ms"
            raise ModelCallError(late) from None
    else:
        response = request.exec()
    if response.has_error():
        raise ModelCallError(f"{model} failed: {response.error().message()}")
    return [pb_utils.get_output_tensor_by_name(response, n).as_numpy() for n in output_names]
