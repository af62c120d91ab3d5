"""Small helpers shared by the Python-backend models."""

from __future__ import annotations

import json

import numpy as np
import triton_python_backend_utils as pb_utils


def model_parameters(args: dict) -> dict[str, str]:
    """The ``parameters`` of the model's ``config.pbtxt`` as a plain ``{key: value}`` dict."""
    config = json.loads(args["model_config"])
    return {key: value["string_value"] for key, value in config.get("parameters", {}).items()}


def error_response(message: str, invalid_argument: bool = False) -> pb_utils.InferenceResponse:
    code = pb_utils.TritonError.INVALID_ARG if invalid_argument else pb_utils.TritonError.INTERNAL
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))


class ModelCallError(RuntimeError):
    """A BLS call to another model returned an error or timed out."""


def call_model(
    model: str, input_name: str, output_name: str, batch: np.ndarray, timeout_us: int = 0
) -> np.ndarray:
    """Run ``batch`` through ``model`` over BLS and return its ``output_name`` tensor."""
    request = pb_utils.InferenceRequest(
        model_name=model,
        requested_output_names=[output_name],
        inputs=[pb_utils.Tensor(input_name, batch)],
        timeout=timeout_us,
    )
    response = request.exec()
    if response.has_error():
        raise ModelCallError(f"{model} failed: {response.error().message()}")
    return pb_utils.get_output_tensor_by_name(response, output_name).as_numpy()
