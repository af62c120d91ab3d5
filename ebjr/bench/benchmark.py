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
import csv
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from ebjr.build import model_config as mc
from ebjr.build.model_config import ModelServing
from ebjr.build.onnx_info import describe
from ebjr.build.repository import write_onnx_model
from ebjr.build.router_config import parse_stages, stages_parameter
from ebjr.core.calibration import read_calibration
from ebjr.core.layout import (
    DEFAULT_REPOSITORY,
    DETECTOR_ROUTER,
    DETECTOR_STUDENT,
    DETECTOR_TEACHER,
    PROJECT_ROOT,
    ROUTER,
    STUDENT,
    STUDENT_CANDIDATES,
    TEACHER,
    VERSION,
    calibration_path,
    candidate_gate,
    config_path,
    middle_stage,
    onnx_path,
)
from ebjr.core.tally import FLUSH_S
from ebjr.ops import prometheus
from ebjr.ops.server import TritonServer, pytriton_libs
from ebjr.tasks.classification.repository import build_repository
from ebjr.tasks.detection.data import make_scenes
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


def write_input_data(path: Path, images: np.ndarray) -> Path:
    """``--input-data`` JSON: one request per image. images: (N, 1, H, W) float32."""
    rows = [
        {"image": {"content": img.ravel().round(4).tolist(), "shape": list(img.shape)}}
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
) -> Measurement:
    """One ``perf_analyzer`` measurement at a fixed concurrency over gRPC."""
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
    rows = prometheus.samples(prometheus.scrape(metrics_url), "ebjr_rows_total")
    return {labels["route"]: v for labels, v in rows if labels.get("model") == model}


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
    ) -> None:
        """``images`` Fashion-MNIST test images, or ``inputs: (N, ...)`` (e.g. scenes)."""
        self.server, self.window_ms, self.images, self.inputs = server, window_ms, images, inputs

    def __enter__(self) -> Measurer:
        self._tmp = tempfile.TemporaryDirectory()
        inputs = self.inputs
        if inputs is None:
            inputs = data.load_split("test")[0][: self.images]
        self.input_file = write_input_data(Path(self._tmp.name) / "input.json", inputs)
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()

    def __call__(self, model: str, threshold: str | None, concurrency: int) -> dict:
        router = model in (ROUTER, THREE_STAGE, DETECTOR_ROUTER, CHEAP_ROUTER)
        before = routed_rows(self.server.metrics_url, model) if router else {}
        m = run_perf_analyzer(
            model, self.server.grpc_url, concurrency, self.input_file, self.window_ms, threshold
        )
        fraction = None
        if router:
            time.sleep(2 * FLUSH_S + 0.2)  # the router flushes its tally every FLUSH_S
            after = routed_rows(self.server.metrics_url, model)
            delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
            total = sum(delta.values())
            fraction = delta.get("teacher", 0.0) / total if total else None
        row = {
            "model": model,
            "threshold": threshold,
            "concurrency": concurrency,
            **m.__dict__,
            "teacher_fraction": fraction,
        }
        log.info(json.dumps(row))
        return row


PYTHON_WRAPPED = {"student": "student_python", "teacher": "teacher_python"}
FLOOR = "router_floor"
# The Teacher with both cores for its one instance: the headline compares the router with the
# faster of the two Teacher configs, measured in the same round.
TEACHER_2T = "teacher_2threads"
# A second Teacher cost for "when the cascade pays": the previous default Teacher's
# architecture (44 MFLOPs), a router that calls it instead of the default Teacher (same Student,
# same threshold, so the same Teacher share).
CHEAP_TEACHER, CHEAP_ROUTER = "teacher_44m", "ebjr_router_44m"
CHEAP_TEACHER_ONNX = STUDENT_CANDIDATES / "student_large_kd.onnx"
THREE_STAGE = "ebjr_three_stage"
PAIRS = 3  # interleaved rounds behind the headline ratios
# the three-stage router's models, renamed beside the default two-stage ones
THREE_STAGE_MODELS = {
    ROUTER: THREE_STAGE,
    STUDENT: "three_stage_1",
    middle_stage(1): "three_stage_2",
}
FLOOR_MODEL_PY = "from ebjr.serving.floor import TritonPythonModel  # noqa: F401\n"


def bench_repository(repo: Path, dest: Path) -> Path:
    """``repo`` plus the models measured beside it: the Python-wrapped Student and Teacher
    (same ONNX files, ``--backend python``), ``router_floor`` (the router's config served by
    a model that does no work: ``ebjr.serving.floor``) and, for a two-stage ``repo`` whose
    ``metrics.json`` compared three stages, that three-stage router (``add_three_stage``)."""
    shutil.copytree(repo, dest)
    for native, wrapped in PYTHON_WRAPPED.items():
        onnx = onnx_path(repo, native)
        batch = mc.read(config_path(repo, native)).max_batch_size
        python = ModelServing(backend="python")
        write_onnx_model(dest, wrapped, onnx, describe(onnx), batch, python)
    (dest / FLOOR / VERSION).mkdir(parents=True)
    (dest / FLOOR / VERSION / "model.py").write_text(FLOOR_MODEL_PY)
    floor = mc.edited(mc.read(config_path(repo, ROUTER)), name=FLOOR)
    floor.ClearField("parameters")
    mc.write(config_path(dest, FLOOR), floor)
    add_teacher_variants(repo, dest)
    metrics = repo / "metrics.json"
    two_stage = "middle_stages" not in mc.parameters(mc.read(config_path(repo, ROUTER)))
    if two_stage and metrics.exists() and "three_stage" in json.loads(metrics.read_text()):
        add_three_stage(repo, dest)
    return dest


def add_teacher_variants(repo: Path, dest: Path) -> None:
    """``TEACHER_2T`` (the Teacher with 2 intra-op threads), and ``CHEAP_TEACHER`` with
    ``CHEAP_ROUTER``, the default router calling it instead of the Teacher."""
    teacher = mc.read(config_path(repo, TEACHER))
    shutil.copytree(repo / TEACHER, dest / TEACHER_2T)
    two = mc.edited(teacher, {"intra_op_thread_count": 2}, name=TEACHER_2T)
    mc.write(config_path(dest, TEACHER_2T), two)
    shutil.copytree(repo / TEACHER, dest / CHEAP_TEACHER)
    shutil.copyfile(CHEAP_TEACHER_ONNX, onnx_path(dest, CHEAP_TEACHER))
    mc.write(config_path(dest, CHEAP_TEACHER), mc.edited(teacher, name=CHEAP_TEACHER))
    shutil.copytree(repo / ROUTER, dest / CHEAP_ROUTER)
    router = mc.read(config_path(repo, ROUTER))
    cheap = mc.edited(router, {"teacher_model": CHEAP_TEACHER}, name=CHEAP_ROUTER)
    mc.write(config_path(dest, CHEAP_ROUTER), cheap)


def add_three_stage(repo: Path, dest: Path) -> None:
    """The three-stage cascade ``make models`` compared (``metrics.json``'s ``three_stage``),
    written by the repository builder from the committed candidate Students and their gates,
    calibrated on validation, and served as ``THREE_STAGE`` beside the two-stage default (its
    Students renamed as ``THREE_STAGE_MODELS`` says)."""
    names = json.loads((repo / "metrics.json").read_text())["three_stage"]["stages"][:2]
    first, second = (STUDENT_CANDIDATES / f"{name}.onnx" for name in names)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_repository(
            first,
            onnx_path(repo, TEACHER),
            work,
            validation=data.load_split("val"),
            middle=(second,),
            gates=(candidate_gate(first), candidate_gate(second)),
        )
        for model, name in THREE_STAGE_MODELS.items():
            shutil.copytree(work / model, dest / name)
            config = mc.read(config_path(work, model))
            overrides = {}
            if model == ROUTER:
                ((_, image, logits),) = parse_stages(mc.parameters(config)["middle_stages"])
                second_stage = (THREE_STAGE_MODELS[middle_stage(1)], image, logits)
                overrides = {
                    "student_model": THREE_STAGE_MODELS[STUDENT],
                    "middle_stages": stages_parameter([second_stage]),
                }
            mc.write(config_path(dest, name), mc.edited(config, overrides, name=name))


def benchmark(
    repo: Path,
    concurrencies: list[int],
    window_ms: int,
    images: int = 500,
    extra_fractions: tuple[float, ...] = (0.25, 0.75),
    server: TritonServer | None = None,
) -> dict:
    """Measure every case on ``server``, which serves ``bench_repository(repo)``, else on a new
    server for it (see ``report`` for the tables)."""
    if server is None:
        with tempfile.TemporaryDirectory() as tmp:
            bench_repo = bench_repository(repo, Path(tmp) / "repo")
            with TritonServer.on_free_ports(bench_repo, Path(tmp) / "server.log") as started:
                return benchmark(repo, concurrencies, window_ms, images, extra_fractions, started)
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
        # more than 10% within a run, so each ratio is the median of PAIRS interleaved pairs.
        pairs = [("teacher", None), (TEACHER_2T, None), (ROUTER, parity)]
        if three_stage:  # at its calibrated default, beside the two-stage router's
            pairs.append((THREE_STAGE, None))
        results["pairs"] = [
            [measure(model, threshold, max(concurrencies)) for model, threshold in pairs]
            for _ in range(PAIRS)
        ]
        results["cost_rounds"] = [
            [measure(model, threshold, max(concurrencies)) for model, threshold in cost_cases]
            for _ in range(PAIRS)
        ]
        results["profile"] = profile_router(server, measure, parity, max(concurrencies))
    if (server.model_repository / DETECTOR_ROUTER).exists():
        results["detection"] = detection_rounds(server, window_ms, max(concurrencies))
        record = read_calibration(calibration_path(repo, DETECTOR_ROUTER))
        results["detection_flops_ratio"] = record.stage_flops[1] / record.parity_flops
    return results


DETECTION_SCENES = 200
DETECTION_MODELS = (DETECTOR_STUDENT, DETECTOR_TEACHER, DETECTOR_ROUTER)


def detection_rounds(server: TritonServer, window_ms: int, concurrency: int) -> list[list[dict]]:
    """``PAIRS`` interleaved rounds of the Student and Teacher detectors and the detector router
    at its calibrated default, one test scene per request."""
    scenes = make_scenes("test", DETECTION_SCENES).images
    with Measurer(server, window_ms, inputs=scenes) as measure:
        return [[measure(m, None, concurrency) for m in DETECTION_MODELS] for _ in range(PAIRS)]


# Where the router's own process spends its samples, by the first matching frame from the leaf.
PROFILE_CATEGORIES = (
    ("Student (onnxruntime in process)", ("Session.run", "_run_student")),
    ("Teacher call (BLS, waiting included)", ("call_model",)),
    ("metrics tally", ("tally.py", "metrics.py")),
    ("routing score and decision", ("scores.py", "routing.py", "specialized.py")),
    (
        "request parsing (inputs, parameters, checks)",
        ("resolve_threshold", "parse_threshold", "check_batch", "get_input_tensor"),
    ),
    (
        "response building (output tensors)",
        ("pb_utils.Tensor", "InferenceResponse", "triton_python_backend_utils", "_route.<locals>"),
    ),
    ("other router Python", ("router.py",)),
)


def categorise(stacks: dict[str, int]) -> dict[str, float]:
    """Share of samples per ``PROFILE_CATEGORIES`` entry, from py-spy's raw stacks
    ``{"frame;frame;...": count}``; the rest is stub and Python-backend machinery."""
    total = sum(stacks.values()) or 1
    shares = dict.fromkeys([name for name, _ in PROFILE_CATEGORIES], 0.0)
    shares["Python-backend stub and idle waits"] = 0.0
    for stack, count in stacks.items():
        frames = stack.split(";")[::-1]
        matches = (
            name
            for frame in frames
            for name, keys in PROFILE_CATEGORIES
            if any(k in frame for k in keys)
        )
        name = next(matches, "Python-backend stub and idle waits")
        shares[name] += count / total
    return shares


def profile_router(
    server: TritonServer, measure: Measurer, threshold: str, concurrency: int
) -> dict:
    """Sample the router's stub process with py-spy while perf_analyzer loads it, and take
    every process's CPU time over the same run."""
    root = psutil.Process(server.process.pid)
    stubs = [p for p in root.children(recursive=True) if f"/{ROUTER}/" in " ".join(p.cmdline())]
    before = cpu_seconds(root)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "router.txt"
        seconds = max(2, measure.window_ms * 2 // 1000)
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(stubs[0].pid),
                "--format",
                "raw",
                "--rate",
                "250",
                "--duration",
                str(seconds),
                "--nonblocking",
                "--output",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        row = measure(ROUTER, threshold, concurrency)
        spy.wait()
        stacks: dict[str, int] = {}
        for line in raw.read_text().splitlines() if raw.exists() else []:
            stack, count = line.rsplit(" ", 1)
            stacks[stack] = stacks.get(stack, 0) + int(count)
    after = cpu_seconds(root)
    return {
        "row": row,
        "samples": sum(stacks.values()),
        "shares": categorise(stacks),
        "cpu_seconds": {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after},
    }


def cpu_seconds(root: psutil.Process) -> dict[str, float]:
    """CPU seconds (user + system) so far: the server, the router's stubs, other stubs."""
    totals: dict[str, float] = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            times, command = proc.cpu_times(), " ".join(proc.cmdline())
        except psutil.NoSuchProcess:
            continue
        name = (
            "tritonserver (core, gRPC, native models)"
            if proc.pid == root.pid
            else "router stubs"
            if f"/{ROUTER}/" in command
            else "other Python stubs"
        )
        totals[name] = totals.get(name, 0.0) + times.user + times.system
    return totals


def _row(results: dict, model: str, threshold: str | None, concurrency: int) -> dict:
    return next(
        r
        for r in results["cases"]
        if (r["model"], r["threshold"], r["concurrency"]) == (model, threshold, concurrency)
    )


def report(results: dict, out: Path, plot: Path | None) -> str:
    """``BENCHMARKS.md`` text (and the plot) from ``benchmark``'s results."""
    parity = repr(results["parity_threshold"])
    low, high = (
        min(r["concurrency"] for r in results["cases"]),
        max(r["concurrency"] for r in results["cases"]),
    )

    def row(model, threshold=None, c=high):
        return _row(results, model, threshold, c)

    s, t = row("student"), row("teacher")
    router, floor = row(ROUTER, parity), row(ROUTER, "-inf")
    fraction = router["teacher_fraction"] or 0.0
    ideal = ideal_cascade(s["throughput"], t["throughput"], fraction)
    added = row(ROUTER, "-inf", low)["p50_ms"] - row("student", None, low)["p50_ms"]
    ceiling = row(FLOOR)["throughput"] / s["throughput"]
    # A router that costs no more than the floor per request and calls the Teacher for f of
    # the rows: the most a Python-backend router can serve at this Teacher share.
    bound = ideal_cascade(row(FLOOR)["throughput"], t["throughput"], fraction)
    best = max(t["throughput"], row(TEACHER_2T)["throughput"])
    headroom = ideal_cascade(floor["throughput"], best, fraction) / best
    targets = [
        (f"router at parity / ideal cascade, c={high}", router["throughput"] / ideal, ">= 0.85"),
        (
            f"router at -inf / native Student, c={high}",
            floor["throughput"] / s["throughput"],
            ">= 0.7",
        ),
        (f"added p50 at c={low} over the native Student (ms)", added, "<= 0.6"),
        *[
            (
                f"native / Python-wrapped {m}, c={c}",
                row(m, None, c)["throughput"] / row(PYTHON_WRAPPED[m], None, c)["throughput"],
                ">= 1",
            )
            for m in PYTHON_WRAPPED
            for c in (low, high)
        ],
        (
            f"router at parity / Teacher (the faster of its two configs), c={high}, median of "
            f"{len(results['pairs'])} interleaved rounds",
            over_best_teacher(results["pairs"]),
            ">= 2",
        ),
        (
            f"router at parity / Teacher (the faster of its two configs), p50 latency at c={low}",
            row(ROUTER, parity, low)["p50_ms"] / fastest_p50(results, low),
            "<= 0.6",
        ),
    ]
    if len(results["pairs"][0]) == 4:
        targets.append(
            (
                f"three-stage / two-stage router at their defaults, c={high}, median of "
                f"{len(results['pairs'])} interleaved rounds",
                paired_ratio(results["pairs"], 3, 2),
                "> 1 to serve three stages",
            )
        )
    lines = [
        "# BENCHMARKS (generated by `make bench`; do not edit)",
        "",
        f"Machine: {results['machine']}. Triton 2.51.0 (nvidia-pytriton 0.7.0), CPU only. "
        "Student and Teacher on Triton's native ONNX Runtime backend (built from "
        "`third_party/`); `*_python` are the same ONNX files wrapped in the Python backend; "
        f"`{FLOOR}` is the router's interface served by a model that does no work (the "
        "Python backend's floor). `perf_analyzer` over gRPC, one real Fashion-MNIST test image "
        "per request, every row measured on one server in this one run.",
        "",
        "## Targets (ratios from this run)",
        "",
        "| measure | value | target | met |",
        "|---|---|---|---|",
        *[
            f"| {name} | {value:.2f} | {target} | {'yes' if _meets(value, target) else 'no'} |"
            for name, value, target in targets
        ],
        f"| bound: `{FLOOR}` / native Student, c={high} | {ceiling:.2f} | the most any "
        "Python-backend router reaches at -inf | - |",
        f"| bound: `1 / (1/X_{FLOOR} + f/X_teacher)` / ideal cascade, c={high} | "
        f"{bound / ideal:.2f} | the most any Python-backend router reaches at parity | - |",
        f"| bound: `1 / (1/X_router(-inf) + f/X_best_teacher)` / X_best_teacher, c={high} | "
        f"{headroom:.2f} | the most this router reaches against the faster Teacher config if "
        "its Teacher calls cost only the Teacher's own work | - |",
        "",
        f"Ideal cascade = `1 / (1/X_student + f/X_teacher)` = {ideal:.0f} inf/s, with `f` = "
        f"{fraction:.1%} the router's measured Teacher share at its "
        f"calibrated default threshold {parity}, and `X` the native models' own throughputs.",
    ]
    lines += cost_lines(results, parity, high)
    lines += latency_lines(results, parity, low, high)
    rounds = [r for p in results["pairs"] + results["cost_rounds"] for r in p]
    lines += ["", "## Every measurement", "", *MEASUREMENT_HEADER]
    for r in results["cases"] + results["sweep"] + rounds:
        frac = "-" if r["teacher_fraction"] is None else f"{r['teacher_fraction']:.1%}"
        lines.append(
            f"| {r['model']} | {r['threshold'] or '-'} | {r['concurrency']} | "
            f"{r['throughput']:.1f} | {r['p50_ms']:.3f} | {r['p95_ms']:.3f} | {r['p99_ms']:.3f} "
            f"| {frac} |"
        )
    profile = results["profile"]
    inferences = profile["row"]["throughput"]
    lines += [
        "",
        f"## Where the router's time goes (threshold {parity}, c={high})",
        "",
        f"CPU seconds per process over the profiled run ({inferences:.0f} inf/s; "
        "perf_analyzer itself takes the rest of the 2 cores):",
        "",
        "| process | CPU seconds |",
        "|---|---|",
        *[f"| {name} | {sec:.2f} |" for name, sec in profile["cpu_seconds"].items()],
        "",
        f"py-spy samples of one router process ({profile['samples']} samples, 250/s):",
        "",
        "| where | share of samples |",
        "|---|---|",
        *[f"| {name} | {share:.1%} |" for name, share in profile["shares"].items()],
    ]
    if "detection" in results:
        lines += detection_report(results)
    if plot is not None:
        _plot(results, plot)
        lines += ["", f"![throughput and p95 latency against the threshold]({plot.name})"]
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    return text


def detection_report(results: dict) -> list[str]:
    """The detector router's section: its served speed-up over the Teacher detector at its
    default point, beside the FLOPs reduction calibration expects there."""
    rounds = results["detection"]
    c = rounds[0][0]["concurrency"]
    return [
        "",
        f"## Detection: `{DETECTOR_ROUTER}` at its default (97% of the Teacher's validation mAP)",
        "",
        f"One 96x96 test scene per request, c={c}, {len(rounds)} interleaved rounds.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| router / Teacher detector throughput, median of rounds | "
        f"{paired_ratio(rounds, 2, 1):.2f} |",
        f"| Student detector / Teacher detector throughput, median of rounds | "
        f"{paired_ratio(rounds, 0, 1):.2f} |",
        f"| fewer FLOPs than the Teacher at this point (calibration, validation) | "
        f"{results['detection_flops_ratio']:.2f}x |",
        "",
        "| round | model | inferences/s | p50 ms | p95 ms | to Teacher |",
        "|---|---|---|---|---|---|",
        *[
            f"| {i} | {r['model']} | {r['throughput']:.1f} | {r['p50_ms']:.2f} | "
            f"{r['p95_ms']:.2f} | "
            f"{'-' if r['teacher_fraction'] is None else format(r['teacher_fraction'], '.1%')} |"
            for i, round_ in enumerate(rounds, 1)
            for r in round_
        ],
    ]


MEASUREMENT_HEADER = [
    "| model | threshold | concurrency | inferences/s | p50 ms | p95 ms | p99 ms | to Teacher |",
    "|---|---|---|---|---|---|---|---|",
]


def latency_lines(results: dict, parity: str, low: int, high: int) -> list[str]:
    """Latency as the paper's Table 1 reports it: the Teacher alone against the router at its
    calibrated default, at one request in flight and under load."""
    lines = [
        "",
        "## Latency: the Teacher alone and the router at its default",
        "",
        "| model | concurrency | p50 ms | p99 ms | router / this Teacher, p50 | router / this "
        "Teacher, p99 |",
        "|---|---|---|---|---|---|",
    ]
    for c in (low, high):
        r = _row(results, ROUTER, parity, c)
        for teacher in ("teacher", TEACHER_2T):
            t = _row(results, teacher, None, c)
            lines.append(
                f"| {teacher} | {c} | {t['p50_ms']:.3f} | {t['p99_ms']:.3f} | "
                f"{r['p50_ms'] / t['p50_ms']:.2f} | {r['p99_ms'] / t['p99_ms']:.2f} |"
            )
        lines.append(f"| {ROUTER} at {parity} | {c} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | | |")
    return lines


def fastest_p50(results: dict, concurrency: int) -> float:
    """The lower p50 of the Teacher's two configs at ``concurrency``."""
    return min(_row(results, m, None, concurrency)["p50_ms"] for m in ("teacher", TEACHER_2T))


def break_even_ms(router_ms: float, teacher_fraction: float) -> float:
    """The Teacher cost per image above which a router that costs ``router_ms`` per image on
    its own (Python backend and Student) and sends ``teacher_fraction`` of the images on beats
    the Teacher alone: ``router_ms + f * T < T`` when ``T > router_ms / (1 - f)``."""
    return router_ms / (1.0 - teacher_fraction)


def cost_lines(results: dict, parity: str, high: int) -> list[str]:
    """When the cascade pays: the break-even Teacher cost from the router's own cost (at
    ``-inf``: the Python backend's floor plus the Student), checked against two Teachers of
    different cost served in the same run, each behind the same router at the same threshold."""
    alone = 1000.0 / _row(results, ROUTER, "-inf", high)["throughput"]  # ms per image, c=high
    alone_c1 = _row(results, ROUTER, "-inf", 1)["p50_ms"]
    f = _row(results, ROUTER, parity, high)["teacher_fraction"] or 0.0
    checks = [
        ("the default Teacher", results["pairs"], 0, 2, "teacher"),
        ("the previous default's architecture", results["cost_rounds"], 0, 1, CHEAP_TEACHER),
    ]
    lines = [
        "",
        "## When the cascade pays",
        "",
        f"Served on its own (`threshold=-inf`), the router costs **{alone:.3f} ms per image** "
        f"at c={high} (1 / its throughput: the Python backend's floor plus the Student) and "
        f"**{alone_c1:.3f} ms** p50 at c=1. A router that sends a share `f` of the images on "
        "beats the Teacher alone when the Teacher costs more than `router / (1 - f)` per "
        "image:",
        "",
        f"| Teacher share f | break-even Teacher ms/image, c={high} | break-even Teacher p50, "
        "c=1 |",
        "|---|---|---|",
        *[
            f"| {share:.0%}{' (this router at its default)' if share == f else ''} | "
            f"{break_even_ms(alone, share):.3f} | {break_even_ms(alone_c1, share):.3f} |"
            for share in sorted({0.1, 0.25, f, 0.5})
        ],
        "",
        f"Checked on two Teachers, each behind the same router at {parity} ({f:.1%} to the "
        f"Teacher), c={high}, medians of {len(results['pairs'])} interleaved rounds; predicted "
        "= `1 / (1/X_router(-inf) + f/X_teacher)`:",
        "",
        "| Teacher | MFLOPs | Teacher ms/image | break-even ms/image | predicted router / "
        "Teacher | measured router / Teacher |",
        "|---|---|---|---|---|---|",
    ]
    for name, rounds, teacher, router, model in checks:
        x_t = float(np.median([r[teacher]["throughput"] for r in rounds]))
        predicted = ideal_cascade(1000.0 / alone, x_t, f) / x_t
        lines.append(
            f"| {name} (`{model}`) | {results['teacher_mflops'][model]:.0f} | "
            f"{1000.0 / x_t:.3f} | {break_even_ms(alone, f):.3f} | "
            f"{predicted:.2f} | {paired_ratio(rounds, router, teacher):.2f} |"
        )
    return lines


def over_best_teacher(pairs: list[list[dict]]) -> float:
    """The median over rounds of the router (``round[2]``) over the faster Teacher config of
    that round (``round[0]``, ``round[1]``)."""
    return float(
        np.median([p[2]["throughput"] / max(p[0]["throughput"], p[1]["throughput"]) for p in pairs])
    )


def paired_ratio(pairs: list[list[dict]], top: int, bottom: int) -> float:
    """The median over interleaved rounds of ``round[top] / round[bottom]`` throughput."""
    return float(np.median([p[top]["throughput"] / p[bottom]["throughput"] for p in pairs]))


def _meets(value: float, target: str) -> bool:
    op, bound = target.split()[:2]
    return {">=": value >= float(bound), "<=": value <= float(bound), ">": value > float(bound)}[op]


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
    rows = [
        r
        for r in results["cases"] + results["sweep"]
        if r["model"] == ROUTER and r["concurrency"] == c
    ]
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
