"""Speed of the served system under load, with Triton's own ``perf_analyzer`` (``make bench``).

    python -m ebjr.benchmark [--concurrency 1 4 16] [--window-ms 3000] [--out BENCHMARKS.md]

Starts the real server on the repository, feeds real Fashion-MNIST test images over gRPC
(one image per request) and measures, in one run: the Student alone, the Teacher alone, and
the router at ``threshold=-inf``, ``+inf`` and the calibrated Teacher-parity threshold. The
router's Teacher fraction comes from its own Prometheus counters. From the same run it computes
the ideal cascade throughput ``1 / (1/X_student + f/X_teacher)``, the router's efficiency
(measured / ideal) and its speed-up over the Teacher alone, and writes a Markdown report and a
plot of throughput and p95 latency against the threshold.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ebjr import data
from ebjr.calibration import CALIBRATION_FILE, Calibration
from ebjr.server import PROJECT_ROOT, TritonServer, pytriton_libs

PERF_LIBS = PROJECT_ROOT / "build" / "perf-libs"
ROUTER = "ebjr_router"


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


def write_input_data(path: Path, images: np.ndarray) -> Path:
    """``--input-data`` JSON: one request per image. images: (N, 1, 28, 28) float32."""
    rows = [{"image": {"content": img.ravel().round(4).tolist(), "shape": list(img.shape)}}
            for img in images]  # fmt: skip
    path.write_text(json.dumps({"data": rows}))
    return path


@dataclass(frozen=True)
class Measurement:
    throughput: float  # inferences per second
    p50_ms: float
    p95_ms: float
    p99_ms: float


def run_perf_analyzer(
    model: str, grpc_url: str, concurrency: int, input_file: Path, window_ms: int,
    threshold: str | None = None,
) -> Measurement:  # fmt: skip
    """One ``perf_analyzer`` measurement at a fixed concurrency over gRPC."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.csv"
        command = [
            perf_analyzer_binary(), "-m", model, "-u", grpc_url, "-i", "grpc",
            "--concurrency-range", f"{concurrency}:{concurrency}", "--input-data", str(input_file),
            "--measurement-interval", str(window_ms), "--stability-percentage", "999",
            "--max-trials", "3", "-f", str(report),
        ]  # fmt: skip
        if threshold is not None:
            command += ["--request-parameter", f"threshold:{threshold}:string"]
        result = subprocess.run(command, env=perf_analyzer_env(), capture_output=True, text=True)
        if result.returncode != 0 or not report.exists():
            raise RuntimeError(f"perf_analyzer failed:\n{result.stdout[-2000:]}{result.stderr}")
        row = next(csv.DictReader(report.open()))
    return Measurement(
        throughput=float(row["Inferences/Second"]),
        p50_ms=float(row["p50 latency"]) / 1000,
        p95_ms=float(row["p95 latency"]) / 1000,
        p99_ms=float(row["p99 latency"]) / 1000,
    )


def routed_rows(metrics_url: str, model: str = ROUTER) -> dict[str, float]:
    """The router's ``ebjr_rows_total`` counters by route."""
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    pattern = r'ebjr_rows_total\{model="' + re.escape(model) + r'",route="(\w+)"\} (\S+)'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text)}


def ideal_cascade(x_student: float, x_teacher: float, teacher_fraction: float) -> float:
    """Throughput of a cascade that wastes nothing: every image pays the Student, a fraction
    ``f`` also pays the Teacher: ``1 / (1/X_s + f/X_t)``."""
    return 1.0 / (1.0 / x_student + teacher_fraction / x_teacher)


def benchmark(
    repo: Path, concurrencies: list[int], window_ms: int, images: int = 500,
    extra_fractions: tuple[float, ...] = (0.25, 0.6), server: TritonServer | None = None,
) -> dict:  # fmt: skip
    """Run every case on ``server`` (else a new one on ``repo``); return the raw results
    (see ``report`` for the table)."""
    if server is None:
        with (
            tempfile.TemporaryDirectory() as tmp,
            TritonServer.on_free_ports(repo, Path(tmp) / "server.log") as started,
        ):
            return benchmark(repo, concurrencies, window_ms, images, extra_fractions, started)
    calibration = Calibration.load(repo / ROUTER / CALIBRATION_FILE)
    parity = calibration.default_threshold
    cases = [("student", None), ("teacher", None), (ROUTER, "-inf"), (ROUTER, "inf"),
             (ROUTER, repr(parity))]  # fmt: skip
    sweep = [repr(calibration.for_teacher_fraction(f)) for f in extra_fractions]
    results: dict = {"parity_threshold": parity, "cases": [], "sweep": [], "machine": machine()}
    with Measurer(server, window_ms, images) as measure:
        for concurrency in concurrencies:
            for model, threshold in cases:
                results["cases"].append(measure(model, threshold, concurrency))
        for threshold in sweep:
            results["sweep"].append(measure(ROUTER, threshold, max(concurrencies)))
    return results


class Measurer:
    """``measure(model, threshold, concurrency) -> row``: one perf_analyzer run on ``server``
    with real test images, plus the router's Teacher fraction from its own counters."""

    def __init__(self, server: TritonServer, window_ms: int, images: int = 500) -> None:
        self.server, self.window_ms, self.images = server, window_ms, images

    def __enter__(self) -> Measurer:
        self._tmp = tempfile.TemporaryDirectory()
        test_images = data.load_split("test")[0][: self.images]
        self.input_file = write_input_data(Path(self._tmp.name) / "input.json", test_images)
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()

    def __call__(self, model: str, threshold: str | None, concurrency: int) -> dict:
        router = model != "student" and model != "teacher"
        before = routed_rows(self.server.metrics_url, model) if router else {}
        m = run_perf_analyzer(model, self.server.grpc_url, concurrency, self.input_file,
                              self.window_ms, threshold)  # fmt: skip
        fraction = None
        if router:
            after = routed_rows(self.server.metrics_url, model)
            delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
            total = sum(delta.values())
            fraction = delta.get("teacher", 0.0) / total if total else None
        row = {"model": model, "threshold": threshold, "concurrency": concurrency,
               **m.__dict__, "teacher_fraction": fraction}  # fmt: skip
        print(json.dumps(row), flush=True)
        return row


def _row(results: dict, model: str, threshold: str | None, concurrency: int) -> dict:
    return next(r for r in results["cases"] if (r["model"], r["threshold"], r["concurrency"])
                == (model, threshold, concurrency))  # fmt: skip


def report(results: dict, out: Path, plot: Path | None) -> str:
    """``BENCHMARKS.md`` text (and the plot) from ``benchmark``'s results."""
    parity = repr(results["parity_threshold"])
    concurrencies = sorted({r["concurrency"] for r in results["cases"]})
    lines = [
        "# BENCHMARKS (generated by `make bench`; do not edit)",
        "",
        f"Machine: {results['machine']}. Triton 2.51.0 (nvidia-pytriton 0.7.0), Student and "
        "Teacher on onnxruntime inside the Python backend, CPU only. `perf_analyzer` over gRPC, "
        "one real Fashion-MNIST test image per request, all rows measured in this one run.",
        "",
        "| model | threshold | concurrency | inferences/s | p50 ms | p95 ms | p99 ms "
        "| to Teacher |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["cases"] + results["sweep"]:
        frac = "-" if r["teacher_fraction"] is None else f"{r['teacher_fraction']:.1%}"
        lines.append(
            f"| {r['model']} | {r['threshold'] or '-'} | {r['concurrency']} | "
            f"{r['throughput']:.1f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {frac} |"
        )
    lines += [
        "",
        f"## The router against the ideal cascade (Teacher-parity threshold {parity})",
        "",
        "Ideal cascade = `1 / (1/X_student + f/X_teacher)` with `f` the router's measured "
        "Teacher fraction and `X` the models' own throughputs at the same concurrency.",
        "",
        "| concurrency | router inf/s | ideal inf/s | efficiency | speed-up vs Teacher | "
        "router(-inf) / Student | added p50 at -inf (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in concurrencies:
        s, t = _row(results, "student", None, c), _row(results, "teacher", None, c)
        router, floor = _row(results, ROUTER, parity, c), _row(results, ROUTER, "-inf", c)
        ideal = ideal_cascade(s["throughput"], t["throughput"], router["teacher_fraction"] or 0.0)
        lines.append(
            f"| {c} | {router['throughput']:.1f} | {ideal:.1f} | "
            f"{router['throughput'] / ideal:.2f} | {router['throughput'] / t['throughput']:.2f}x "
            f"| {floor['throughput'] / s['throughput']:.2f} | "
            f"{floor['p50_ms'] - s['p50_ms']:.3f} |"
        )
    if plot is not None:
        _plot(results, plot)
        lines += ["", f"![throughput and p95 latency against the threshold]({plot.name})", ""]
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    return text


def machine() -> str:
    """Where a benchmark ran, for its report."""
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}; {_cpu_name()}"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU model unknown"


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = max(r["concurrency"] for r in results["cases"])
    rows = [r for r in results["cases"] + results["sweep"]
            if r["model"] == ROUTER and r["concurrency"] == c]  # fmt: skip
    rows.sort(key=lambda r: r["teacher_fraction"])
    x = [100 * r["teacher_fraction"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(x, [r["throughput"] for r in rows], "o-", label="router throughput")
    ax.set_xlabel("measured share of images sent to the Teacher (%) - threshold rising")
    ax.set_ylabel("inferences / s")
    ax2 = ax.twinx()
    ax2.plot(x, [r["p95_ms"] for r in rows], "s--", color="C1", label="p95 latency")
    ax2.set_ylabel("p95 latency (ms)")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="center right")
    ax.set_title(f"EBJR router, concurrency {c}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="perf_analyzer benchmark of the EBJR router.")
    parser.add_argument("--repo", type=Path, default=PROJECT_ROOT / "model_repository")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--window-ms", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "BENCHMARKS.md")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument(
        "--from-json", type=Path, help="re-render the report from a run's JSON, measuring nothing"
    )
    args = parser.parse_args(argv)
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
