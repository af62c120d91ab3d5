"""The Python backend's floor for the router's request shape: a model with the router's exact
config (input ``image``, the same five outputs) that does no work at all. It reads each
request's row count and answers constant outputs, only those requested.

``make bench`` serves it as ``router_floor`` next to the router: its throughput is the most any
Python-backend router with this interface can serve on the machine, whatever it computes.
"""

from __future__ import annotations

import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        self.outputs = {
            o["name"]: (pb_utils.triton_string_to_numpy(o["data_type"]), o["dims"])
            for o in json.loads(args["model_config"])["output"]
        }

    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            rows = len(pb_utils.get_input_tensor_by_name(request, "image").as_numpy())
            wanted = request.requested_output_names() or self.outputs
            tensors = [
                pb_utils.Tensor(
                    name, np.full((rows, *dims), b"" if dtype == np.object_ else 0, dtype=dtype)
                )
                for name, (dtype, dims) in self.outputs.items()
                if name in wanted
            ]
            responses.append(pb_utils.InferenceResponse(tensors))
        return responses
