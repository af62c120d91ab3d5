"""The router's default deadline for its later stages, measured at build time.

A router waits for a later stage (the Teacher, local over BLS or remote over gRPC) at most
``teacher_timeout_ms``. A fixed default is wrong for most pairs (10 s lets a hung Teacher stall
every request; 100 ms fails a slow but healthy one), so the builder times the slowest call the
router can make, the Teacher on a full router batch, and writes ``DEADLINE_MULTIPLE`` times the
slowest of ``RUNS`` such calls, at least ``DEADLINE_FLOOR_MS``, rounded up to ``STEP_MS`` (so a
rebuild on the same machine writes the same number). The multiple leaves room for the Teacher's
own queue (each router instance has one call out at a time) and for a busy host. The router
raises it on a slower serving machine from the calls it sees answered
(``ebjr.core.deadline``).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from tritonclient.utils import triton_to_np_dtype

from ebjr.core.deadline import MULTIPLE as DEADLINE_MULTIPLE
from ebjr.core.onnx_runner import OnnxModel
from ebjr.core.tensors import GraphInfo, ModelInfo

DEADLINE_FLOOR_MS = 100
STEP_MS = 50
RUNS = 5


def measured_deadline_ms(onnx_file: Path, info: ModelInfo | GraphInfo, batch: int) -> int:
    """The deadline for calls to the model in ``onnx_file`` (``info`` its description) from a
    router batching up to ``batch`` rows, in whole milliseconds. The model runs on one
    intra-op thread, as the repository serves it."""
    model = OnnxModel(onnx_file, threads=1)
    spec = info.input
    shape = (batch, *(max(d, 1) for d in spec.shape))  # a free axis timed at 1
    images = np.zeros(shape, dtype=triton_to_np_dtype(spec.triton_dtype.removeprefix("TYPE_")))
    model(images)  # the first run pays for allocation
    slowest = 0.0
    for _ in range(RUNS):
        began = time.perf_counter()
        model(images)
        slowest = max(slowest, time.perf_counter() - began)
    ms = max(DEADLINE_FLOOR_MS, DEADLINE_MULTIPLE * slowest * 1000)
    return int(math.ceil(ms / STEP_MS) * STEP_MS)
