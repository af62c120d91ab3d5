"""Mutual TLS between the router and a remote Teacher, and between the edge client and it,
with certificates made for the test (``certificates``): a Teacher server that requires a
client certificate signed by its CA answers the router that has one; a router without one,
with a stranger's, or with a CA that does not trust the server gets the Student's answer at
once (``student_fallback``), or a clean error in ``fail`` mode."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from fault_routers import MTLS_TEACHER_PORTS, MTLS_TEACHER_URL
from tritonclient.utils import InferenceServerException

from ebjr.core.layout import DEFAULT_REPOSITORY
from ebjr.core.remote import TLS
from ebjr.ops.client import classify, connect, infer
from ebjr.ops.edge import EdgeClient
from ebjr.ops.server import TritonServer

FAST_S = 2.0  # a refused handshake is answered well within the routers' 3 s deadline


@pytest.fixture(scope="module")
def mtls_teacher(tmp_path_factory, certificates):
    """The Teacher alone, its gRPC endpoint requiring a client certificate from ``ca``."""
    root = tmp_path_factory.mktemp("mtls_teacher")
    shutil.copytree(DEFAULT_REPOSITORY / "teacher", root / "repo" / "teacher")
    ssl = [
        "--grpc-use-ssl=true",
        "--grpc-use-ssl-mutual=true",
        f"--grpc-server-cert={certificates.server.cert}",
        f"--grpc-server-key={certificates.server.key}",
        f"--grpc-root-cert={certificates.ca.cert}",
    ]
    server = TritonServer(root / "repo", "127.0.0.1", *MTLS_TEACHER_PORTS, root / "log", extra=ssl)
    with server:
        yield server


def teacher_logits(server, images: np.ndarray) -> np.ndarray:
    return infer(connect(server.grpc_url, "grpc"), "teacher", {"image": images}, ["logits"])[
        "logits"
    ]


def test_the_router_with_the_client_certificate_gets_the_teachers_answers(
    server, mtls_teacher, test_images
):
    client = connect(server.grpc_url, "grpc")
    images = test_images[0][:8]
    answer = classify(client, images, model="router_mtls", threshold="inf")
    assert set(answer.routes) == {"teacher"}
    np.testing.assert_allclose(answer.logits, teacher_logits(server, images), atol=1e-5)


@pytest.mark.parametrize(
    "model", ["router_mtls_no_cert", "router_mtls_stranger", "router_mtls_wrong_ca"]
)
def test_a_router_the_handshake_refuses_falls_back_to_the_student_at_once(
    server, mtls_teacher, test_images, model
):
    client = connect(server.grpc_url, "grpc")
    images = test_images[0][:8]
    student = infer(client, "student", {"image": images}, ["logits"])["logits"]
    for _ in range(3):
        began = time.perf_counter()
        answer = classify(client, images, model=model, threshold="inf")
        assert time.perf_counter() - began < FAST_S
        assert set(answer.routes) == {"student_fallback"}
        np.testing.assert_allclose(answer.logits, student, atol=1e-5)


def test_in_fail_mode_a_refused_handshake_is_a_clean_error(server, mtls_teacher, test_images):
    client = connect(server.http_url, "http")
    with pytest.raises(InferenceServerException) as err:
        classify(client, test_images[0][:2], model="router_mtls_fail", threshold="inf")
    assert "teacher" in str(err.value).lower() and "Traceback" not in str(err.value)


def test_the_edge_client_uses_mutual_tls_over_grpc(server, mtls_teacher, certificates, test_images):
    images = test_images[0][:16]
    good = TLS(
        str(certificates.ca.cert), str(certificates.client.key), str(certificates.client.cert)
    )
    edge = EdgeClient.from_repository(DEFAULT_REPOSITORY, MTLS_TEACHER_URL, tls=good)
    try:
        answer = edge.classify(images, threshold="inf")
    finally:
        edge.close()
    assert set(answer.routes) == {"teacher"} and answer.error is None
    np.testing.assert_allclose(answer.logits, teacher_logits(server, images), atol=1e-5)

    anonymous = TLS(str(certificates.ca.cert))
    edge = EdgeClient.from_repository(DEFAULT_REPOSITORY, MTLS_TEACHER_URL, tls=anonymous)
    try:
        refused = edge.classify(images, threshold="inf")
    finally:
        edge.close()
    assert set(refused.routes) == {"student_fallback"} and refused.error
