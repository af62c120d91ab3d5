"""Short versions of ``make bench``, ``make load`` and ``make soak`` on the session's server."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from ebjr.bench.bench_repository import (
    CHEAP_ROUTER,
    CHEAP_TEACHER,
    FLOOR,
    ROUTER_BLS,
    TEACHER_2T,
    THREE_STAGE,
)
from ebjr.bench.benchmark import benchmark
from ebjr.bench.report import break_even_ms, report
from ebjr.core.layout import ROUTER

sys.path.insert(0, str(Path(__file__).parents[2] / "load_tests"))
import run as load_run  # noqa: E402

ROUNDS = 2  # interleaved rounds (make bench takes 3)


def test_benchmark_smoke_measures_every_case_and_reports_the_targets(server, tmp_path):
    results = benchmark(
        server.model_repository,
        [1, 4],
        window_ms=300,
        images=50,
        extra_fractions=(),
        server=server,
        rounds=ROUNDS,
    )
    assert {r["model"] for r in results["cases"]} == {
        "student",
        "student_python",
        "teacher",
        TEACHER_2T,
        "teacher_python",
        FLOOR,
        ROUTER,
        CHEAP_TEACHER,
        CHEAP_ROUTER,
    }
    assert all(r["throughput"] > 0 for r in results["cases"])
    fractions = {
        r["threshold"]: r["teacher_fraction"]
        for r in results["cases"]
        if r["model"] == ROUTER and r["concurrency"] == 4
    }
    assert fractions["-inf"] == 0.0 and fractions["inf"] == 1.0
    # The calibrated default sends about its calibrated share (30% on validation) of these
    # 50 test images to the Teacher.
    assert 0.1 <= fractions[repr(results["parity_threshold"])] <= 0.6
    # the headline ratios come from interleaved rounds: the Teacher in its two configs, the
    # router, the router with its Teacher over BLS, the three-stage router; and the same
    # router in front of the cheaper Teacher
    assert len(results["pairs"]) == len(results["cost_rounds"]) == ROUNDS
    for teacher, two_threads, two, bls, three in results["pairs"]:
        models = [r["model"] for r in (teacher, two_threads, two, bls, three)]
        assert models == ["teacher", TEACHER_2T, ROUTER, ROUTER_BLS, THREE_STAGE]
        assert three["throughput"] > 0 and 0 < three["teacher_fraction"] < 1
        assert bls["teacher_fraction"] == pytest.approx(two["teacher_fraction"], abs=0.03)
    for cheap, router in results["cost_rounds"]:
        assert (cheap["model"], router["model"]) == (CHEAP_TEACHER, CHEAP_ROUTER)
        # same Student, same threshold: the same rows go on, whichever Teacher is behind it
        # (perf_analyzer cycles the 50 images, so a window's share wobbles a little)
        parity_share = fractions[repr(results["parity_threshold"])]
        assert router["teacher_fraction"] == pytest.approx(parity_share, abs=0.03)
    # pixels and PNG bytes of the same images: interleaved rounds, the same rows routed on
    *rounds, last = results["encoded"]
    assert len(rounds) == ROUNDS and [r["concurrency"] for r in last] == [1, 1]
    for pixels, png in [*rounds, last]:
        assert (pixels["input"], png["input"]) == ("image", "image_bytes")
        assert png["throughput"] > 0
        assert png["teacher_fraction"] == pytest.approx(pixels["teacher_fraction"], abs=0.03)
    profile = results["profile"]
    assert profile["samples"] > 0 and abs(sum(profile["shares"].values()) - 1) < 1e-6
    assert profile["cpu_seconds"]["router stubs"] > 0
    text = report(results, tmp_path / "BENCHMARKS.md", plot=None)
    floor_ratio = _ratio(results, ROUTER, "-inf", "student", 4)
    assert f"| router at -inf / native Student, c=4 | {floor_ratio:.2f} | >= 0.7 |" in text
    ratio = np.median([p[4]["throughput"] / p[2]["throughput"] for p in results["pairs"]])
    assert (
        f"| three-stage / two-stage router at their defaults, c=4, median of {ROUNDS} interleaved "
        f"rounds | {ratio:.2f} |"
    ) in text
    ratio = np.median([p[2]["throughput"] / p[3]["throughput"] for p in results["pairs"]])
    assert (
        f"Teacher in process / over BLS (`teacher_execution`), c=4, median of {ROUNDS} "
        f"interleaved rounds | {ratio:.2f} |"
    ) in text
    best = np.median(
        [p[2]["throughput"] / max(p[0]["throughput"], p[1]["throughput"]) for p in results["pairs"]]
    )
    assert f"(the faster of its two configs), c=4, median of {ROUNDS} interleaved rounds | " in text
    assert f"| {best:.2f} | >= 2 |" in text
    # the rule of thumb: break-even from the router's own cost at -inf and its Teacher share
    alone = 1000 / _find(results, ROUTER, "-inf", 4)["throughput"]
    share = fractions[repr(results["parity_threshold"])]
    assert f"| {break_even_ms(alone, share):.3f} |" in text
    assert "## When the cascade pays" in text and f"(`{CHEAP_TEACHER}`)" in text
    assert "## Latency: the Teacher alone and the router at its default" in text
    encoded = np.median([p[0]["throughput"] / p[1]["throughput"] for p in rounds])
    assert (
        f"PNG bytes in (decoded in the router), c=4, median of {ROUNDS} interleaved rounds | "
        f"{encoded:.2f} | <= 1.3 |" in text
    )
    assert "## Encoded images in (`image_bytes`)" in text


def _find(results, model, threshold, c):
    return next(
        r
        for r in results["cases"]
        if (r["model"], r["threshold"], r["concurrency"]) == (model, threshold, c)
    )


def _ratio(results, model, threshold, other, c):
    return (
        _find(results, model, threshold, c)["throughput"]
        / _find(results, other, None, c)["throughput"]
    )


def test_locust_soak_smoke_has_no_failures_and_bounded_memory(server, tmp_path):
    code = load_run.main(
        [
            "--http-url",
            server.http_url,
            "--grpc-url",
            server.grpc_url,
            "--server-pid",
            str(server.process.pid),
            "--repo",
            str(server.model_repository),
            "--users",
            "4",
            "--spawn-rate",
            "4",
            "--run-time",
            "30s",
            "--check-memory",
            "--out",
            str(tmp_path),
        ]
    )
    text = (tmp_path / "REPORT.md").read_text()
    assert code == 0, text
    with (tmp_path / "locust_stats.csv").open() as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    for name in ("http ebjr_router", "grpc ebjr_router"):  # both protocols carried traffic
        assert int(rows[name]["Request Count"]) > 50, rows[name]
        assert int(rows[name]["Failure Count"]) == 0  # errors and wrong answers alike
    requests = int(rows["Aggregated"]["Request Count"])
    assert f"requests: {requests}, failures: 0" in text


def test_a_bad_run_time_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_run.main(["--http-url", "127.0.0.1:1", "--run-time", "soon"])
    assert exit_info.value.code == 2
    assert "--run-time: Invalid time span format" in capsys.readouterr().err
    # Locust parsed it in a child process: importing locust here would monkey-patch this
    # test process with gevent and turn every test's threads into greenlets.
    assert "locust" not in sys.modules
