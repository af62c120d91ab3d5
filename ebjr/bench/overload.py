"""The router under overload, with open-loop arrivals (``make overload``).

    python -m ebjr.bench.overload [--repo model_repository] [--seconds 20] \
        [--loads 0.5 1 2 3] [--out OVERLOAD.md]

Closed-loop load (perf_analyzer's concurrency, Locust's users) cannot overload a server: each
client waits for its answer before it sends again, so arrivals slow down with the server.
Real traffic does not wait. Here one asyncio gRPC client (``tritonclient.grpc.aio``) sends one
real test image per request at fixed intervals, whatever the server does, at multiples of the
router's capacity (measured first, closed-loop, 16 requests in flight), each for ``--seconds``.
It records every request's outcome and latency, counting as:

- **answered**, with its route: goodput is the answered requests within the SLO per second;
- **refused**: admission control turned it away (the router's ``admit_requests``, or a Triton
  queue policy): ``ebjr.ops.client.refused``;
- **timed out**: the client's own 10 s deadline passed first (the failure to avoid);
- **failed**: any other error.

It measures the router as built, the same with its batch no wider than its stages' (``NARROW``:
an execution takes in 64 requests, not its ``admission_window`` of 128, so admission control
refuses less of a built-up queue at a time), with load shedding on (``SHED``: past 32
requests per execution only 5% of the rows reach the Teacher) and with a Triton queue policy
(``BOUNDS``: 256 waiting requests, a 100 ms queue timeout, REJECT), with the
accuracy of the answered requests against the test labels, the server's memory (RSS of
tritonserver and its stubs) and idle latency before and after each load, and the CPU the
client and the server used during it; the offered rate the client achieved is reported next
to the one it aimed at.

The client needs most of a core at 3x, so each variant is measured in two layouts, each on a
server of its own: the client on a core of its own (``OWN``: the server pinned with
``taskset`` to all CPUs but the last, the client to the last; where the targets are judged,
as with a load generator or a balancer on another machine), and both sharing every core
(``SHARED``). On the shared server, perf_analyzer first measures what a queue policy costs
the Teacher and the router when nothing is overloaded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import psutil
import tritonclient.grpc.aio as grpcaio
from tritonclient.utils import InferenceServerException

from ebjr.bench.perf import Measurer
from ebjr.build import model_config as mc
from ebjr.core.layout import DEFAULT_REPOSITORY, PROJECT_ROOT, ROUTER, TEACHER, config_path
from ebjr.ops.client import connect, infer, refused
from ebjr.ops.restricted import FOR_PERF_ANALYZER
from ebjr.ops.server import TritonServer
from ebjr.training.data import load_split

log = logging.getLogger(__name__)

BOUNDED = "router_bounded"  # the router with a Triton queue policy (BOUNDS)
NARROW = "router_narrow"  # the router taking in no more rows per execution than its stages
BOUNDS = mc.QueuePolicy(max_queue_size=256, timeout_ms=100)
# the Teacher (one and two intra-op threads) and the router, with a bounded queue and no
# timeout (see queue_policy_cost)
TEACHER_2T, TEACHER_2T_BOUNDED = "teacher_2threads", "teacher_2threads_bounded"
TEACHER_BOUNDED, ROUTER_QUEUED = "teacher_bounded", "router_queued"
QUEUE_ONLY = mc.QueuePolicy(max_queue_size=256)
SHEDDING = "router_shedding"  # the router with load shedding on
SHED = {"shed_requests": "32", "shed_teacher_share": "0.05"}
SLO_MS = 250.0
GOODPUT_TARGET, RSS_TARGET_MB, IDLE_TARGET = 0.8, 100.0, 1.5  # at the highest load
OWN, SHARED = "own_cores", "shared_cores"  # the client on a core of its own, or not
CLIENT_TIMEOUT_S = 10.0
IDLE_PROBES = 20


@dataclass
class Outcome:
    """What one request came to: ``kind`` answered / refused / timed_out / failed."""

    kind: str
    latency_ms: float
    route: str = ""
    correct: bool = False


@dataclass
class LoadResult:
    model: str
    load: float  # multiple of capacity aimed at
    aimed_rps: float
    offered_rps: float  # what the client managed to send
    seconds: float
    counts: dict[str, int]
    routes: dict[str, int]
    accuracy: float | None  # of the answered requests, against the test labels
    goodput_rps: float
    goodput_share_of_capacity: float
    p50_ms: float | None
    p99_ms: float | None
    refused_p99_ms: float | None
    rss_before_mb: float
    rss_after_mb: float
    idle_p50_before_ms: float
    idle_p50_after_ms: float
    client_cores: float  # CPU seconds per second used by this client process during the load
    server_cores: float  # and by the server and its stubs
    errors: list[str] = field(default_factory=list)


def server_processes(server: TritonServer) -> list[psutil.Process]:
    """The server and every process under it (the Python-backend stubs)."""
    root = psutil.Process(server.process.pid)
    return [root, *root.children(recursive=True)]


def server_rss_mb(server: TritonServer) -> float:
    """Resident memory of the server and its stubs."""
    return sum(p.memory_info().rss for p in server_processes(server) if p.is_running()) / 2**20


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User and system CPU time of ``processes`` so far."""
    return sum(sum(p.cpu_times()[:2]) for p in processes if p.is_running())


def request(image: np.ndarray) -> tuple[list, list]:
    tensor = grpcaio.InferInput("image", list(image.shape), "FP32")
    tensor.set_data_from_numpy(image)
    return [tensor], [grpcaio.InferRequestedOutput(n) for n in ("class", "route")]


async def one(
    client, model: str, image: np.ndarray, label: int = -1, parameters: dict | None = None
) -> Outcome:
    """One request of ``image`` (1, 1, 28, 28) with its request ``parameters``; ``correct``
    says whether the answered class is ``label``."""
    inputs, outputs = request(image)
    began = time.perf_counter()
    try:
        result = await client.infer(
            model,
            inputs,
            outputs=outputs,
            client_timeout=CLIENT_TIMEOUT_S,
            parameters=parameters or None,
        )
    except InferenceServerException as err:
        ms = (time.perf_counter() - began) * 1000
        if refused(err):
            return Outcome("refused", ms)
        if str(err.status()) == "StatusCode.DEADLINE_EXCEEDED":
            return Outcome("timed_out", ms)
        return Outcome("failed", ms, err.message()[:120])
    ms = (time.perf_counter() - began) * 1000
    route = result.as_numpy("route")[0, 0].decode()
    return Outcome("answered", ms, route, int(result.as_numpy("class")[0, 0]) == label)


async def closed_loop(
    url: str,
    model: str,
    images: np.ndarray,
    seconds: float,
    users: int,
    labels: np.ndarray | None = None,
    **parameters,
) -> list[tuple[float, Outcome]]:
    """``users`` requests always in flight for ``seconds``, with request ``parameters``: each
    outcome (``correct`` against ``labels``, if given) with the time it ended, in seconds from
    the start. ``rate`` of it is the capacity."""
    async with grpcaio.InferenceServerClient(url) as client:
        ended, began = [], time.perf_counter()
        stop = began + seconds

        async def user(k: int) -> None:
            i = k
            while time.perf_counter() < stop:
                row = i % len(images)
                label = -1 if labels is None else labels[row]
                outcome = await one(client, model, images[row][None], label, parameters)
                ended.append((time.perf_counter() - began, outcome))
                i += users

        await asyncio.gather(*(user(k) for k in range(users)))
        return ended


def rate(ended: list[tuple[float, Outcome]], since: float = 0.0) -> float:
    """Answered requests per second among those that ended after ``since``."""
    times = [t for t, o in ended if t >= since and o.kind == "answered"]
    return len(times) / (max(t for t, _ in ended) - since) if times else 0.0


async def open_loop(
    url: str, model: str, images: np.ndarray, labels: np.ndarray, rate: float, seconds: float
) -> tuple[list[Outcome], float]:
    """Send at ``rate`` per second for ``seconds`` whatever the answers; every outcome, and
    the rate actually sent."""
    async with grpcaio.InferenceServerClient(url) as client:
        tasks, began = [], time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            due = began + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            row = i % len(images)
            tasks.append(asyncio.create_task(one(client, model, images[row][None], labels[row])))
        sent_s = time.perf_counter() - began
        outcomes = await asyncio.gather(*tasks)
    return list(outcomes), total / sent_s


def idle_p50(url: str, model: str, images: np.ndarray) -> float:
    """p50 latency of ``IDLE_PROBES`` requests sent one at a time."""
    client = connect(url, "grpc")
    times = []
    for i in range(IDLE_PROBES):
        began = time.perf_counter()
        infer(client, model, {"image": images[i][None]}, ["class"])
        times.append((time.perf_counter() - began) * 1000)
    client.close()
    return float(np.median(times))


def measure(
    server: TritonServer,
    model: str,
    images: np.ndarray,
    labels: np.ndarray,
    capacity: float,
    load: float,
    seconds: float,
) -> LoadResult:
    rss_before, idle_before = server_rss_mb(server), idle_p50(server.grpc_url, model, images)
    client, processes = [psutil.Process()], server_processes(server)
    cpu_before = cpu_seconds(client), cpu_seconds(processes)
    began = time.perf_counter()
    outcomes, offered = asyncio.run(
        open_loop(server.grpc_url, model, images, labels, load * capacity, seconds)
    )
    elapsed = time.perf_counter() - began
    client_cores = (cpu_seconds(client) - cpu_before[0]) / elapsed
    server_cores = (cpu_seconds(processes) - cpu_before[1]) / elapsed
    rss_after = server_rss_mb(server)
    time.sleep(1.0)  # "back to idle within 1 s after the load stops"
    idle_after = idle_p50(server.grpc_url, model, images)
    answered = [o.latency_ms for o in outcomes if o.kind == "answered"]
    correct = [o.correct for o in outcomes if o.kind == "answered"]
    refused = [o.latency_ms for o in outcomes if o.kind == "refused"]
    good = sum(ms <= SLO_MS for ms in answered)
    span = len(outcomes) / offered
    return LoadResult(
        model=model,
        load=load,
        aimed_rps=load * capacity,
        offered_rps=offered,
        seconds=span,
        counts=dict(Counter(o.kind for o in outcomes)),
        routes=dict(Counter(o.route for o in outcomes if o.kind == "answered")),
        accuracy=float(np.mean(correct)) if correct else None,
        goodput_rps=good / span,
        goodput_share_of_capacity=good / span / capacity,
        p50_ms=float(np.percentile(answered, 50)) if answered else None,
        p99_ms=float(np.percentile(answered, 99)) if answered else None,
        refused_p99_ms=float(np.percentile(refused, 99)) if refused else None,
        rss_before_mb=rss_before,
        rss_after_mb=rss_after,
        idle_p50_before_ms=idle_before,
        idle_p50_after_ms=idle_after,
        client_cores=client_cores,
        server_cores=server_cores,
        errors=sorted({o.route for o in outcomes if o.kind == "failed"})[:5],
    )


def overload_repository(repo: Path, dest: Path) -> Path:
    """``repo`` plus its router's variants: ``NARROW``, taking in no more rows per execution
    than its stages, ``SHEDDING``, with load shedding (``SHED``), and ``BOUNDED``, with a
    Triton queue policy (``BOUNDS``)."""
    shutil.copytree(repo, dest)
    config = mc.read(config_path(repo, ROUTER))
    bounded = mc.edited(config, name=BOUNDED)
    mc.set_batching(bounded, config.dynamic_batching.max_queue_delay_microseconds, BOUNDS)
    narrow = mc.edited(config, name=NARROW)
    narrow.max_batch_size = int(mc.parameters(config)["stage_batch_size"])
    for variant in (narrow, mc.edited(config, SHED, name=SHEDDING), bounded):
        shutil.copytree(repo / ROUTER, dest / variant.name)
        mc.write(config_path(dest, variant.name), variant)
    two = {"intra_op_thread_count": 2}
    for model, name, edits, queue in (
        (TEACHER, TEACHER_BOUNDED, {}, QUEUE_ONLY),
        (TEACHER, TEACHER_2T, two, mc.QueuePolicy()),
        (TEACHER, TEACHER_2T_BOUNDED, two, QUEUE_ONLY),
        (ROUTER, ROUTER_QUEUED, {}, QUEUE_ONLY),
    ):
        config = mc.edited(mc.read(config_path(repo, model)), edits, name=name)
        mc.set_batching(config, config.dynamic_batching.max_queue_delay_microseconds, queue)
        shutil.copytree(repo / model, dest / name)
        mc.write(config_path(dest, name), config)
    return dest


def queue_policy_cost(server: TritonServer) -> list[dict]:
    """perf_analyzer (closed loop) on the Teacher (native backend, one and two intra-op
    threads) and the router (Python backend, at its default threshold) with and without
    ``QUEUE_ONLY``, twice each,
    interleaved: what a queue policy costs the dynamic batcher when nothing is overloaded.
    (Not ``BOUNDS``: its queue timeout turns held requests into refusals, which stop
    perf_analyzer.)"""
    rows = []
    with Measurer(server, window_ms=3000) as measure:
        for _ in range(2):
            for model in (
                TEACHER,
                TEACHER_BOUNDED,
                TEACHER_2T,
                TEACHER_2T_BOUNDED,
                ROUTER,
                ROUTER_QUEUED,
            ):
                for concurrency in (1, 16):
                    found = measure(model, None, concurrency)
                    log.info(json.dumps(found))
                    rows.append(found)
    return rows


def own_cores() -> tuple[set[int], set[int]] | None:
    """This machine's CPUs split into the server's (all but the last) and the client's (the
    last), or None with fewer than two."""
    cpus = sorted(os.sched_getaffinity(0))
    return (set(cpus[:-1]), {cpus[-1]}) if len(cpus) > 1 else None


@contextmanager
def client_on(cpus: set[int]) -> Iterator[None]:
    """This process (the load generator) on ``cpus`` only, for the block."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def under_load(
    server: TritonServer, images: np.ndarray, labels: np.ndarray, loads: list[float], seconds: float
) -> dict:
    """The router's capacity (closed loop, 16 in flight), then every variant at ``loads``
    times it, open loop."""
    capacity = rate(asyncio.run(closed_loop(server.grpc_url, ROUTER, images, 5.0, 16)))
    log.info("capacity (closed loop, 16 in flight): %.0f requests/s", capacity)
    results = []
    for model in (ROUTER, NARROW, SHEDDING, BOUNDED):
        for load in loads:
            result = measure(server, model, images, labels, capacity, load, seconds)
            log.info(json.dumps(asdict(result)))
            results.append(asdict(result))
    server_cpus = sorted({c for p in server_processes(server) for c in p.cpu_affinity()})
    return {"capacity_rps": capacity, "server_cpus": server_cpus, "results": results}


def run(repo: Path, loads: list[float], seconds: float) -> dict:
    """Both layouts (``OWN``, then ``SHARED``), each on a server of its own, and what a queue
    policy costs (on the shared one)."""
    images, labels = (part[:2000] for part in load_split("test"))
    router = mc.read(config_path(repo, ROUTER))
    found = {
        "admission_window": router.max_batch_size,
        "admit_requests": int(mc.parameters(router)["admit_requests"]),
        "stage_batch_size": int(mc.parameters(router)["stage_batch_size"]),
        "slo_ms": SLO_MS,
        "seconds": seconds,
        "layouts": {},
    }
    split = own_cores()
    with tempfile.TemporaryDirectory() as tmp:
        served = overload_repository(repo, Path(tmp) / "repo")
        start = partial(TritonServer.on_free_ports, served, restricted_apis=FOR_PERF_ANALYZER)
        if split is None:
            log.warning("one CPU: the client cannot have a core of its own; shared layout only")
        else:
            server_cpus, client_cpus = split
            with start(Path(tmp) / "own.log", cpus=server_cpus) as server, client_on(client_cpus):
                layout = under_load(server, images, labels, loads, seconds)
                found["layouts"][OWN] = {**layout, "client_cpus": sorted(client_cpus)}
        with start(Path(tmp) / "shared.log") as server:
            found["queue_policy_cost"] = queue_policy_cost(server)
            layout = under_load(server, images, labels, loads, seconds)
            found["layouts"][SHARED] = {**layout, "client_cpus": sorted(os.sched_getaffinity(0))}
    return found


def route_mix(routes: dict[str, int]) -> str:
    """``{"student": 9, "teacher": 1}`` as ``student 9, teacher 1``."""
    return ", ".join(f"{k} {v}" for k, v in sorted(routes.items()))


def load_table(layout: dict) -> list[str]:
    """One row per variant and load."""

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    lines = [
        "| router | load | aimed / offered req/s | answered | refused | client timeouts | "
        "goodput / capacity | p50 / p99 answered ms | p99 refused ms | accuracy | "
        "RSS growth MB | idle p50 before / 1 s after ms | client / server cores | routes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in layout["results"]:
        c = r["counts"]
        accuracy = "-" if r["accuracy"] is None else f"{r['accuracy']:.2%}"
        lines.append(
            f"| {r['model']} | {r['load']:g}x | {r['aimed_rps']:.0f} / {r['offered_rps']:.0f} | "
            f"{c.get('answered', 0)} | {c.get('refused', 0)} | {c.get('timed_out', 0)} | "
            f"{r['goodput_share_of_capacity']:.2f} | {ms(r['p50_ms'])} / {ms(r['p99_ms'])} | "
            f"{ms(r['refused_p99_ms'])} | {accuracy} | "
            f"{r['rss_after_mb'] - r['rss_before_mb']:+.0f} | "
            f"{r['idle_p50_before_ms']:.1f} / {r['idle_p50_after_ms']:.1f} | "
            f"{r['client_cores']:.2f} / {r['server_cores']:.2f} | {route_mix(r['routes'])} |"
        )
    return lines


def targets_table(layout: dict) -> list[str]:
    """Each variant at the highest load against the issue's overload targets."""
    top = max(r["load"] for r in layout["results"])

    def mark(ok: bool) -> str:
        return "yes" if ok else "**no**"

    lines = [
        f"| router at {top:g}x | goodput >= {GOODPUT_TARGET:g}x capacity | "
        f"p99 answered <= {SLO_MS:.0f} ms | no client timeouts | "
        f"RSS growth <= {RSS_TARGET_MB:.0f} MB | idle p50 1 s after <= {IDLE_TARGET:g}x before |",
        "|---|---|---|---|---|---|",
    ]
    for r in (r for r in layout["results"] if r["load"] == top):
        p99, growth = r["p99_ms"], r["rss_after_mb"] - r["rss_before_mb"]
        idle = r["idle_p50_after_ms"] / r["idle_p50_before_ms"]
        lines.append(
            f"| {r['model']} | {mark(r['goodput_share_of_capacity'] >= GOODPUT_TARGET)} "
            f"({r['goodput_share_of_capacity']:.2f}) | "
            f"{mark(p99 is not None and p99 <= SLO_MS)} ({'-' if p99 is None else f'{p99:.0f}'}) | "
            f"{mark(r['counts'].get('timed_out', 0) == 0)} ({r['counts'].get('timed_out', 0)}) | "
            f"{mark(growth <= RSS_TARGET_MB)} ({growth:+.0f}) | "
            f"{mark(idle <= IDLE_TARGET)} ({idle:.2f}) |"
        )
    return lines


def render(found: dict) -> str:
    layouts = found["layouts"]
    lines = [
        "# OVERLOAD (generated by `make overload`; do not edit)",
        "",
        f"Open-loop arrivals, one Fashion-MNIST test image per gRPC request, "
        f"{found['seconds']:.0f} s per load, at multiples of the router's capacity measured "
        f"closed-loop first (16 in flight). Goodput: answered within {found['slo_ms']:.0f} ms, "
        f"per second. `{ROUTER}` is the router as built (an execution takes in up to "
        f"{found['admission_window']} requests, its `admission_window`, and serves the newest "
        f"{found['admit_requests']}); `{NARROW}` takes in no more than its stages' "
        f"{found['stage_batch_size']}, as before `admission_window`; `{SHEDDING}` adds load "
        f"shedding (`shed_requests` {SHED['shed_requests']}, `shed_teacher_share` "
        f"{SHED['shed_teacher_share']}); `{BOUNDED}` adds a Triton queue policy "
        f"(`max_queue_size` {BOUNDS.max_queue_size}, a {BOUNDS.timeout_ms} ms queue timeout, "
        "`timeout_action: REJECT`). Accuracy is that of the answered requests against the test "
        "labels; 'offered' is the rate the client achieved, and the CPU columns are the cores "
        "(CPU seconds per second) that the client and the server (tritonserver and its stubs) "
        "used during the load.",
        "",
        "The load generator is a Python asyncio client: at 3x it needs most of a core. Sharing "
        "the machine's cores with the server, it takes them from the server exactly when the "
        "server needs them to refuse the excess, which a load balancer or a client on another "
        "machine would not. So the router is measured twice, each time on a server of its own: "
        "with the client on a core of its own (the server pinned to the others with `taskset`), "
        "where the targets are judged, and with both sharing every core.",
    ]
    for key, title in (
        (OWN, "The client on a core of its own"),
        (SHARED, "Client and server sharing every core"),
    ):
        if key not in layouts:
            continue
        layout = layouts[key]
        lines += [
            "",
            f"## {title}",
            "",
            f"Server on CPUs {layout['server_cpus']}, client on {layout['client_cpus']}; the "
            f"router's capacity there: **{layout['capacity_rps']:.0f} requests/s**.",
            "",
            *load_table(layout),
            "",
            *targets_table(layout),
        ]
    lines += [
        "",
        "## What a queue policy costs when nothing is overloaded",
        "",
        "perf_analyzer (closed loop, gRPC, sharing every core) on the Teacher (native backend; "
        f"one intra-op thread as built, and `{TEACHER_2T}` with two) and the router (Python "
        f"backend) as built, and on `{TEACHER_BOUNDED}`, `{TEACHER_2T_BOUNDED}` and "
        f"`{ROUTER_QUEUED}`, the same models with `max_queue_size` {QUEUE_ONLY.max_queue_size} "
        "and no queue timeout (with one, held requests come back as refusals, which stop "
        "perf_analyzer), interleaved, two rounds:",
        "",
        "| model | concurrency | inferences/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
        *(
            f"| {r['model']} | {r['concurrency']} | {r['throughput']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} |"
            for r in found["queue_policy_cost"]
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPOSITORY)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--loads", type=float, nargs="+", default=[0.5, 1.0, 2.0, 3.0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "OVERLOAD.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    found = run(args.repo, args.loads, args.seconds)
    args.out.with_suffix(".json").write_text(json.dumps(found, indent=2) + "\n")
    args.out.write_text(render(found))
    print(f"Wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
