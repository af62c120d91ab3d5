import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """A Teacher that answers zeros after sleeping ``sleep_s`` seconds (2 s when absent) plus
    ``row_sleep_s`` (0 when absent) per row of the execution: its config parameters."""

    def initialize(self, args):
        parameters = json.loads(args["model_config"]).get("parameters", {})

        def value(key: str, default: str) -> float:
            return float(parameters.get(key, {}).get("string_value", default))

        self.sleep_s, self.row_sleep_s = value("sleep_s", "2.0"), value("row_sleep_s", "0.0")

    def execute(self, requests):
        images = [pb_utils.get_input_tensor_by_name(r, "image").as_numpy() for r in requests]
        time.sleep(self.sleep_s + self.row_sleep_s * sum(len(i) for i in images))
        return [
            pb_utils.InferenceResponse(
                [pb_utils.Tensor("logits", np.zeros((len(i), 10), dtype=np.float32))]
            )
            for i in images
        ]
