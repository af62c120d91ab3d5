import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """A Teacher that answers zeros after sleeping ``sleep_s`` seconds (its config parameter,
    2 s when absent) per execution."""

    def initialize(self, args):
        parameters = json.loads(args["model_config"]).get("parameters", {})
        self.sleep_s = float(parameters.get("sleep_s", {}).get("string_value", "2.0"))

    def execute(self, requests):
        time.sleep(self.sleep_s)
        responses = []
        for request in requests:
            rows = pb_utils.get_input_tensor_by_name(request, "image").as_numpy().shape[0]
            logits = np.zeros((rows, 10), dtype=np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("logits", logits)]))
        return responses
