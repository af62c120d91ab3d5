"""The remote-stage client (``ebjr.core.remote``) where no server answers; its calls to a real
Teacher server are tested in ``tests/server/test_server_remote.py``."""

import time

import numpy as np
import pytest

from ebjr.core.remote import TLS, HttpRemoteModel, RemoteError, RemoteModel, check_url
from ebjr.core.routing import StageError
from ebjr.ops.server import free_ports


def closed_port() -> str:
    """A loopback address nothing listens on."""
    return f"127.0.0.1:{free_ports(1)[0]}"


@pytest.mark.parametrize("url", ["teacher:8001", "10.0.0.7:8001", "[::1]:8001", "a-b.c_d:1"])
def test_host_port_urls_are_accepted(url):
    assert check_url(url) == url


@pytest.mark.parametrize("url", ["", "teacher", "grpc://teacher:8001", "teacher:port", "a b:1"])
def test_other_urls_are_refused_with_the_expected_form(url):
    with pytest.raises(ValueError, match="host:port"):
        check_url(url)


def test_tls_passes_the_pem_files_paths_the_client_reads(tmp_path):
    # tritonclient.grpc.aio opens the files itself: it takes paths, not their bytes
    (tmp_path / "ca.pem").write_bytes(b"CA")
    args = TLS(root_certificates=str(tmp_path / "ca.pem")).client_args()
    assert args == {
        "ssl": True,
        "root_certificates": str(tmp_path / "ca.pem"),
        "private_key": None,
        "certificate_chain": None,
    }


def test_tls_refuses_a_missing_file_or_a_key_without_its_certificate(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        TLS(root_certificates=str(tmp_path / "missing.pem")).client_args()
    (tmp_path / "client.key").write_bytes(b"KEY")
    with pytest.raises(ValueError, match="both a private key and its certificate"):
        TLS(private_key=str(tmp_path / "client.key")).client_args()


def test_an_unreachable_grpc_server_is_a_stage_error_within_the_deadline():
    model = RemoteModel(closed_port(), "teacher", "image", "logits")
    try:
        start = time.monotonic()
        with pytest.raises(RemoteError, match="teacher at 127.0.0.1") as err:
            model(np.zeros((2, 1, 28, 28), np.float32), timeout_s=0.5)
        assert isinstance(err.value, StageError)  # the router's fallback rule applies
        assert time.monotonic() - start < 2.5
    finally:
        model.close()


def test_an_unreachable_http_server_is_a_stage_error():
    model = HttpRemoteModel(closed_port(), "teacher", "image", "logits", timeout_s=0.5)
    try:
        with pytest.raises(RemoteError, match="teacher at 127.0.0.1"):
            model(np.zeros((2, 1, 28, 28), np.float32))
    finally:
        model.close()
