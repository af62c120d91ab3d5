"""Short versions of ``make bench``, ``make load`` and ``make soak`` on the session's server."""

from __future__ import annotations

import sys
from pathlib import Path

from ebjr.benchmark import ROUTER, benchmark, report

sys.path.insert(0, str(Path(__file__).parent.parent / "load_tests"))
import run as load_run  # noqa: E402


def test_benchmark_smoke_reports_a_teacher_fraction(server, tmp_path):
    results = benchmark(server.model_repository, [1], window_ms=500, images=50,
                        extra_fractions=(), server=server)  # fmt: skip
    router_rows = [r for r in results["cases"] if r["model"] == ROUTER]
    assert len(router_rows) == 3 and all(r["throughput"] > 0 for r in results["cases"])
    fractions = {r["threshold"]: r["teacher_fraction"] for r in router_rows}
    assert fractions["-inf"] == 0.0 and fractions["inf"] == 1.0
    assert 0.0 <= fractions[repr(results["parity_threshold"])] <= 1.0
    text = report(results, tmp_path / "BENCHMARKS.md", plot=None)
    assert "efficiency" in text and "ideal" in text


def test_locust_soak_smoke_has_no_failures_and_bounded_memory(server, tmp_path):
    code = load_run.main([
        "--http-url", server.http_url, "--grpc-url", server.grpc_url,
        "--server-pid", str(server.process.pid), "--repo", str(server.model_repository),
        "--users", "4", "--spawn-rate", "4", "--run-time", "30s", "--check-memory",
        "--out", str(tmp_path),
    ])  # fmt: skip
    text = (tmp_path / "REPORT.md").read_text()
    assert code == 0, text
    assert "failures: 0" in text and (tmp_path / "locust.html").exists()


def test_run_time_parsing():
    assert load_run.seconds("90s") == 90 and load_run.seconds("1h30m") == 5400
