"""Running Triton's ``perf_analyzer`` on the real server: its environment, one measurement, the
router's routed rows from its metrics, and the ideal cascade the router is measured against."""

from __future__ import annotations

import base64
import csv
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ebjr.bench.bench_repository import CHEAP_ROUTER, ROUTER_BLS, THREE_STAGE
from ebjr.core.layout import PROJECT_ROOT, ROUTER
from ebjr.core.preprocess import IMAGE, IMAGE_BYTES, encode_png
from ebjr.core.tally import FLUSH_S
from ebjr.ops import prometheus
from ebjr.ops.server import TritonServer, pytriton_libs
from ebjr.tasks.detection import DETECTOR_ROUTER
from ebjr.training import data

log = logging.getLogger(__name__)


PERF_LIBS = PROJECT_ROOT / "build" / "perf-libs"


def perf_analyzer_env() -> dict[str, str]:
    """Environment for ``perf_analyzer``: a ``libcudart.so.12`` it can load on a CPU machine."""
    libs = pytriton_libs()
    cudart = sorted(libs.glob("libcudart-*.so.12*"))
    if not cudart:
        raise RuntimeError(f"no libcudart in {libs}")
    PERF_LIBS.mkdir(parents=True, exist_ok=True)
    link = PERF_LIBS / "libcudart.so.12"
    if not link.exists():
        link.symlink_to(cudart[0])
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        filter(None, [str(PERF_LIBS), env.get("LD_LIBRARY_PATH")])
    )
    return env


def perf_analyzer_binary() -> str:
    found = shutil.which("perf_analyzer", path=str(Path(sys.executable).parent))
    if not found:
        raise RuntimeError("perf_analyzer not found: install tritonclient[all]==2.51.0 (make venv)")
    return found


def write_input_data(path: Path, images: np.ndarray, encoded: bool = False) -> Path:
    """``--input-data`` JSON: one request per image. images: (N, 1, H, W) float32; as
    ``encoded``, each a PNG file, base64 in ``image_bytes`` (what the router decodes)."""
    if encoded:
        rows = [
            {IMAGE_BYTES: {"content": [base64.b64encode(encode_png(img)).decode()], "shape": [1]}}
            for img in images
        ]
    else:
        rows = [
            {IMAGE: {"content": img.ravel().round(4).tolist(), "shape": list(img.shape)}}
            for img in images
        ]
    path.write_text(json.dumps({"data": rows}))
    return path


@dataclass(frozen=True)
class Measurement:
    throughput: float  # inferences per second
    p50_ms: float
    p95_ms: float
    p99_ms: float


def run_perf_analyzer(
    model: str,
    grpc_url: str,
    concurrency: int,
    input_file: Path,
    window_ms: int,
    threshold: str | None = None,
    retry: bool = True,
) -> Measurement:
    """One ``perf_analyzer`` measurement at a fixed concurrency over gRPC (once more, over a
    window twice as long, if ``retry`` and it found no stable measurement)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.csv"
        command = [
            perf_analyzer_binary(),
            "-m",
            model,
            "-u",
            grpc_url,
            "-i",
            "grpc",
            "--concurrency-range",
            f"{concurrency}:{concurrency}",
            "--input-data",
            str(input_file),
            "--measurement-interval",
            str(window_ms),
            "--stability-percentage",
            "999",
            "--max-trials",
            "3",
            "-f",
            str(report),
        ]
        if threshold is not None:
            command += ["--request-parameter", f"threshold:{threshold}:string"]
        # perf_analyzer from this venv with arguments built here, no shell
        result = subprocess.run(  # nosec B603
            command, env=perf_analyzer_env(), capture_output=True, text=True
        )
        if result.returncode != 0 and "stable measurement" in result.stdout and retry:
            # a window too sparse to settle (this Triton's queue-policy holds: OVERLOAD.md)
            log.warning("%s: no stable measurement; again over %d ms", model, 2 * window_ms)
            return run_perf_analyzer(
                model, grpc_url, concurrency, input_file, 2 * window_ms, threshold, retry=False
            )
        if result.returncode != 0 or not report.exists():
            raise RuntimeError(f"perf_analyzer failed:\n{result.stdout[-2000:]}{result.stderr}")
        row = next(csv.DictReader(report.open()))
    return Measurement(
        throughput=float(row["Inferences/Second"]),
        p50_ms=float(row["p50 latency"]) / 1000,
        p95_ms=float(row["p95 latency"]) / 1000,
        p99_ms=float(row["p99 latency"]) / 1000,
    )


def routed_rows(metrics_url: str, model: str = ROUTER) -> tuple[dict[str, float], float]:
    """The router's ``ebjr_rows_total`` counters by route, and the rows Triton counts as
    ``model``'s inferences (``nv_inference_count``)."""
    text = prometheus.scrape(metrics_url)
    rows = prometheus.samples(text, "ebjr_rows_total")
    routed = {labels["route"]: v for labels, v in rows if labels.get("model") == model}
    return routed, prometheus.value(text, "nv_inference_count", model=model)


def routed_since(
    metrics_url: str,
    before: tuple[dict[str, float], float],
    model: str = ROUTER,
    timeout: float = 5.0,
) -> dict[str, float]:
    """The rows ``model`` routed since ``before`` (a ``routed_rows`` read), by route, once its
    tally, flushed every ``FLUSH_S``, has caught up with Triton's count of its inferences (or
    after ``timeout`` s, with a warning)."""
    deadline = time.monotonic() + timeout
    while True:
        routes, inferences = routed_rows(metrics_url, model)
        delta = {k: v - before[0].get(k, 0.0) for k, v in routes.items()}
        served, caught_up = inferences - before[1], sum(delta.values())
        if caught_up >= served or time.monotonic() > deadline:
            if caught_up < served:
                log.warning("%s's tally lags: %s of %d rows", model, delta, served)
            return delta
        time.sleep(FLUSH_S / 5)


def ideal_cascade(x_student: float, x_teacher: float, teacher_fraction: float) -> float:
    """Throughput of a cascade that wastes nothing: every image pays the Student, a fraction
    ``f`` also pays the Teacher: ``1 / (1/X_s + f/X_t)``."""
    return 1.0 / (1.0 / x_student + teacher_fraction / x_teacher)


class Measurer:
    """``measure(model, threshold, concurrency) -> row``: one perf_analyzer run on ``server``
    with real test images, plus the router's Teacher fraction from its own counters."""

    def __init__(
        self,
        server: TritonServer,
        window_ms: int,
        images: int = 500,
        inputs: np.ndarray | None = None,
        encoded: bool = False,
    ) -> None:
        """``images`` Fashion-MNIST test images, or ``inputs: (N, ...)`` (e.g. scenes); sent
        as pixels, or ``encoded`` as PNG files (``image_bytes``)."""
        self.server, self.window_ms, self.images, self.inputs = server, window_ms, images, inputs
        self.encoded = encoded

    def __enter__(self) -> Measurer:
        self._tmp = tempfile.TemporaryDirectory()
        inputs = self.inputs
        if inputs is None:
            inputs = data.load_split("test")[0][: self.images]
        path = Path(self._tmp.name) / "input.json"
        self.input_file = write_input_data(path, inputs, self.encoded)
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()

    def __call__(self, model: str, threshold: str | None, concurrency: int) -> dict:
        router = model in (ROUTER, ROUTER_BLS, THREE_STAGE, DETECTOR_ROUTER, CHEAP_ROUTER)
        before = routed_rows(self.server.metrics_url, model) if router else None
        m = run_perf_analyzer(
            model, self.server.grpc_url, concurrency, self.input_file, self.window_ms, threshold
        )
        fraction = None
        if router:
            delta = routed_since(self.server.metrics_url, before, model)
            total = sum(delta.values())
            fraction = delta.get("teacher", 0.0) / total if total else None
        row = {
            "model": model,
            "threshold": threshold,
            "concurrency": concurrency,
            "input": IMAGE_BYTES if self.encoded else IMAGE,
            **m.__dict__,
            "teacher_fraction": fraction,
        }
        log.info(json.dumps(row))
        return row
