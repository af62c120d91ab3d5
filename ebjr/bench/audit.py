"""The live audit, measured (``make audit``).

    python -m ebjr.bench.audit [--repo model_repository] [--clean-s 600] [--out AUDIT.md]

On one real server:

1. **Cost.** perf_analyzer at 16 requests in flight, one real test image each, at the default
   threshold, in interleaved rounds: the router as built (audit off) and copies with
   ``audit_share`` 0.1 and 1.0. Throughput, p50 and p99, and the CPU the server's processes
   spent per request (``psutil``, tritonserver and its stubs). What auditing must cost at
   least is the Teacher's own work on the audited rows: ``audit_share`` x the kept share x the
   Teacher's CPU per row, measured on the same router at ``threshold=inf`` against ``-inf``
   in each round (the median of the rounds': a difference of two noisy measurements).
2. **The alert.** A real Prometheus with the shipped ``deploy/prometheus/`` config and rule as
   they are (5 s intervals, ``for: 1m``) scrapes the router with ``audit_share`` 0.1 and its
   default 500-row window, while ``USERS`` closed-loop gRPC clients send one image per request:
   clean test images for ``--clean-s`` seconds (the alert must never be pending), then the
   same images with sigma=0.2 Gaussian noise until it fires (it must within two minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from ebjr.bench.overload import closed_loop
from ebjr.bench.perf import Measurer
from ebjr.build import model_config as mc
from ebjr.core.audit import BATCH_ROWS
from ebjr.core.layout import DEFAULT_REPOSITORY, PROJECT_ROOT, ROUTER, config_path
from ebjr.core.tally import FLUSH_S
from ebjr.ops import prometheus as prom
from ebjr.ops.restricted import FOR_PERF_ANALYZER
from ebjr.ops.server import TritonServer
from ebjr.training.data import load_split

log = logging.getLogger(__name__)

ALERT = "EbjrKeptAnswersDisagreeWithTeacher"
SHARES = {"router_audit_10": 0.1, "router_audit_100": 1.0}  # audited copies of the router
WATCHED = "router_audit_10"  # the one Prometheus watches
USERS = 8
ROUNDS = 3
WINDOW_MS = 5000
SIGMA = 0.2
FIRE_LIMIT_S = 240.0
POLL_S = 5.0
CHUNK_S = 30.0
AUDIT_COUNTS = ("audited", "dropped")  # rows per answered request, from the router's metrics


def audit_repository(repo: Path, dest: Path) -> Path:
    """``repo`` plus the audited copies of its router (``SHARES``)."""
    shutil.copytree(repo, dest, dirs_exist_ok=True)
    config = mc.read(config_path(repo, ROUTER))
    for name, share in SHARES.items():
        shutil.copytree(repo / ROUTER, dest / name)
        mc.write(config_path(dest, name), mc.edited(config, {"audit_share": str(share)}, name=name))
    return dest


def cpu_seconds(server: TritonServer) -> float:
    """User and system CPU time of the server and every process under it so far."""
    root = psutil.Process(server.process.pid)
    total = 0.0
    for process in (root, *root.children(recursive=True)):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def counts(server: TritonServer, model: str) -> dict:
    """``model``'s answered requests, audited rows and rows the audit dropped, so far."""
    text = prom.scrape(server.metrics_url)
    return {
        "requests": prom.value(text, "ebjr_requests_total", model=model, outcome="ok"),
        "audited": prom.value(text, "ebjr_audit_rows_total", model=model),
        "dropped": prom.value(text, "ebjr_audit_dropped_rows_total", model=model),
    }


def costed(
    server: TritonServer,
    measure: Measurer,
    model: str,
    threshold: str | None,
    concurrency: int = 16,
) -> dict:
    """One perf_analyzer run of ``model`` with the CPU it cost per answered request (ms), and
    the rows it audited and dropped per answered request."""
    cpu, before = cpu_seconds(server), counts(server, model)
    row = measure(model, threshold, concurrency)
    time.sleep(1.5)  # the router's counters flush every 0.5 s; the audit worker drains
    spent = cpu_seconds(server) - cpu
    after = counts(server, model)
    requests = max(after["requests"] - before["requests"], 1)
    row["cpu_ms_per_request"] = 1000 * spent / requests
    for key in AUDIT_COUNTS:
        row[f"{key}_per_request"] = (after[key] - before[key]) / requests
    return row


def teacher_cpu(ends: dict) -> float:
    """The Teacher's CPU per row (ms) from one round's router at ``inf`` and ``-inf``."""
    return ends["inf"]["cpu_ms_per_request"] - ends["-inf"]["cpu_ms_per_request"]


def cost(server: TritonServer) -> dict:
    """Interleaved rounds of the router and its audited copies, and of the router at both
    ends (``-inf``, ``inf``) for the Teacher's CPU per row (the median of the rounds')."""
    rounds, ends = [], []
    with Measurer(server, WINDOW_MS) as measure:
        idle = []  # one request in flight: cores to spare
        for _ in range(ROUNDS):
            rounds.append({m: costed(server, measure, m, None) for m in (ROUTER, *SHARES)})
            ends.append({t: costed(server, measure, ROUTER, t) for t in ("-inf", "inf")})
            idle.append({m: costed(server, measure, m, None, 1) for m in (ROUTER, WATCHED)})
    teacher_ms = statistics.median(teacher_cpu(e) for e in ends)
    return {"ends": ends, "rounds": rounds, "idle": idle, "teacher_cpu_ms_per_row": teacher_ms}


def watch(url: str, server: TritonServer, images: np.ndarray, seconds: float, stop_firing: bool):
    """``USERS`` closed-loop gRPC clients send ``images`` to ``WATCHED`` in ``CHUNK_S`` spells
    for up to ``seconds`` while the alert is polled every ``POLL_S``; returns the polls
    ``(seconds, pending or firing, firing)`` and when it first fired (None: never), stopping
    there if ``stop_firing``."""
    start, polls = time.monotonic(), []
    while time.monotonic() - start < seconds:
        spell = min(CHUNK_S, seconds - (time.monotonic() - start))
        load = closed_loop(server.grpc_url, WATCHED, images, spell, USERS)
        sender = threading.Thread(target=asyncio.run, args=(load,))
        sender.start()
        while sender.is_alive():
            polls.append(
                (
                    time.monotonic() - start,
                    len(prom.alerts(url, ALERT)),
                    len(prom.alerts(url, ALERT, "firing")),
                )
            )
            sender.join(POLL_S)
        if stop_firing and any(firing for _, _, firing in polls):
            break
    fired = next((t for t, _, firing in polls if firing), None)
    return polls, fired


def alert(server: TritonServer, root: Path, clean_s: float) -> dict:
    """The shipped rule on clean traffic for ``clean_s``, then on noisy traffic."""
    images = load_split("test")[0]
    noise = np.random.default_rng(0).normal(0, SIGMA, images.shape)
    noisy = np.clip(images + noise, 0, 1).astype(np.float32)
    with prom.running(server.metrics_url, root) as url:
        clean, _ = watch(url, server, images, clean_s, stop_firing=False)
        _, fired_after = watch(url, server, noisy, FIRE_LIMIT_S, stop_firing=True)
        window = prom.query(url, f'ebjr_audit_disagreement{{model="{WATCHED}",bound="rate"}}')
        expected = prom.query(
            url, f'ebjr_audit_expected_disagreement{{model="{WATCHED}",bound="upper"}}'
        )
    return {
        "clean_s": clean_s,
        "clean_polls": len(clean),
        "clean_polls_pending_or_firing": sum(1 for _, seen, _ in clean if seen),
        "noisy_fired_after_s": fired_after,
        "noisy_window_disagreement": window,
        "calibrated_upper": expected[0] if expected else None,
    }


def run(repo: Path, clean_s: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        dest = audit_repository(repo, Path(tmp) / "repository")
        server = TritonServer.on_free_ports(
            dest, Path(tmp) / "server.log", restricted_apis=FOR_PERF_ANALYZER
        )
        with server:
            found = {"cost": cost(server), "alert": alert(server, Path(tmp) / "prom", clean_s)}
            found["drift_logged"] = "disagree with the Teacher on" in server.log_file.read_text()
    return found


def median(rounds: list[dict], model: str, key: str) -> float:
    return statistics.median(r[model][key] for r in rounds)


def per_round(c: dict, kept: float) -> list[str]:
    """Each round's added CPU over the Teacher's work at ``audit_share``, from that round's own
    measurements: how much the ratio moves from one round to the next."""
    found = []
    for model, share in SHARES.items():
        ratios = []
        for run, ends in zip(c["rounds"], c["ends"], strict=True):
            added = run[model]["cpu_ms_per_request"] - run[ROUTER]["cpu_ms_per_request"]
            ratios.append(f"{added / (share * kept * teacher_cpu(ends)):.2f}")
        found.append(f"{model} {', '.join(ratios)}")
    latency = []
    for model in SHARES:
        for key in ("p50_ms", "p99_ms"):
            ratios = [f"{run[model][key] / run[ROUTER][key]:.2f}" for run in c["rounds"]]
            latency.append(f"{model} {key[:3]} {', '.join(ratios)}")
    return [
        f"Added / Teacher's work at audit_share, round by round: {'; '.join(found)}.",
        f"Latency / off, round by round: {'; '.join(latency)}.",
    ]


def render(found: dict) -> str:
    c, a = found["cost"], found["alert"]
    rounds = c["rounds"]
    base = {k: median(rounds, ROUTER, k) for k in ("throughput", "p50_ms", "p99_ms")}
    teacher_share = statistics.median(r[ROUTER]["teacher_fraction"] for r in rounds)
    lines = [
        "# AUDIT (generated by `make audit`; do not edit)",
        "",
        f"The live audit (`audit_share`) on the real Triton server, {ROUNDS} interleaved "
        "perf_analyzer rounds at 16 requests in flight, one real test image each, at the "
        "default threshold (medians). CPU is the server's processes' user and system time per "
        "answered request. The target is the Teacher's own work at `audit_share`: "
        f"`audit_share` x the kept share ({1 - teacher_share:.1%}) x the Teacher's CPU per row "
        f"({c['teacher_cpu_ms_per_row']:.3f} ms: the router at `threshold=inf` minus at `-inf`, "
        "the median of the rounds'). The audit calls the Teacher once per "
        f"{FLUSH_S:g} s per router instance with at most {BATCH_ROWS} rows, the newest "
        "(`ebjr.serving.audit`), so where more rows are sampled than that it audits fewer "
        "than `audit_share` asks: 'audited / kept rows' is what it achieved (the rows sampled "
        "but not audited were dropped from its queue, counted).",
        "",
        "| router | audit_share | audited / kept rows | dropped / kept rows | inferences/s | "
        "p50 ms | p99 ms | p50 / off | p99 / off | CPU ms per request | added CPU ms | "
        "Teacher's work at audit_share, ms | added / that | added / Teacher's work on the "
        "rows audited |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    kept = 1 - teacher_share
    plain_cpu = median(rounds, ROUTER, "cpu_ms_per_request")
    for model, share in ((ROUTER, 0.0), *SHARES.items()):
        x, p50, p99 = (median(rounds, model, k) for k in ("throughput", "p50_ms", "p99_ms"))
        cpu = median(rounds, model, "cpu_ms_per_request")
        audited, dropped = (median(rounds, model, f"{k}_per_request") for k in AUDIT_COUNTS)
        bound = share * kept * c["teacher_cpu_ms_per_row"]
        done = audited * c["teacher_cpu_ms_per_row"]
        ratios = (
            f"{(cpu - plain_cpu) / bound:.2f} | {(cpu - plain_cpu) / done:.2f}"
            if share
            else "- | -"
        )
        lines.append(
            f"| {model} | {share:g} | {audited / kept:.3f} | {dropped / kept:.3f} | {x:.0f} | "
            f"{p50:.2f} | {p99:.2f} | {p50 / base['p50_ms']:.2f} | {p99 / base['p99_ms']:.2f} | "
            f"{cpu:.3f} | {cpu - plain_cpu:+.3f} | {bound:.3f} | {ratios} |"
        )
    lines += ["", *per_round(c, kept)]
    idle = c["idle"]
    p50s, p99s = ({m: median(idle, m, k) for m in (ROUTER, WATCHED)} for k in ("p50_ms", "p99_ms"))
    lines += [
        "",
        f"With one request in flight (cores to spare), {WATCHED} against the router with the "
        f"audit off: p50 {p50s[WATCHED]:.3f} / {p50s[ROUTER]:.3f} ms = "
        f"{p50s[WATCHED] / p50s[ROUTER]:.2f}, p99 {p99s[WATCHED]:.3f} / {p99s[ROUTER]:.3f} ms = "
        f"{p99s[WATCHED] / p99s[ROUTER]:.2f}; it audited "
        f"{median(idle, WATCHED, 'audited_per_request') / kept:.3f} of the kept rows. The "
        "response never waits for the audit.",
    ]
    fired = a["noisy_fired_after_s"]
    windows = ", ".join(f"{v:.1%}" for v in a["noisy_window_disagreement"])
    lines += [
        "",
        "## The alert",
        "",
        f"A real Prometheus with `deploy/prometheus/` as shipped (5 s intervals, `for: 1m`) "
        f"watched `{WATCHED}` (audit_share 0.1, 500-row window) while {USERS} closed-loop gRPC "
        "users sent one image per request.",
        "",
        "| traffic | seconds | target | result | met |",
        "|---|---|---|---|---|",
        f"| clean test images | {a['clean_s']:.0f} | never pending or firing | "
        f"pending or firing in {a['clean_polls_pending_or_firing']} of {a['clean_polls']} polls | "
        f"{'yes' if a['clean_polls_pending_or_firing'] == 0 else 'no'} |",
        f"| the same images, sigma={SIGMA} noise | up to {FIRE_LIMIT_S:.0f} | fires within 120 s | "
        + (f"fired after {fired:.0f} s" if fired is not None else "did not fire")
        + f" | {'yes' if fired is not None and fired <= 120 else 'no'} |",
        "",
        f"On the noisy traffic the windows held {windows} disagreement against a calibrated "
        f"upper bound of {a['calibrated_upper']:.2%}; the router "
        f"{'logged' if found['drift_logged'] else 'did not log'} the drift.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure the live audit on the real server.")
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPOSITORY)
    parser.add_argument("--clean-s", type=float, default=600.0, help="clean traffic seconds")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "AUDIT.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    found = run(args.repo, args.clean_s)
    args.out.with_suffix(".json").write_text(json.dumps(found, indent=1) + "\n")
    args.out.write_text(render(found))
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
