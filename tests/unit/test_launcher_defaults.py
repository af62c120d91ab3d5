"""Security defaults of the launcher and its ``tritonserver`` command line."""

from pathlib import Path

import pytest

from ebjr.ops import restricted
from ebjr.ops.server import (
    BACKENDS_ENV,
    TRITONSERVER_ENV,
    TritonServer,
    exposure_warning,
    main,
    server_command,
    server_env,
)


def test_defaults_bind_loopback_and_disable_model_control():
    command = server_command(Path("model_repository"))
    assert "--http-address=127.0.0.1" in command
    assert "--grpc-address=127.0.0.1" in command
    assert "--metrics-address=127.0.0.1" in command
    assert "--model-control-mode=none" in command
    assert not any("log-verbose" in arg for arg in command)


def test_binding_beyond_loopback_warns():
    assert exposure_warning("127.0.0.1") is None and exposure_warning("localhost") is None
    assert "reachable from the network" in exposure_warning("0.0.0.0")


def test_the_launchers_servers_restrict_the_risky_apis_behind_the_token(tmp_path):
    server = TritonServer(Path("model_repository"), admin_token="s3cret")
    flags = [a for a in server.command if "restricted" in a]
    apis = "shared-memory,model-repository,statistics,trace,logging"
    assert flags == [
        f"--http-restricted-api={apis}:x-ebjr-admin-token=s3cret",
        f"--grpc-restricted-protocol={apis}:x-ebjr-admin-token=s3cret",
    ]
    assert not [a for a in server.command if "inference" in a or "health" in a]
    open_server = TritonServer(Path("model_repository"), restricted_apis=())
    assert open_server.admin_token is None
    assert not [a for a in open_server.command if "restricted" in a]


def test_unrestricted_beyond_loopback_is_refused(tmp_path):
    with pytest.raises(SystemExit) as err:
        main(["--host", "0.0.0.0", "--unrestricted", "--run-dir", str(tmp_path)])
    assert "refusing to serve 0.0.0.0" in str(err.value)
    assert not list(tmp_path.iterdir())  # refused before anything was claimed or started


def test_the_token_comes_from_the_env_then_its_file_then_a_generated_local_file(
    tmp_path, monkeypatch
):
    local = tmp_path / "admin-token"
    monkeypatch.delenv(restricted.TOKEN_ENV, raising=False)
    monkeypatch.delenv(restricted.TOKEN_FILE_ENV, raising=False)
    token, generated = restricted.ensure_token(local)
    assert generated and len(token) >= 32
    assert local.read_text().strip() == token
    assert local.stat().st_mode & 0o777 == 0o600
    assert restricted.ensure_token(local) == (token, False)  # printed once: generated once
    secret = tmp_path / "secret"
    secret.write_text("from-a-secret\n")
    monkeypatch.setenv(restricted.TOKEN_FILE_ENV, str(secret))
    assert restricted.configured_token(local) == "from-a-secret"
    monkeypatch.setenv(restricted.TOKEN_ENV, "from-the-env")
    assert restricted.configured_token(local) == "from-the-env"
    assert restricted.admin_headers("http") == {"x-ebjr-admin-token": "from-the-env"}
    assert restricted.admin_headers("grpc") == {
        "triton-grpc-protocol-x-ebjr-admin-token": "from-the-env"
    }
    secret.write_text("")
    monkeypatch.delenv(restricted.TOKEN_ENV)
    with pytest.raises(RuntimeError, match="is empty"):
        restricted.configured_token(local)


def test_a_token_file_that_cannot_be_read_stops_the_launcher_with_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv(restricted.TOKEN_ENV, raising=False)
    monkeypatch.setenv(restricted.TOKEN_FILE_ENV, str(tmp_path / "missing"))
    with pytest.raises(SystemExit) as err:
        main(["--run-dir", str(tmp_path)])
    assert str(err.value).startswith(f"error: {restricted.TOKEN_FILE_ENV}=")
    assert "cannot be read" in str(err.value)


def test_an_installed_triton_is_run_with_its_own_backends_and_environment(monkeypatch):
    monkeypatch.setenv(TRITONSERVER_ENV, "/opt/tritonserver/bin/tritonserver")
    monkeypatch.setenv(BACKENDS_ENV, "/opt/tritonserver/backends")
    monkeypatch.setenv("LD_LIBRARY_PATH", "/usr/local/cuda/lib64")
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    command = server_command(Path("model_repository"), admin_token="t")
    assert command[0] == "/opt/tritonserver/bin/tritonserver"
    assert "--backend-directory=/opt/tritonserver/backends" in command
    assert any(a.startswith("--http-restricted-api=") for a in command)
    env = server_env()
    assert env["LD_LIBRARY_PATH"] == "/usr/local/cuda/lib64" and "VIRTUAL_ENV" not in env
    monkeypatch.delenv(BACKENDS_ENV)
    with pytest.raises(RuntimeError, match=BACKENDS_ENV):
        server_command(Path("model_repository"))
