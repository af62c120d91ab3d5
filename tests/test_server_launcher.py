"""``python -m ebjr.server`` (``make serve``) starts, says where it listens, restarts a
``tritonserver`` that dies (Triton 2.51 segfaults on an HTTP body over about 4 MB), and stops
cleanly on SIGTERM (``make stop``), leaving no ``tritonserver`` behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
from conftest import MODEL_REPOSITORY

from ebjr import data
from ebjr.client import classify, connect
from ebjr.server import free_ports


def images():
    return data.load_split("test")[0][:4]


def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2).status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout} s")


def triton_child(launcher_pid: int) -> psutil.Process:
    children = psutil.Process(launcher_pid).children()
    (triton,) = [p for p in children if "tritonserver" in p.name()]
    return triton


def test_launcher_serves_survives_a_crash_then_stops_cleanly(tmp_path):
    http, grpc, metrics = free_ports(3)
    pid_file = tmp_path / "tritonserver.pid"
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ebjr.server",
            "--model-repository",
            str(MODEL_REPOSITORY),
            "--http-port",
            str(http),
            "--grpc-port",
            str(grpc),
            "--metrics-port",
            str(metrics),
            "--pid-file",
            str(pid_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: cleanup reaches its tritonserver too
    )
    try:
        lines = []
        for line in launcher.stdout:
            lines.append(line)
            if "Stop with Ctrl-C" in line:
                break
        assert any(f"http://127.0.0.1:{http}" in line for line in lines), "".join(lines[-20:])
        ready = urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready", timeout=5)
        assert ready.status == 200
        assert pid_file.read_text().strip() == str(launcher.pid)
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
        wait_ready(f"http://127.0.0.1:{http}")
        second = triton_child(launcher.pid)
        assert second.pid != first.pid
        answer = classify(connect(f"127.0.0.1:{grpc}", "grpc"), images(), threshold="inf")
        assert set(answer.routes) == {"teacher"}

        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while second.is_running() and second.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "tritonserver outlived its launcher"
            time.sleep(0.2)
        assert not pid_file.exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)  # launcher, tritonserver and its stubs
        launcher.wait()
