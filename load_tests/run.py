"""Run the Locust users headless against a real server and judge the run.

    python load_tests/run.py --users 8 --run-time 60s --p95-ms 250          # make load
    python load_tests/run.py --run-time 5m --check-memory --out soak        # make soak

Starts its own ``tritonserver`` on free ports unless ``--http-url``/``--grpc-url`` are given.
Writes Locust's CSV and HTML reports and ``REPORT.md`` to ``--out``. Exits non-zero if any
request failed (errors and wrong answers alike), if the aggregated p95 exceeds ``--p95-ms``, or,
with ``--check-memory``, if the server's resident memory (tritonserver and its Python stubs)
grew by more than ``--max-growth`` from the end of minute 1 (or of the first sixth of a shorter
run) to the end.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from ebjr.ops.server import PROJECT_ROOT, TritonServer

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def run_seconds(run_time: str) -> float:
    """``--run-time`` in seconds, parsed by Locust's own parser. It runs in a child process:
    importing ``locust`` monkey-patches the importing process with gevent, which would turn
    this script's threads (and a test runner's) into greenlets."""
    code = "import sys; from locust.util.timespan import parse_timespan as p; print(p(sys.argv[1]))"
    result = subprocess.run([sys.executable, "-c", code, run_time], capture_output=True, text=True)
    if result.returncode != 0:
        raise ValueError(result.stderr.strip().splitlines()[-1].split(": ", 1)[-1])
    return float(result.stdout)


def resident_mb(pid: int) -> float:
    """Resident memory of a process and all its children (the Python-backend stubs), in MB."""
    root = psutil.Process(pid)
    processes = [root, *root.children(recursive=True)]
    return sum(p.memory_info().rss for p in processes if p.is_running()) / 2**20


class MemorySampler(threading.Thread):
    def __init__(self, pid: int, every: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self.done.wait(self.every):
            self.samples.append((time.monotonic() - start, resident_mb(self.pid)))


def aggregated(stats_csv: Path) -> dict[str, str]:
    return next(r for r in csv.DictReader(stats_csv.open()) if r["Name"] == "Aggregated")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--http-url", help="use a running server (host:port) instead")
    parser.add_argument("--grpc-url", help="its gRPC host:port")
    parser.add_argument("--server-pid", type=int, help="its tritonserver pid, for --check-memory")
    parser.add_argument("--repo", type=Path, default=PROJECT_ROOT / "model_repository")
    parser.add_argument("--users", type=int, default=8, help="concurrent users (half HTTP)")
    parser.add_argument("--spawn-rate", type=float, default=8)
    parser.add_argument("--run-time", default="60s")
    parser.add_argument("--p95-ms", type=float, default=1000.0, help="fail above this p95")
    parser.add_argument("--check-memory", action="store_true")
    parser.add_argument("--max-growth", type=float, default=0.10)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "load")
    args = parser.parse_args(argv)
    try:
        duration = run_seconds(args.run_time)
    except ValueError as err:
        parser.error(f"--run-time: {err}")
    args.out.mkdir(parents=True, exist_ok=True)

    server = None
    if args.http_url is None:
        log = Path(tempfile.mkdtemp()) / "tritonserver.log"
        server = TritonServer.on_free_ports(args.repo, log)
        server.__enter__()
        args.http_url, args.grpc_url = server.http_url, server.grpc_url
    elif args.check_memory and args.server_pid is None:
        parser.error("--check-memory with a running server needs --server-pid")
    pid = server.process.pid if server else args.server_pid
    sampler = MemorySampler(pid, min(10.0, duration / 12)) if args.check_memory else None
    try:
        if sampler:
            sampler.start()
        env = dict(os.environ, EBJR_GRPC_URL=args.grpc_url, EBJR_REPO=str(args.repo))
        locust = Path(sys.executable).with_name("locust")
        command = [
            str(locust),
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--only-summary",
            "-u",
            str(args.users),
            "-r",
            str(args.spawn_rate),
            "-t",
            args.run_time,
            "--host",
            f"http://{args.http_url}",
            "--csv",
            str(args.out / "locust"),
            "--html",
            str(args.out / "locust.html"),
            "--stop-timeout",
            "10",
            "RouterHttpUser",
            "RouterGrpcUser",
        ]
        print("$ " + " ".join(command), flush=True)
        code = subprocess.run(command, env=env).returncode
    finally:
        if sampler:
            sampler.done.set()
            sampler.join()
        if server:
            server.stop()

    stats = aggregated(args.out / "locust_stats.csv")
    requests, failures = int(stats["Request Count"]), int(stats["Failure Count"])
    p95 = float(stats["95%"])
    verdicts = [
        (failures == 0, f"failed requests: {failures} of {requests}"),
        (p95 <= args.p95_ms, f"aggregated p95 {p95:.0f} ms (limit {args.p95_ms:.0f} ms)"),
        (code in (0, 1) and requests > 0, f"locust exit code {code}, {requests} requests"),
    ]
    lines = [
        "# Load run report (generated by load_tests/run.py)",
        "",
        f"- run: {args.users} users ({args.run_time}, HTTP and gRPC, real test images, "
        f"thresholds drawn per request), spawn rate {args.spawn_rate}/s",
        f"- requests: {requests}, failures: {failures}, "
        f"throughput {float(stats['Requests/s']):.1f} req/s",
        f"- latency: median {stats['50%']} ms, p95 {stats['95%']} ms, p99 {stats['99%']} ms",
    ]
    if sampler and sampler.samples:
        mark = 60.0 if duration >= 120 else duration / 6  # minute 1, or a sixth of a short run
        first = next((mb for t, mb in sampler.samples if t >= mark), sampler.samples[0][1])
        last = sampler.samples[-1][1]
        growth = (last - first) / first
        lines.append(
            f"- server resident memory (tritonserver + stubs): {first:.1f} MB at "
            f"{mark:.0f} s, {last:.1f} MB at the end: growth {growth:+.2%} "
            f"(limit {args.max_growth:.0%}); {len(sampler.samples)} samples"
        )
        verdicts.append((growth <= args.max_growth, f"memory growth {growth:+.2%}"))
    lines += ["", "Verdict:", *[f"- {'PASS' if ok else 'FAIL'}: {what}" for ok, what in verdicts]]
    text = "\n".join(lines) + "\n"
    (args.out / "REPORT.md").write_text(text)
    print(text)
    return 0 if all(ok for ok, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
