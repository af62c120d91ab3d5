"""The native ONNX Runtime backend: its cached build, its clear errors, and that the server
really serves Student and Teacher on it."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from ebjr.core.layout import DEFAULT_REPOSITORY, onnx_path
from ebjr.core.onnx_runner import OnnxClassifier
from ebjr.ops import native_backend
from ebjr.ops.client import infer


def test_a_built_backend_is_not_rebuilt(monkeypatch):
    library = native_backend.build()  # `make test` built it already (`make backend`)

    def no_build(*args, **kwargs):
        raise AssertionError(f"rebuilt although the stamp is current: {args}")

    monkeypatch.setattr(subprocess, "run", no_build)
    assert native_backend.build() == library and library.exists()


def test_changed_sources_change_the_stamp(monkeypatch, tmp_path):
    ort = native_backend.onnxruntime_library()
    before = native_backend.fingerprint(ort)
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "a.cc").write_text("int a;")
    monkeypatch.setattr(native_backend, "SOURCES", sources)
    changed = native_backend.fingerprint(ort)
    (sources / "a.cc").write_text("int b;")
    assert len({before, changed, native_backend.fingerprint(ort)}) == 3


def test_missing_system_packages_without_root_name_the_apt_get_line(monkeypatch, tmp_path):
    monkeypatch.setattr(native_backend.os, "geteuid", lambda: 1000)
    monkeypatch.setitem(native_backend.SYSTEM_PACKAGES, "rapidjson-dev", tmp_path / "absent.h")
    with pytest.raises(native_backend.BuildError, match=r"sudo apt-get install -y rapidjson-dev"):
        native_backend.ensure_system_packages()


def test_a_failed_build_is_one_clear_error_with_the_log(monkeypatch, tmp_path):
    monkeypatch.setattr(native_backend, "SOURCES", tmp_path / "no-sources")
    with pytest.raises(native_backend.BuildError, match="configuring .* failed .* log: ") as err:
        native_backend.build(build_dir=tmp_path / "build")
    assert (tmp_path / "build" / "build.log").exists()
    assert not (tmp_path / "build" / "stamp").exists()
    assert "native_backend" not in str(err.value).splitlines()[0]


def test_an_unbuilt_backend_says_how_to_build_it(tmp_path):
    with pytest.raises(native_backend.BuildError, match="run `make backend`"):
        native_backend.built_library(tmp_path)


@pytest.mark.parametrize("model", ["student", "teacher"])
def test_student_and_teacher_are_served_by_the_native_onnxruntime_backend(server, client, model):
    config = client.get_model_config(model)
    config = config.config if hasattr(config, "config") else config  # gRPC wraps it
    platform = config.platform if hasattr(config, "platform") else config["platform"]
    backend = config.backend if hasattr(config, "backend") else config["backend"]
    assert (platform, backend) == ("onnxruntime_onnx", "onnxruntime")
    assert "'onnxruntime' TRITONBACKEND API version" in server.log_file.read_text()


@pytest.mark.parametrize("model", ["student", "teacher"])
def test_native_and_python_wrapped_models_answer_alike(client, test_images, model):
    images = test_images[0][:32]
    native = infer(client, model, {"image": images}, ["logits"])["logits"]
    wrapped = infer(client, f"{model}_python", {"image": images}, ["logits"])["logits"]
    offline = OnnxClassifier(onnx_path(DEFAULT_REPOSITORY, model))(images)
    np.testing.assert_allclose(native, offline, atol=1e-5)
    np.testing.assert_allclose(wrapped, offline, atol=1e-5)
