"""The remote Teacher: a router in the session server calls the Teacher on a second real
``tritonserver`` over gRPC (two servers on loopback)."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from fault_routers import REMOTE_TEACHER_PORTS
from tritonclient.utils import InferenceServerException

from ebjr.core.layout import DEFAULT_REPOSITORY
from ebjr.ops.client import classify, connect, infer
from ebjr.ops.server import TritonServer

REMOTE, REMOTE_FAIL = "router_remote", "router_remote_fail"


@pytest.fixture(scope="module")
def teacher_server(tmp_path_factory):
    """The Teacher alone, on the ports the remote routers were configured with."""
    root = tmp_path_factory.mktemp("teacher_server")
    shutil.copytree(DEFAULT_REPOSITORY / "teacher", root / "repo" / "teacher")
    server = TritonServer(root / "repo", "127.0.0.1", *REMOTE_TEACHER_PORTS, root / "log")
    with server:
        yield server


def remote_teacher(teacher_server, images) -> np.ndarray:
    client = connect(teacher_server.grpc_url, "grpc")
    return infer(client, "teacher", {"image": images}, ["logits"])["logits"]


def test_rows_below_the_threshold_are_the_remote_teachers_own_answers(
    server, teacher_server, client, test_images
):
    images = test_images[0][:64]
    student = infer(client, "student", {"image": images}, ["logits"])["logits"]
    threshold = float(np.median(classify(client, images, threshold="-inf").scores))
    answer = classify(client, images, model=REMOTE, threshold=repr(threshold))
    to_teacher = answer.scores < np.float32(threshold)
    assert 0 < to_teacher.sum() < len(images)
    assert answer.routes.tolist() == np.where(to_teacher, "teacher", "student").tolist()
    teacher = remote_teacher(teacher_server, images)
    np.testing.assert_allclose(answer.logits[to_teacher], teacher[to_teacher], atol=1e-5)
    np.testing.assert_allclose(answer.logits[~to_teacher], student[~to_teacher], atol=1e-5)


def test_a_stopped_teacher_server_gives_fallbacks_or_clean_errors_then_recovers(
    server, teacher_server, test_images
):
    client = connect(server.grpc_url, "grpc")
    images = test_images[0][:8]
    assert set(classify(client, images, model=REMOTE, threshold="inf").routes) == {"teacher"}
    teacher_server.stop()
    start = time.monotonic()
    answer = classify(client, images, model=REMOTE, threshold="inf")
    assert set(answer.routes) == {"student_fallback"}  # the Student's answers, marked
    student = infer(client, "student", {"image": images}, ["logits"])["logits"]
    np.testing.assert_allclose(answer.logits, student, atol=1e-5)
    with pytest.raises(InferenceServerException, match="teacher at 127.0.0.1"):
        classify(client, images, model=REMOTE_FAIL, threshold="inf")
    assert classify(client, images, model=REMOTE, threshold="-inf").routes.size == 8
    assert time.monotonic() - start < 10  # refused fast: no hang, far below the deadline

    teacher_server.start()  # the same ports; the routers reconnect by themselves
    teacher_server.wait_ready()
    deadline = time.monotonic() + 20
    answer = classify(client, images, model=REMOTE, threshold="inf")
    while set(answer.routes) != {"teacher"}:
        assert time.monotonic() < deadline, "the router did not reconnect to the Teacher"
        time.sleep(0.5)
        answer = classify(client, images, model=REMOTE, threshold="inf")
    np.testing.assert_allclose(answer.logits, remote_teacher(teacher_server, images), atol=1e-5)
