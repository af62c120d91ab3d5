"""The circuit breaker of a later stage, on the real server: a local Teacher that hangs
(``teacher_switch``) and a remote Teacher server stopped with SIGSTOP (its connection stays
open, nothing answers). The breaker variants wait 300 ms per call, open after 2 failed calls
in a row and probe again after 1 s (``fault_routers.BREAKER``)."""

from __future__ import annotations

import os
import shutil
import signal
import time

import numpy as np
import pytest
from fault_routers import REMOTE_TEACHER_PORTS, hang_flag
from tritonclient.utils import InferenceServerException

from ebjr.core.layout import DEFAULT_REPOSITORY
from ebjr.ops import prometheus
from ebjr.ops.client import classify, connect, infer
from ebjr.ops.server import TritonServer

DEADLINE_S = 0.3
SLACK_S = 0.5  # the server's own work around the wait, on a busy 2-core machine
REQUESTS = 10
INSTANCES = 2  # each router instance has its own breaker: 2 x 2 calls wait before all open


def timed(client, images, model: str) -> tuple[float, object]:
    began = time.perf_counter()
    answer = classify(client, images, model=model, threshold="inf")
    return time.perf_counter() - began, answer


def assert_fails_fast_with_the_students_answers(client, images, model: str) -> None:
    """Teacher-bound requests during the fault: none waits past the deadline, every row is the
    Student's own answer marked ``student_fallback``, and once the breakers are open the rest
    are answered without waiting at all."""
    student = infer(client, "student", {"image": images}, ["logits"])["logits"]
    waits = []
    for _ in range(REQUESTS):
        seconds, answer = timed(client, images, model)
        waits.append(seconds)
        assert set(answer.routes) == {"student_fallback"}
        np.testing.assert_allclose(answer.logits, student, atol=1e-5)
    assert max(waits) < DEADLINE_S + SLACK_S, waits
    slow = sum(w >= DEADLINE_S for w in waits)
    assert slow <= 2 * INSTANCES, f"the breaker never opened: {slow} calls waited ({waits})"


def wait_until_the_teacher_answers(client, images, model: str) -> object:
    """Half-open probes close the breaker once the Teacher answers again."""
    deadline = time.monotonic() + 10
    answer = classify(client, images, model=model, threshold="inf")
    while set(answer.routes) != {"teacher"}:
        assert time.monotonic() < deadline, "the breaker never closed again"
        time.sleep(0.2)
        answer = classify(client, images, model=model, threshold="inf")
    return answer


def test_a_hung_local_teacher_trips_the_breaker_and_a_probe_closes_it(server, test_images):
    client = connect(server.grpc_url, "grpc")
    images = test_images[0][:4]
    flag = hang_flag(server.model_repository)
    assert set(classify(client, images, model="router_breaker", threshold="inf").routes) == {
        "teacher"
    }
    before = prometheus.scrape(server.metrics_url)
    flag.touch()
    try:
        assert_fails_fast_with_the_students_answers(client, images, "router_breaker")
        time.sleep(0.7)  # two flushes of the router's metrics
        after = prometheus.scrape(server.metrics_url)
        states = [
            v
            for labels, v in prometheus.samples(after, "ebjr_breaker_state")
            if labels["model"] == "router_breaker"
        ]
        assert 2.0 in states, states  # open (2) in the instances that tripped

        def delta(name: str) -> float:
            return prometheus.value(after, name, model="router_breaker") - prometheus.value(
                before, name, model="router_breaker"
            )

        assert delta("ebjr_breaker_opens_total") >= 1
        assert delta("ebjr_short_circuited_rows_total") >= len(images)
        assert delta("ebjr_short_circuited_rows_total") + 4 * delta(
            "ebjr_teacher_failures_total"
        ) == REQUESTS * len(images)  # every row was either short-circuited or failed
    finally:
        flag.unlink(missing_ok=True)
    time.sleep(1.0)  # the breakers go half-open
    assert wait_until_the_teacher_answers(client, images, "router_breaker").logits.sum() == 0


def test_in_fail_mode_an_open_breaker_is_a_clean_error_at_once(server, test_images):
    client = connect(server.http_url, "http")
    images = test_images[0][:2]
    flag = hang_flag(server.model_repository)
    flag.touch()
    try:
        waits, messages = [], []
        for _ in range(REQUESTS):
            began = time.perf_counter()
            with pytest.raises(InferenceServerException) as err:
                classify(client, images, model="router_breaker_fail", threshold="inf")
            waits.append(time.perf_counter() - began)
            messages.append(str(err.value))
        assert max(waits) < DEADLINE_S + SLACK_S, waits
        assert any("circuit breaker is open" in m for m in messages), messages
        # rows the Student keeps are still answered while the breaker is open
        kept = classify(client, images, model="router_breaker_fail", threshold="-inf")
        assert set(kept.routes) == {"student"}
    finally:
        flag.unlink(missing_ok=True)


@pytest.fixture()
def stopped_teacher_server(tmp_path):
    """A remote Teacher server (on the remote routers' ports) that the test can SIGSTOP."""
    shutil.copytree(DEFAULT_REPOSITORY / "teacher", tmp_path / "repo" / "teacher")
    server = TritonServer(tmp_path / "repo", "127.0.0.1", *REMOTE_TEACHER_PORTS, tmp_path / "log")
    with server:
        yield server
        os.kill(server.process.pid, signal.SIGCONT)  # never leave it stopped


def test_a_sigstopped_remote_teacher_trips_the_breaker_and_a_probe_closes_it(
    server, stopped_teacher_server, test_images
):
    client = connect(server.grpc_url, "grpc")
    images = test_images[0][:4]
    model = "router_remote_breaker"
    wait_until_the_teacher_answers(client, images, model)  # the channel is up
    os.kill(stopped_teacher_server.process.pid, signal.SIGSTOP)
    try:
        assert_fails_fast_with_the_students_answers(client, images, model)
    finally:
        os.kill(stopped_teacher_server.process.pid, signal.SIGCONT)
    time.sleep(1.0)
    answer = wait_until_the_teacher_answers(client, images, model)
    teacher = connect(stopped_teacher_server.grpc_url, "grpc")
    expected = infer(teacher, "teacher", {"image": images}, ["logits"])["logits"]
    np.testing.assert_allclose(answer.logits, expected, atol=1e-5)
