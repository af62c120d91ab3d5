"""Speed of the served system under load, with Triton's own ``perf_analyzer`` (``make bench``).

    python -m ebjr.bench.benchmark [--concurrency 1 4 16] [--window-ms 3000] [--out BENCHMARKS.md]

Starts one real server on the repository plus the models measured beside it (``bench_repository``),
feeds real Fashion-MNIST test images over gRPC (one image per request) and measures, in one run:
the native and the Python-wrapped Student and Teacher, the Python backend's floor for the
router's interface, and the router at ``threshold=-inf``, at its calibrated default and at
``+inf``. The router's Teacher share comes from its own Prometheus counters. From the same run
it computes the ideal cascade ``1 / (1/X_student + f/X_teacher)``, the targets' ratios, the
CPU time per process and a py-spy profile of the router, and writes a Markdown report and a plot
of throughput and p95 latency against the threshold.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

from ebjr.bench.bench_repository import (
    CHEAP_ROUTER,
    CHEAP_TEACHER,
    CHEAP_TEACHER_ONNX,
    FLOOR,
    ROUTER_BLS,
    TEACHER_2T,
    THREE_STAGE,
    bench_repository,
)
from ebjr.bench.perf import Measurer
from ebjr.bench.profile import profile_router
from ebjr.bench.report import ADDED, machine, report
from ebjr.build.onnx_info import describe
from ebjr.core.calibration import read_calibration
from ebjr.core.layout import (
    DEFAULT_REPOSITORY,
    PROJECT_ROOT,
    ROUTER,
    TEACHER,
    calibration_path,
    onnx_path,
)
from ebjr.ops.restricted import FOR_PERF_ANALYZER
from ebjr.ops.server import TritonServer
from ebjr.tasks.detection import DETECTOR_ROUTER, DETECTOR_STUDENT, DETECTOR_TEACHER
from ebjr.tasks.detection.data import make_scenes

log = logging.getLogger(__name__)


PAIRS = 3  # interleaved rounds behind the headline ratios


def benchmark(
    repo: Path,
    concurrencies: list[int],
    window_ms: int,
    images: int = 500,
    extra_fractions: tuple[float, ...] = (0.25, 0.75),
    server: TritonServer | None = None,
    rounds: int = PAIRS,
) -> dict:
    """Measure every case on ``server``, which serves ``bench_repository(repo)``, else on a new
    server for it (see ``report`` for the tables); the headline ratios from ``rounds``
    interleaved rounds."""
    if server is None:
        with tempfile.TemporaryDirectory() as tmp:
            bench_repo = bench_repository(repo, Path(tmp) / "repo")
            with TritonServer.on_free_ports(
                bench_repo, Path(tmp) / "server.log", restricted_apis=FOR_PERF_ANALYZER
            ) as started:
                return benchmark(
                    repo, concurrencies, window_ms, images, extra_fractions, started, rounds
                )
    calibration = read_calibration(calibration_path(repo))
    parity = repr(calibration.parity_thresholds[0])
    models = [
        ("student", None),
        ("student_python", None),
        ("teacher", None),
        (TEACHER_2T, None),
        ("teacher_python", None),
        (FLOOR, None),
        (ROUTER, "-inf"),
        (ROUTER, parity),
        (ROUTER, "inf"),
    ]
    cost_cases = [(CHEAP_TEACHER, None), (CHEAP_ROUTER, parity)]
    models += cost_cases
    sweep = [repr(calibration.thresholds_for("teacher_fraction", f)[0]) for f in extra_fractions]
    three_stage = (server.model_repository / THREE_STAGE).exists()
    results: dict = {
        "parity_threshold": calibration.parity_thresholds[0],
        "teacher_mflops": {
            "teacher": describe(onnx_path(repo, TEACHER)).flops / 1e6,
            CHEAP_TEACHER: describe(CHEAP_TEACHER_ONNX).flops / 1e6,
        },
        "cases": [],
        "sweep": [],
        "machine": machine(),
    }
    with Measurer(server, window_ms, images) as measure:
        for concurrency in concurrencies:
            for model, threshold in models:
                results["cases"].append(measure(model, threshold, concurrency))
        for threshold in sweep:
            results["sweep"].append(measure(ROUTER, threshold, max(concurrencies)))
        # The headline ratios, from back-to-back pairs: this machine's throughput drifts by
        # more than 10% within a run, so each ratio is the median of interleaved rounds.
        headline = [("teacher", None), (TEACHER_2T, None), (ROUTER, parity)]
        pairs = [*headline, (ROUTER_BLS, parity)]
        if three_stage:  # at its calibrated default, beside the two-stage router's
            pairs.append((THREE_STAGE, None))
        results["pairs"] = [
            [measure(model, threshold, max(concurrencies)) for model, threshold in pairs]
            for _ in range(rounds)
        ]
        results["latency_rounds"] = [  # c=1 p50 drifts as much: the same, one in flight
            [measure(model, threshold, min(concurrencies)) for model, threshold in headline]
            for _ in range(rounds)
        ]
        results["added_rounds"] = [  # what the router adds to the Student at c=1, the same
            [measure(model, threshold, min(concurrencies)) for model, threshold in ADDED]
            for _ in range(rounds)
        ]
        results["cost_rounds"] = [
            [measure(model, threshold, max(concurrencies)) for model, threshold in cost_cases]
            for _ in range(rounds)
        ]
        results["profile"] = profile_router(server, measure, parity, max(concurrencies))
        with Measurer(server, window_ms, images, encoded=True) as measure_bytes:
            results["encoded"] = encoded_rounds(
                measure, measure_bytes, parity, min(concurrencies), max(concurrencies), rounds
            )
    if (server.model_repository / DETECTOR_ROUTER).exists():
        results["detection"] = detection_rounds(server, window_ms, max(concurrencies), rounds)
        record = read_calibration(calibration_path(repo, DETECTOR_ROUTER))
        results["detection_flops_ratio"] = record.stage_flops[1] / record.parity_flops
    return results


def encoded_rounds(
    pixels: Measurer, encoded: Measurer, threshold: str, low: int, high: int, rounds: int
) -> list[list[dict]]:
    """The router at ``threshold`` on the same test images sent as pixels and as PNG files
    (``image_bytes``, decoded in the router), interleaved: ``rounds`` rounds at ``high``
    concurrency, then one at ``low`` (the latency decoding adds)."""
    high_rounds = [[m(ROUTER, threshold, high) for m in (pixels, encoded)] for _ in range(rounds)]
    return [*high_rounds, [m(ROUTER, threshold, low) for m in (pixels, encoded)]]


DETECTION_SCENES = 200
DETECTION_MODELS = (DETECTOR_STUDENT, DETECTOR_TEACHER, DETECTOR_ROUTER)


def detection_rounds(
    server: TritonServer, window_ms: int, concurrency: int, rounds: int
) -> list[list[dict]]:
    """``rounds`` interleaved rounds of the Student and Teacher detectors and the detector router
    at its calibrated default, one test scene per request."""
    scenes = make_scenes("test", DETECTION_SCENES).images
    with Measurer(server, window_ms, inputs=scenes) as measure:
        return [[measure(m, None, concurrency) for m in DETECTION_MODELS] for _ in range(rounds)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="perf_analyzer benchmark of the EBJR router.")
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPOSITORY)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--window-ms", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "BENCHMARKS.md")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument(
        "--from-json", type=Path, help="re-render the report from a run's JSON, measuring nothing"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.from_json:
        results = json.loads(args.from_json.read_text())
    else:
        results = benchmark(args.repo, args.concurrency, args.window_ms)
    plot = None if args.no_plot else args.out.with_name("benchmark_throughput.png")
    print(report(results, args.out, plot))
    if not args.from_json:
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
