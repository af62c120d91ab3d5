"""One pid file per server started by ``make serve``, and ``make stop`` on top of them.

    python -m ebjr.ops.pidfile [--http-port 8000] [--all]      # what `make stop [ALL=1]` runs

Each launcher (``python -m ebjr.ops.server``) writes ``.run/tritonserver-<http port>.pid``: a JSON
record of its pid, ports and repository. ``stop`` sends SIGTERM to the launcher serving the
given HTTP port (the launcher then stops its ``tritonserver``), or with ``--all`` to every
launcher started from this checkout. A pid file whose process is gone is stale: it is removed
and reported.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from ebjr.core.layout import PROJECT_ROOT

RUN_DIR = PROJECT_ROOT / ".run"
LAUNCHER = "ebjr.ops.server"  # what a live launcher's command line holds


@dataclass(frozen=True)
class ServerRecord:
    """What a launcher's pid file says about it."""

    pid: int
    http_port: int
    grpc_port: int
    metrics_port: int
    repository: str


def pid_file(run_dir: Path, http_port: int) -> Path:
    return Path(run_dir) / f"tritonserver-{http_port}.pid"


def is_alive(record: ServerRecord) -> bool:
    """Whether the pid still belongs to a launcher (pids are reused)."""
    try:
        process = psutil.Process(record.pid)
        return process.status() != psutil.STATUS_ZOMBIE and LAUNCHER in " ".join(process.cmdline())
    except psutil.Error:
        return False


def read(path: Path) -> ServerRecord | None:
    """The record in ``path``, or None when it is unreadable (then it is stale too)."""
    try:
        return ServerRecord(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def claim(run_dir: Path, record: ServerRecord) -> Path:
    """Write ``record``'s pid file; refuse when a live launcher already serves its port."""
    path = pid_file(run_dir, record.http_port)
    held = read(path) if path.exists() else None
    if held is not None and held.pid != record.pid and is_alive(held):
        raise RuntimeError(
            f"a server from this checkout already serves HTTP port {record.http_port} "
            f"(pid {held.pid}, {held.repository}); `make stop HTTP_PORT={record.http_port}` "
            "first, or pick other ports"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(record)) + "\n")
    return path


def servers(run_dir: Path) -> tuple[dict[int, ServerRecord], list[Path]]:
    """The live servers by HTTP port, and the stale pid files (removed here)."""
    live, stale = {}, []
    for path in sorted(Path(run_dir).glob("tritonserver-*.pid")):
        record = read(path)
        if record is not None and is_alive(record):
            live[record.http_port] = record
        else:
            path.unlink(missing_ok=True)
            stale.append(path)
    return live, stale


def stop(record: ServerRecord, timeout: float = 60.0) -> bool:
    """SIGTERM to the launcher, then wait for it to exit; True once it has."""
    try:
        process = psutil.Process(record.pid)
        os.kill(record.pid, signal.SIGTERM)
        process.wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stop servers started by `make serve`.")
    parser.add_argument("--http-port", type=int, default=8000, help="the server to stop")
    parser.add_argument("--all", action="store_true", help="every server from this checkout")
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    live, stale = servers(args.run_dir)
    for path in stale:
        print(f"removed a stale pid file: {path.name} (its server is gone)")
    targets = list(live.values()) if args.all else [live[p] for p in live if p == args.http_port]
    if not targets:
        others = f"; running: HTTP ports {sorted(live)}" if live else ""
        where = "" if args.all else f" on HTTP port {args.http_port}"
        print(f"no server started by make serve is running{where}{others}")
        return 0
    failed = 0
    for record in targets:
        start = time.monotonic()
        if stop(record):
            print(
                f"stopped the server on HTTP port {record.http_port} (pid {record.pid}, "
                f"{record.repository}) in {time.monotonic() - start:.1f} s"
            )
        else:
            failed += 1
            print(f"the server on HTTP port {record.http_port} (pid {record.pid}) did not stop")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
