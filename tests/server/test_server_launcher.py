"""``python -m ebjr.ops.server`` (``make serve``) starts, says where it listens, restarts a
``tritonserver`` that dies (Triton 2.51 segfaults on an HTTP body over about 4 MB; or killed
hard with its stubs, when it also removes the shared memory they leave), and stops cleanly on
SIGTERM (``make stop``), leaving no ``tritonserver`` behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import psutil

from ebjr.core.layout import DEFAULT_REPOSITORY
from ebjr.ops import shm
from ebjr.ops.client import classify, connect
from ebjr.ops.pidfile import main as stop_main
from ebjr.ops.server import free_ports
from ebjr.training import data


def images():
    return data.load_split("test")[0][:4]


def wait_ready(url: str, launcher: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    """Until ``url`` says ready; a timeout shows what the ``launcher`` said last."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2).status == 200:
                return
        except OSError:
            time.sleep(0.5)
    said = "".join(launcher.lines[-30:]) if launcher is not None else ""
    raise TimeoutError(f"{url} not ready after {timeout} s; the launcher said:\n{said}")


def tritons(launcher_pid: int) -> list[psutil.Process]:
    """The launcher's tritonserver children now; a child that is reaped while they are listed
    (a killed server) is not one of them."""
    found = []
    for child in psutil.Process(launcher_pid).children():
        try:
            if "tritonserver" in child.name():
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def triton_child(launcher_pid: int) -> psutil.Process:
    (triton,) = tritons(launcher_pid)
    return triton


def triton_child_or_none(launcher_pid: int) -> int | None:
    """The pid of the launcher's tritonserver, if it has one now."""
    return next((p.pid for p in tritons(launcher_pid)), None)


def launch(run_dir, repository=DEFAULT_REPOSITORY) -> tuple[subprocess.Popen, list[int]]:
    """``python -m ebjr.ops.server`` on three free ports, its output piped; returns once it says
    where it serves. A thread keeps reading the pipe into ``launcher.lines``: a pipe nobody
    reads fills up (64 KB: a few server starts' logs) and blocks the launcher's next print."""
    ports = free_ports(3)
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ebjr.ops.server",
            "--model-repository",
            str(repository),
            *("--http-port", str(ports[0]), "--grpc-port", str(ports[1])),
            *("--metrics-port", str(ports[2]), "--run-dir", str(run_dir)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: cleanup reaches its tritonserver too
    )
    lines = []
    for line in launcher.stdout:
        lines.append(line)
        if "Stop with Ctrl-C" in line:
            break
    assert any(f"http://127.0.0.1:{ports[0]}" in line for line in lines), "".join(lines[-20:])
    launcher.lines = lines
    threading.Thread(target=lines.extend, args=(launcher.stdout,), daemon=True).start()
    return launcher, ports


def kill(launcher: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(launcher.pid, signal.SIGKILL)  # launcher, tritonserver and its stubs
    launcher.wait()


def test_launcher_serves_survives_a_crash_then_stops_cleanly(tmp_path):
    orphans_before = shm.orphans()
    launcher, (http, grpc, _) = launch(tmp_path)
    pid_file = tmp_path / f"tritonserver-{http}.pid"
    try:
        ready = urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready", timeout=5)
        assert ready.status == 200
        assert json.loads(pid_file.read_text())["pid"] == launcher.pid
        first = triton_child(launcher.pid)

        # An HTTP body over ~4 MB kills Triton 2.51 (upstream bug); the launcher restarts it.
        body = (
            b'{"inputs":[{"name":"image","shape":[1,1,28,28],"datatype":"FP32","data":['
            + (b"0.0," * 1_500_000)
            + b"0.0]}]}"
        )
        request = urllib.request.Request(
            f"http://127.0.0.1:{http}/v2/models/ebjr_router/infer", data=body
        )
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=30)
        first.wait(timeout=30)
        wait_ready(f"http://127.0.0.1:{http}", launcher)
        second = triton_child(launcher.pid)
        assert second.pid != first.pid
        answer = classify(connect(f"127.0.0.1:{grpc}", "grpc"), images(), threshold="inf")
        assert set(answer.routes) == {"teacher"}

        # Killed hard with its stubs (the OOM killer, `kill -9` of the group), the server
        # leaves its Python-backend regions in /dev/shm; the launcher removes them, restarts.
        regions = shm.region_names()
        for process in [second, *second.children(recursive=True)]:
            process.kill()
        second.wait(timeout=30)
        wait_ready(f"http://127.0.0.1:{http}", launcher)
        third = triton_child(launcher.pid)
        assert regions - shm.region_names(), "the killed server's regions are still there"
        assert shm.orphans() == orphans_before

        # Killed again before it is ready (a crash while starting): restarted all the same.
        third.kill()
        deadline = time.monotonic() + 30
        while (fourth := triton_child_or_none(launcher.pid)) in (None, third.pid):
            assert time.monotonic() < deadline, "".join(launcher.lines[-30:])
            time.sleep(0.01)
        psutil.Process(fourth).kill()  # it is still loading its models
        wait_ready(f"http://127.0.0.1:{http}", launcher)
        second = triton_child(launcher.pid)
        assert second.pid not in (third.pid, fourth)

        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while second.is_running() and second.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "tritonserver outlived its launcher"
            time.sleep(0.2)
        assert not pid_file.exists()
    finally:
        kill(launcher)


def test_make_stop_stops_one_server_by_port_then_all_and_cleans_stale_pid_files(tmp_path):
    """Two servers from one checkout (as `make serve` twice, on other ports): `make stop`
    stops the one on its HTTP port only, `make stop ALL=1` the rest; a pid file left by a
    dead server is removed and reported."""
    repository = tmp_path / "repo"  # the Student alone: quick to load
    shutil.copytree(DEFAULT_REPOSITORY / "student", repository / "student")
    run_dir = tmp_path / "run"
    first, (http_a, *_) = launch(run_dir, repository)
    second, (http_b, *_) = launch(run_dir, repository)
    try:
        duplicate = subprocess.run(
            [sys.executable, "-m", "ebjr.ops.server", "--model-repository", str(repository)]
            + ["--http-port", str(http_a), "--run-dir", str(run_dir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (
            duplicate.returncode == 1 and f"already serves HTTP port {http_a}" in duplicate.stderr
        )
        stale = run_dir / "tritonserver-1.pid"
        stale.write_text(
            json.dumps(
                {
                    "pid": 2**22 + 1,
                    "http_port": 1,
                    "grpc_port": 2,
                    "metrics_port": 3,
                    "repository": "gone",
                }
            )
        )

        assert stop_main(["--run-dir", str(run_dir), "--http-port", str(http_a)]) == 0
        assert first.wait(timeout=5) == 0
        wait_ready(f"http://127.0.0.1:{http_b}")  # the other one still serves
        assert not stale.exists()

        assert stop_main(["--run-dir", str(run_dir), "--all"]) == 0
        assert second.wait(timeout=5) == 0
        assert list(run_dir.glob("*.pid")) == []
        assert stop_main(["--run-dir", str(run_dir)]) == 0  # nothing left: says so
    finally:
        kill(first)
        kill(second)
