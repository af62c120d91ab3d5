import json
import time
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """A Teacher that hangs (2 s, then answers) while the file named by its ``hang_flag``
    parameter exists, and answers zeros at once otherwise: a sick Teacher that can recover."""

    def initialize(self, args):
        parameters = json.loads(args["model_config"])["parameters"]
        self.flag = Path(parameters["hang_flag"]["string_value"])

    def execute(self, requests):
        began = time.monotonic()
        while self.flag.exists() and time.monotonic() - began < 2.0:
            time.sleep(0.05)
        responses = []
        for request in requests:
            rows = pb_utils.get_input_tensor_by_name(request, "image").as_numpy().shape[0]
            logits = np.zeros((rows, 10), dtype=np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("logits", logits)]))
        return responses
