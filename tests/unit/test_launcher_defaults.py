"""Security defaults of the launcher's ``tritonserver`` command line."""

from pathlib import Path

from ebjr.ops.server import exposure_warning, server_command


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
