"""The router while its Teacher hangs, measured (``make faults``).

    python -m ebjr.bench.faults [--repo model_repository] [--seconds 12] [--out FAULTS.md]

Two real Teachers are made to hang mid-load, each behind its own copy of the router as built
(its measured ``teacher_timeout_ms`` deadline and its circuit breaker):

- **local**: the Teacher's ONNX file served by the Python backend in the router's server
  (``teacher_hanging``, ``ebjr.bench.hanging_teacher``), which holds every execution while a
  flag file exists, so the router's BLS calls wait. (Stopping that stub with SIGSTOP instead
  aborts the whole server on Triton 2.51: its backend throws ``boost::interprocess::
  lock_exception`` when a shared-memory lock times out. A frozen stub is a server crash, which
  the launcher's supervision restarts, not a hang a router can route around.)
- **remote**: the Teacher served by a second ``tritonserver`` (``teacher_url``), stopped with
  SIGSTOP, so its gRPC connection stays open and nothing answers.

For each, 16 requests stay in flight (the asyncio gRPC client of ``make overload``), one real
test image each, at the router's default threshold: first healthy, then for ``--seconds`` with
the Teacher stopped, then again after it resumes until a Teacher-bound request reaches the
Teacher (the breaker's half-open probe closed it). It reports the throughput once the breakers
are open against the same router's at ``-inf`` (the Student alone, measured just before), the
slowest request against the deadline, errors, and every answer checked against the Student's
own class for that image (the answer a fallback must give).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ebjr.bench.overload import closed_loop, rate, route_mix
from ebjr.build import model_config as mc
from ebjr.build.model_config import ModelServing
from ebjr.build.onnx_info import describe
from ebjr.build.repository import model_py_source, write_onnx_model
from ebjr.core.layout import (
    DEFAULT_REPOSITORY,
    PROJECT_ROOT,
    ROUTER,
    STUDENT,
    TEACHER,
    VERSION,
    config_path,
    onnx_path,
)
from ebjr.ops.client import connect, infer
from ebjr.ops.server import TritonServer
from ebjr.training.data import load_split

log = logging.getLogger(__name__)

LOCAL_TEACHER = "teacher_hanging"
LOCAL, REMOTE = "router_local_teacher", "router_remote_teacher"
USERS = 16
WARMUP_S = 5.0
SETTLE_S = 3.0  # after the Teacher stops, the breakers of both router instances have opened
RECOVERY_LIMIT_S = 30.0


@dataclass
class FaultResult:
    router: str
    teacher: str  # where the Teacher ran, and how it was stopped
    deadline_ms: int
    breaker_failures: int
    breaker_open_s: float
    student_rps: float  # healthy, threshold -inf
    healthy_rps: float  # healthy, default threshold
    healthy_routes: dict[str, int]
    hung_rps: float  # Teacher stopped, after SETTLE_S
    hung_share_of_student: float
    hung_requests: int
    hung_routes: dict[str, int]
    hung_max_ms: float
    hung_over_deadline: int  # requests that took longer than the deadline
    errors: int
    wrong: int  # answered rows whose class is not the Student's for that image
    recovered_after_s: float | None  # from SIGCONT until a row reached the Teacher again


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    """``pid`` stopped with SIGSTOP for the block; never left stopped."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def hang_flag(repo: Path) -> Path:
    """While this file exists, ``LOCAL_TEACHER`` in ``repo`` hangs."""
    return repo / LOCAL_TEACHER / "hang"


@contextmanager
def hanging(flag: Path) -> Iterator[None]:
    """``LOCAL_TEACHER`` holds its executions for the block (``hanging_teacher``)."""
    flag.touch()
    try:
        yield
    finally:
        flag.unlink(missing_ok=True)


def recovery_s(url: str, model: str, image: np.ndarray) -> float | None:
    """Seconds until a Teacher-bound request is answered by the Teacher again."""
    client, began = connect(url, "grpc"), time.perf_counter()
    try:
        while time.perf_counter() - began < RECOVERY_LIMIT_S:
            answer = infer(client, model, {"image": image}, ["route"], threshold="inf")
            if answer["route"][0, 0].decode() == "teacher":
                return time.perf_counter() - began
            time.sleep(0.1)
        return None
    finally:
        client.close()


def fault_repository(repo: Path, dest: Path, teacher_url: str) -> Path:
    """The router, ``LOCAL`` (the router calling ``LOCAL_TEACHER``, the Teacher's ONNX file in
    the Python backend, served by ``hanging_teacher``), ``REMOTE`` (the router calling
    ``teacher_url``) and the models they call."""
    dest.mkdir(parents=True)
    for model in (ROUTER, TEACHER, STUDENT):
        shutil.copytree(repo / model, dest / model)
    onnx = onnx_path(repo, TEACHER)
    batch = mc.read(config_path(repo, TEACHER)).max_batch_size
    serving = ModelServing(backend="python")
    write_onnx_model(dest, LOCAL_TEACHER, onnx, describe(onnx), batch, serving)
    hold = model_py_source("ebjr.bench.hanging_teacher")
    (dest / LOCAL_TEACHER / VERSION / "model.py").write_text(hold)
    config = mc.read(config_path(dest, LOCAL_TEACHER))
    mc.write(
        config_path(dest, LOCAL_TEACHER), mc.edited(config, {"hang_flag": str(hang_flag(dest))})
    )
    router = mc.read(config_path(repo, ROUTER))
    for name, edits in (
        # its ONNX file would answer in the router's process: the hang is in its Python model
        (LOCAL, {"teacher_model": LOCAL_TEACHER, "teacher_execution": "bls"}),
        (REMOTE, {"teacher_url": teacher_url}),
    ):
        shutil.copytree(repo / ROUTER, dest / name)
        mc.write(config_path(dest, name), mc.edited(router, edits, name=name))
    return dest


def measure(
    server: TritonServer,
    router: str,
    teacher: str,
    fault: Callable[[], AbstractContextManager],
    images: np.ndarray,
    students: np.ndarray,
    seconds: float,
) -> FaultResult:
    """``router`` healthy (``-inf`` and its default threshold), then while ``fault()`` holds,
    then until it reaches the Teacher again."""
    settings = mc.parameters(mc.read(config_path(server.model_repository, router)))
    deadline = int(settings["teacher_timeout_ms"])
    url = server.grpc_url
    student = asyncio.run(
        closed_loop(url, router, images, WARMUP_S, USERS, students, threshold="-inf")
    )
    healthy = asyncio.run(closed_loop(url, router, images, WARMUP_S, USERS, students))
    with fault():
        hung = asyncio.run(closed_loop(url, router, images, seconds, USERS, students))
    recovered = recovery_s(url, router, images[:1])
    answered = [o for _, o in hung if o.kind == "answered"]
    student_rps, hung_rps = rate(student), rate(hung, SETTLE_S)
    return FaultResult(
        router=router,
        teacher=teacher,
        deadline_ms=deadline,
        breaker_failures=int(settings["breaker_failures"]),
        breaker_open_s=float(settings["breaker_open_s"]),
        student_rps=student_rps,
        healthy_rps=rate(healthy),
        healthy_routes=dict(Counter(o.route for _, o in healthy)),
        hung_rps=hung_rps,
        hung_share_of_student=hung_rps / student_rps,
        hung_requests=len(hung),
        hung_routes=dict(Counter(o.route for o in answered)),
        hung_max_ms=max(o.latency_ms for _, o in hung),
        hung_over_deadline=sum(o.latency_ms > deadline for _, o in hung),
        errors=sum(o.kind != "answered" for _, o in hung),
        wrong=sum(not o.correct for o in answered),
        recovered_after_s=recovered,
    )


def run(repo: Path, seconds: float) -> list[dict]:
    images = load_split("test")[0][:2000]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "teacher_repo").mkdir()
        shutil.copytree(repo / TEACHER, tmp / "teacher_repo" / TEACHER)
        with TritonServer.on_free_ports(tmp / "teacher_repo", tmp / "teacher.log") as teacher:
            served = fault_repository(repo, tmp / "repo", teacher.grpc_url)
            with TritonServer.on_free_ports(served, tmp / "server.log") as server:
                client = connect(server.grpc_url, "grpc")
                students = np.concatenate(
                    [
                        infer(client, "student", {"image": part}, ["logits"])["logits"].argmax(1)
                        for part in np.array_split(images, len(images) // 50)
                    ]
                )
                client.close()
                results = []
                flag = hang_flag(served)
                for router, where, fault in (
                    (LOCAL, "local, holding every execution", lambda: hanging(flag)),
                    (REMOTE, "remote, its server stopped", lambda: stopped(teacher.process.pid)),
                ):
                    result = measure(server, router, where, fault, images, students, seconds)
                    log.info(json.dumps(asdict(result)))
                    results.append(asdict(result))
    return results


def render(results: list[dict], seconds: float) -> str:
    lines = [
        "# FAULTS (generated by `make faults`; do not edit)",
        "",
        f"The router as built, with {USERS} gRPC requests always in flight (one Fashion-MNIST "
        "test image each, default threshold), while its Teacher hangs for "
        f"{seconds:.0f} s: a local Teacher (the same ONNX file in the Python backend, holding "
        "every execution) and a remote one (a second `tritonserver` stopped with SIGSTOP; its "
        "connection stays open). 'Student alone' is the same router at `threshold=-inf`, "
        "measured just before; "
        f"'while hung' counts from {SETTLE_S:.0f} s after the stop, once every router "
        "instance's breaker has opened. 'Wrong' counts answers whose class is not the "
        "Student's own for that image (what a fallback must give). Client and server share the "
        "machine's 2 cores.",
        "",
        "## Targets",
        "",
        "| Teacher | no request waits past its deadline (+ queueing) | while hung / Student "
        "alone >= 0.8 | wrong answers | errors |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['teacher']} | slowest {r['hung_max_ms']:.0f} ms, deadline "
            f"{r['deadline_ms']} ms, {r['hung_over_deadline']} of {r['hung_requests']} over "
            f"| {r['hung_share_of_student']:.2f} | {r['wrong']} | {r['errors']} |"
        )
    lines += [
        "",
        "## Every measurement",
        "",
        "| router | Teacher | breaker | Student alone req/s | healthy req/s | while hung "
        "req/s | routes while hung | back on the Teacher after resume |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        back = "never" if r["recovered_after_s"] is None else f"{r['recovered_after_s']:.1f} s"
        lines.append(
            f"| {r['router']} | {r['teacher']} | opens after {r['breaker_failures']} failures, "
            f"probes after {r['breaker_open_s']:g} s | {r['student_rps']:.0f} | "
            f"{r['healthy_rps']:.0f} | {r['hung_rps']:.0f} | {route_mix(r['hung_routes'])} | "
            f"{back} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPOSITORY)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "FAULTS.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = run(args.repo, args.seconds)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.out.write_text(render(results, args.seconds))
    print(f"Wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
