"""``python -m ebjr.server`` (``make serve``) starts, says where it listens, and stops cleanly on
SIGTERM (``make stop``), leaving no ``tritonserver`` behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request

import psutil
from conftest import MODEL_REPOSITORY, free_ports


def test_launcher_serves_then_stops_cleanly_on_sigterm(tmp_path):
    http, grpc, metrics = free_ports(3)
    pid_file = tmp_path / "tritonserver.pid"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "ebjr.server", "--model-repository", str(MODEL_REPOSITORY),
         "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
         "--pid-file", str(pid_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
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
        triton = [p for p in psutil.Process(launcher.pid).children() if "tritonserver" in p.name()]
        assert len(triton) == 1

        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while triton[0].is_running() and triton[0].status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "tritonserver outlived its launcher"
            time.sleep(0.2)
        assert not pid_file.exists()
    finally:
        if launcher.poll() is None:
            launcher.kill()
