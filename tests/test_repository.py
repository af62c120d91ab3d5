import pytest
from onnx_factory import tiny_classifier

from ebjr.repository import RouterSettings, build_repository, main


def test_builds_three_models_from_the_onnx_specs(tmp_path):
    student = tiny_classifier(tmp_path / "s.onnx", classes=5, input_name="pixels")
    teacher = tiny_classifier(tmp_path / "t.onnx", classes=5, input_name="input.1")
    out = tmp_path / "repo"
    build_repository(student, teacher, out, RouterSettings(default_threshold="3.5", score="energy"))
    assert (out / "student" / "1" / "model.onnx").read_bytes() == student.read_bytes()
    assert (out / "teacher" / "1" / "model.onnx").read_bytes() == teacher.read_bytes()
    assert "ebjr.serving.onnx_model" in (out / "student" / "1" / "model.py").read_text()
    assert "ebjr.serving.router" in (out / "ebjr_router" / "1" / "model.py").read_text()
    student_cfg = (out / "student" / "config.pbtxt").read_text()
    assert 'name: "pixels", data_type: TYPE_FP32, dims: [ 1, 4, 4 ]' in student_cfg
    assert 'name: "logits", data_type: TYPE_FP32, dims: [ 5 ]' in student_cfg
    router_cfg = (out / "ebjr_router" / "config.pbtxt").read_text()
    assert 'key: "student_input", value: { string_value: "pixels" }' in router_cfg
    assert 'key: "teacher_input", value: { string_value: "input.1" }' in router_cfg
    assert 'key: "default_threshold", value: { string_value: "3.5" }' in router_cfg
    assert 'name: "image", data_type: TYPE_FP32, dims: [ 1, 4, 4 ]' in router_cfg
    assert "dynamic_batching" in router_cfg and "KIND_CPU" in router_cfg


def test_onnxruntime_backend_with_tensorrt_writes_platform_config(tmp_path):
    model = tiny_classifier(tmp_path / "m.onnx")
    out = tmp_path / "repo"
    settings = RouterSettings(default_threshold="0", score="energy")
    build_repository(model, model, out, settings, backend="onnxruntime", tensorrt=True)
    cfg = (out / "teacher" / "config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in cfg and 'name: "tensorrt"' in cfg
    assert not (out / "teacher" / "1" / "model.py").exists()


def test_class_count_mismatch_is_a_clear_error(tmp_path, capsys):
    student = tiny_classifier(tmp_path / "s.onnx", classes=5)
    teacher = tiny_classifier(tmp_path / "t.onnx", classes=7)
    with pytest.raises(ValueError, match="Student has 5 classes but Teacher has 7"):
        build_repository(student, teacher, tmp_path / "repo")
    with pytest.raises(SystemExit) as exit_info:
        main(["--student", str(student), "--teacher", str(teacher), "--out", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    assert "Student has 5 classes" in capsys.readouterr().err


def test_input_shape_mismatch_is_a_clear_error(tmp_path):
    student = tiny_classifier(tmp_path / "s.onnx", side=4)
    teacher = tiny_classifier(tmp_path / "t.onnx", side=6)
    with pytest.raises(ValueError, match="Student input"):
        build_repository(student, teacher, tmp_path / "repo")


def test_calibrated_build_writes_calibration_from_validation_data(tmp_path):
    import json

    import numpy as np

    student = tiny_classifier(tmp_path / "s.onnx", classes=5)
    teacher = tiny_classifier(tmp_path / "t.onnx", classes=5)
    rng = np.random.default_rng(0)
    images, labels = rng.random((200, 1, 4, 4), dtype=np.float32), rng.integers(0, 5, 200)
    np.savez(tmp_path / "val.npz", images=images, labels=labels)
    out = tmp_path / "repo"
    main(["--student", str(student), "--teacher", str(teacher), "--out", str(out),
          "--val-data", str(tmp_path / "val.npz"), "--score", "softmax"])  # fmt: skip
    record = json.loads((out / "ebjr_router" / "calibration.json").read_text())
    assert record["rows"] == 200 and record["split"] == "val"
    assert record["score"] == "softmax" and record["chosen_by"] == "pinned"
    assert set(record["evidence"]) == {"energy", "softmax", "entropy", "energy_of_softmax"}
    router_cfg = (out / "ebjr_router" / "config.pbtxt").read_text()
    assert 'key: "default_threshold", value: { string_value: "calibrated" }' in router_cfg


def test_uncalibrated_build_needs_a_numeric_default(tmp_path):
    model = tiny_classifier(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="without validation data"):
        build_repository(model, model, tmp_path / "repo")


def test_calibrating_the_default_models_never_reads_the_test_split(tmp_path, monkeypatch):
    from ebjr import data
    from ebjr.server import PROJECT_ROOT

    real = data.load_split
    seen = []

    def guarded(split):
        seen.append(split)
        if split == "test":
            raise AssertionError("calibration read the test split")
        return real(split)

    monkeypatch.setattr(data, "load_split", guarded)
    repo = PROJECT_ROOT / "model_repository"
    main(["--student", str(repo / "student" / "1" / "model.onnx"),
          "--teacher", str(repo / "teacher" / "1" / "model.onnx"),
          "--out", str(tmp_path / "repo"), "--val-data", "fashion-mnist:val"])  # fmt: skip
    assert seen == ["val"]
