"""Where the router's time goes: a py-spy profile of its process by category, and the CPU time
of every server process."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from ebjr.bench.perf import Measurer
from ebjr.core.layout import (
    ROUTER,
)
from ebjr.ops.server import TritonServer

# A sample with this frame anywhere in its stack is the later stages' (the Teacher's), whichever
# way the router runs them: in its process, over BLS or gRPC (waiting included).
LATER_STAGES = ("Teacher (in process, or over BLS with its waits)", "_call_stage")
# Where the router's own process spends its other samples, by the first matching frame from
# the leaf.
PROFILE_CATEGORIES = (
    ("Student (onnxruntime in process)", ("Session.run", "_run_local")),
    ("Student over BLS", ("call_model",)),
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
    """Share of samples in the later stages (``LATER_STAGES``) and per ``PROFILE_CATEGORIES``
    entry, from py-spy's raw stacks
    ``{"frame;frame;...": count}``; the rest is stub and Python-backend machinery."""
    total = sum(stacks.values()) or 1
    shares = dict.fromkeys([LATER_STAGES[0]] + [name for name, _ in PROFILE_CATEGORIES], 0.0)
    shares["Python-backend stub and idle waits"] = 0.0
    for stack, count in stacks.items():
        frames = stack.split(";")[::-1]
        matches = (
            name
            for frame in frames
            for name, keys in PROFILE_CATEGORIES
            if any(k in frame for k in keys)
        )
        if any(LATER_STAGES[1] in frame for frame in frames):
            name = LATER_STAGES[0]
        else:
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
        # this venv's py-spy with arguments built here, no shell
        spy = subprocess.Popen(  # nosec B603
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
