"""One real ``tritonserver`` per test session, on free loopback ports."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from ebjr import data
from ebjr.client import connect
from ebjr.server import PROJECT_ROOT, TritonServer

MODEL_REPOSITORY = PROJECT_ROOT / "model_repository"


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> TritonServer:
    http, grpc, metrics = free_ports(3)
    log = Path(tmp_path_factory.mktemp("triton")) / "tritonserver.log"
    triton = TritonServer(MODEL_REPOSITORY, "127.0.0.1", http, grpc, metrics, log_file=log)
    triton.start()
    try:
        triton.wait_ready(timeout=180)
    except Exception:
        triton.stop()
        raise RuntimeError(f"tritonserver did not start:\n{log.read_text()[-4000:]}") from None
    yield triton
    triton.stop()


@pytest.fixture(params=["http", "grpc"])
def client(request, server):
    url = server.http_url if request.param == "http" else server.grpc_url
    return connect(url, request.param)


@pytest.fixture(scope="session")
def test_images() -> tuple[np.ndarray, np.ndarray]:
    """The first 256 Fashion-MNIST test images and labels."""
    images, labels = data.load_split("test")
    return images[:256], labels[:256]
