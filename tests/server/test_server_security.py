"""Triton's risky endpoints are closed by default (``ebjr.ops.restricted``): on a real server
started as the launcher starts it (the router, Student and Teacher of ``model_repository/``),
registering the Python backend's own IPC memory as a shared-memory region (the
middle step of CVE-2025-23319 / 23320 / 23334), statistics, the repository index, trace and
log settings need the admin token, over HTTP and gRPC. Inference, health, metadata and model
config stay open."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from ebjr.core.layout import DEFAULT_REPOSITORY, ROUTER, STUDENT, TEACHER
from ebjr.ops import restricted, shm
from ebjr.ops.client import ClientError, classify, connect, infer, open_client
from ebjr.ops.restricted import admin_headers
from ebjr.ops.server import TritonServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The default router, Student and Teacher, served with the launcher's defaults."""
    root = tmp_path_factory.mktemp("restricted")
    for model in (ROUTER, STUDENT, TEACHER):
        shutil.copytree(DEFAULT_REPOSITORY / model, root / "repo" / model)
    with TritonServer.on_free_ports(root / "repo", root / "log") as started:
        assert any("--http-restricted-api=" in a for a in started.command)
        yield started


def python_backend_region(server) -> str:
    """The key of a Python-backend IPC region the server maps (as listed in ``/dev/shm``)."""
    maps = Path(f"/proc/{server.process.pid}/maps").read_text()
    names = sorted({line.rsplit("/", 1)[-1] for line in maps.splitlines() if shm.PREFIX in line})
    assert names, "the server maps no Python-backend region"
    return "/" + names[0]


@pytest.fixture(params=["http", "grpc"])
def protocol(request) -> str:
    return request.param


def url(server, protocol: str) -> str:
    return server.http_url if protocol == "http" else server.grpc_url


@pytest.fixture
def client(server, protocol):
    """A client of this module's server (not the session's), closed after the test: an idle
    connection left open holds the server's shutdown for its whole exit timeout."""
    client = connect(url(server, protocol), protocol)
    yield client
    client.close()


def refused_as_restricted(call) -> None:
    with pytest.raises(InferenceServerException) as err:
        call()
    assert "restricted" in str(err.value), err.value


def test_registering_the_python_backends_ipc_memory_needs_the_token(client, server, protocol):
    key = python_backend_region(server)
    refused_as_restricted(lambda: client.register_system_shared_memory("probe", key, 1024))
    refused_as_restricted(lambda: client.get_system_shared_memory_status())
    token = admin_headers(protocol)
    assert token, "the test session sets EBJR_ADMIN_TOKEN"
    client.register_system_shared_memory("probe", key, 1024, headers=token)
    try:
        status = client.get_system_shared_memory_status(headers=token)
        assert "probe" in str(status) and key in str(status)
    finally:
        client.unregister_system_shared_memory("probe", headers=token)


def test_statistics_repository_trace_and_logging_need_the_token(client, server, protocol):
    token = admin_headers(protocol)
    for call in (
        client.get_inference_statistics,
        client.get_model_repository_index,
        client.get_trace_settings,
        client.get_log_settings,
    ):
        refused_as_restricted(call)
        assert call(headers=token) is not None
    wrong = {k: "not-the-token" for k in token}
    refused_as_restricted(lambda: client.get_inference_statistics(headers=wrong))


def test_inference_health_and_metadata_stay_open(client, test_images):
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_model_metadata("ebjr_router") is not None
    assert client.get_model_config("ebjr_router") is not None
    images = test_images[0][:4]
    answer = classify(client, images, threshold="inf")
    teacher = infer(client, "teacher", {"image": images}, ["logits"])["logits"]
    np.testing.assert_allclose(answer.logits, teacher, atol=1e-5)


def test_a_client_names_the_ready_models_only_with_the_token(server, protocol, monkeypatch):
    with pytest.raises(ClientError) as err:
        open_client(url(server, protocol), protocol, model="no_such_model")
    assert "ready models:" in str(err.value) and "ebjr_router" in str(err.value)
    monkeypatch.delenv(restricted.TOKEN_ENV)
    monkeypatch.setattr(restricted, "LOCAL_TOKEN_FILE", Path("/nonexistent/admin-token"))
    with pytest.raises(ClientError) as err:
        open_client(url(server, protocol), protocol, model="no_such_model")
    assert "not ready" in str(err.value) and "needs the admin token" in str(err.value)
