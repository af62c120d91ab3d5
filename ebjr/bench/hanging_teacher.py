"""A Python-backend model for ``make faults``: one ONNX model (``ebjr.serving.onnx_model``)
that holds each execution, up to ``HOLD_S``, while the file its ``hang_flag`` parameter
names exists, and then answers as usual: a real Teacher that hangs while its stub stays alive.

(Stopping a Python-backend stub with SIGSTOP is not the same fault: on Triton 2.51 the
server aborts on a shared-memory lock timeout, see ``ebjr.bench.faults``.)
"""

from __future__ import annotations

import time
from pathlib import Path

from ebjr.serving import onnx_model
from ebjr.serving.triton import model_parameters

HOLD_S = 2.0


class TritonPythonModel(onnx_model.TritonPythonModel):
    def initialize(self, args: dict) -> None:
        super().initialize(args)
        self.flag = Path(model_parameters(args)["hang_flag"])

    def execute(self, requests: list) -> list:
        began = time.monotonic()
        while self.flag.exists() and time.monotonic() - began < HOLD_S:
            time.sleep(0.05)
        return super().execute(requests)
