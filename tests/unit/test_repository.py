import json

import pytest
from onnx_factory import builder_args, labelled_npz, tiny_classifier

from ebjr.build import model_config as mc
from ebjr.build.model_config import ModelServing
from ebjr.build.onnx_info import describe
from ebjr.build.router_config import RouterSettings
from ebjr.core.preprocess import Preprocessing
from ebjr.core.tensors import ModelInfo, TensorSpec
from ebjr.tasks.classification.repository import build_repository, check_pair, main, router_input


def expected_onnx_config(name, input_name, platform_or_backend, kind="KIND_CPU", extra=""):
    """The config the builder should write for a tiny (1, 4, 4) -> 5 classifier, as a message."""
    return mc.parse(
        f'name: "{name}" {platform_or_backend} max_batch_size: 64 '
        f'input {{ name: "{input_name}" data_type: TYPE_FP32 dims: [1, 4, 4] }} '
        'output { name: "logits" data_type: TYPE_FP32 dims: [5] } '
        f"dynamic_batching {{}} instance_group {{ count: 1 kind: {kind} }} {extra}"
    )


NATIVE_THREADS = (
    'parameters { key: "intra_op_thread_count" value { string_value: "1" } } '
    'parameters { key: "inter_op_thread_count" value { string_value: "1" } }'
)


def test_builds_native_onnx_models_and_a_router_from_the_onnx_specs(tmp_path):
    student = tiny_classifier(tmp_path / "s.onnx", classes=5, input_name="pixels")
    teacher = tiny_classifier(tmp_path / "t.onnx", classes=5, input_name="input.1")
    out = tmp_path / "repo"
    build_repository(student, teacher, out, RouterSettings(default_threshold="3.5", score="energy"))
    assert (out / "student" / "1" / "model.onnx").read_bytes() == student.read_bytes()
    assert (out / "teacher" / "1" / "model.onnx").read_bytes() == teacher.read_bytes()
    assert not (out / "student" / "1" / "model.py").exists()
    assert mc.read(out / "student" / "config.pbtxt") == expected_onnx_config(
        "student", "pixels", 'platform: "onnxruntime_onnx"', extra=NATIVE_THREADS
    )
    assert mc.read(out / "teacher" / "config.pbtxt") == expected_onnx_config(
        "teacher", "input.1", 'platform: "onnxruntime_onnx"', extra=NATIVE_THREADS
    )
    assert "ebjr.serving.router" in (out / "ebjr_router" / "1" / "model.py").read_text()
    router = mc.read(out / "ebjr_router" / "config.pbtxt")
    # the router takes in a wider batch than its stages (admission_window): admission control
    # sees a built-up queue and refuses all but admit_requests of it; its stages get 64 rows
    assert (router.backend, router.max_batch_size) == ("python", 128)
    assert mc.parameters(router)["stage_batch_size"] == "64"
    # pixels as the Student takes them, or encoded images decoded to that shape; one of the two
    assert [(i.name, list(i.dims), i.optional) for i in router.input] == [
        ("image", [1, 4, 4], True),
        ("image_bytes", [1], True),
    ]
    preprocessing = Preprocessing.from_parameter(mc.parameters(router)["preprocessing"])
    assert (preprocessing.channels, preprocessing.height, preprocessing.width) == (1, 4, 4)
    assert [o.name for o in router.output] == ["logits", "class", "score", "threshold", "route"]
    assert list(router.output[0].dims) == [5]
    assert router.instance_group[0].kind == mc.pb.ModelInstanceGroup.KIND_CPU
    assert router.HasField("dynamic_batching")
    # no queue policy by default (it stalls this Triton's batcher: QueuePolicy)
    assert not router.dynamic_batching.HasField("default_queue_policy")
    assert mc.parameters(router) == {
        "student_model": "student",
        "student_input": "pixels",
        "student_output": "logits",
        "teacher_model": "teacher",
        "teacher_input": "input.1",
        "teacher_output": "logits",
        **RouterSettings(default_threshold="3.5", score="energy").parameters(),
        "teacher_timeout_ms": "100",  # measured: this Teacher is fast, so the floor
        "preprocessing": Preprocessing.for_shape((1, 4, 4)).to_parameter(),
    }
    assert mc.parameters(router)["default_threshold"] == "3.5"
    assert mc.parameters(router)["teacher_url"] == ""  # the local Teacher over BLS


def test_python_backend_option_wraps_onnxruntime_in_the_python_backend(tmp_path):
    model = tiny_classifier(tmp_path / "m.onnx", classes=5)
    out = tmp_path / "repo"
    settings = RouterSettings(default_threshold="0", score="energy")
    build_repository(model, model, out, settings, ModelServing(backend="python"))
    assert mc.read(out / "teacher" / "config.pbtxt") == expected_onnx_config(
        "teacher",
        "x",
        'backend: "python"',
        extra='parameters { key: "intra_op_threads" value { string_value: "1" } }',
    )
    assert "ebjr.serving.onnx_model" in (out / "teacher" / "1" / "model.py").read_text()


def test_gpu_configs_use_kind_gpu_tensorrt_and_a_bls_student(tmp_path):
    model = tiny_classifier(tmp_path / "m.onnx", classes=5)
    out = tmp_path / "repo"
    settings = RouterSettings(default_threshold="0", score="energy")
    build_repository(model, model, out, settings, ModelServing(device="gpu", tensorrt=True))
    tensorrt = (
        "optimization { execution_accelerators { gpu_execution_accelerator { name: "
        '"tensorrt" parameters { key: "precision_mode" value: "FP16" } parameters { key: '
        '"max_workspace_size_bytes" value: "1073741824" } } } }'
    )
    assert mc.read(out / "teacher" / "config.pbtxt") == expected_onnx_config(
        "teacher",
        "x",
        'platform: "onnxruntime_onnx"',
        "KIND_GPU",
        extra=NATIVE_THREADS + " " + tensorrt,
    )
    assert not (out / "teacher" / "1" / "model.py").exists()
    router = mc.read(out / "ebjr_router" / "config.pbtxt")
    assert mc.parameters(router)["student_execution"] == "bls"
    assert router.instance_group[0].kind == mc.pb.ModelInstanceGroup.KIND_CPU


@pytest.mark.parametrize(
    ("serving", "message"),
    [
        ({"backend": "python", "device": "gpu"}, "GPU serving needs the onnxruntime backend"),
        ({"tensorrt": True}, "TensorRT needs --device gpu"),
        ({"backend": "tensorflow"}, "backend must be one of"),
    ],
)
def test_impossible_serving_choices_are_clear_errors(serving, message):
    with pytest.raises(ValueError, match=message):
        ModelServing(**serving)


def test_a_negative_queue_bound_is_a_clear_error():
    with pytest.raises(ValueError, match="max_queue_size and queue timeout must be >= 0"):
        mc.QueuePolicy(max_queue_size=-1)


def test_a_queue_policy_bounds_the_queue_and_rejects_what_waited_too_long(tmp_path):
    teacher = tiny_classifier(tmp_path / "t.onnx", classes=5)
    info = describe(teacher)
    plain = mc.onnx_model("teacher", info, 64, ModelServing())
    assert not plain.dynamic_batching.HasField("default_queue_policy")
    serving = ModelServing(queue=mc.QueuePolicy(max_queue_size=8, timeout_ms=100))
    queue = mc.onnx_model("teacher", info, 64, serving).dynamic_batching.default_queue_policy
    assert (queue.max_queue_size, queue.default_timeout_microseconds) == (8, 100_000)
    assert queue.timeout_action == mc.pb.ModelQueuePolicy.REJECT


def test_class_count_mismatch_is_a_clear_error(tmp_path, capsys):
    student = tiny_classifier(tmp_path / "s.onnx", classes=5)
    teacher = tiny_classifier(tmp_path / "t.onnx", classes=7)
    with pytest.raises(ValueError, match="Student has 5 classes but Teacher has 7"):
        build_repository(student, teacher, tmp_path / "repo")
    with pytest.raises(SystemExit) as exit_info:
        main(["--student", str(student), "--teacher", str(teacher), "--out", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    assert "Student has 5 classes" in capsys.readouterr().err


def test_stages_at_their_own_resolution_share_the_largest_input_and_say_their_shapes(tmp_path):
    student = tiny_classifier(tmp_path / "s.onnx", side=4)  # the low-resolution Student
    teacher = tiny_classifier(tmp_path / "t.onnx", side=6)
    val = labelled_npz(tmp_path / "val.npz", 200, side=6)
    out = tmp_path / "repo"
    main([*builder_args(student, teacher, out, val), "--score", "energy"])
    router = mc.read(out / "ebjr_router" / "config.pbtxt")
    assert list(router.input[0].dims) == [1, 6, 6]  # the router takes the largest input
    parameters = mc.parameters(router)
    assert parameters["stage_shapes"] == "1x4x4,1x6x6"
    assert Preprocessing.from_parameter(parameters["preprocessing"]).height == 6
    assert list(mc.read(out / "student" / "config.pbtxt").input[0].dims) == [1, 4, 4]
    assert json.loads((out / "ebjr_router" / "calibration.json").read_text())["rows"] == 200
    # a pair of one size writes no stage_shapes (every stage takes the router's image)
    build_repository(
        teacher, teacher, tmp_path / "same", RouterSettings(default_threshold="1", score="energy")
    )
    assert "stage_shapes" not in mc.parameters(mc.read(tmp_path / "same/ebjr_router/config.pbtxt"))


def spec(shape, dtype="TYPE_FP32"):
    return ModelInfo(TensorSpec("x", shape, dtype), TensorSpec("logits", (5,), "TYPE_FP32"), 1)


@pytest.mark.parametrize(
    "student, teacher, message",
    [
        (spec((3, 4, 4)), spec((1, 4, 4)), "Student input \\(3, 4, 4\\)"),
        (spec((1, 4, 4), "TYPE_UINT8"), spec((1, 6, 6), "TYPE_UINT8"), "float images"),
        (spec((1, 4, 4), "TYPE_FP16"), spec((1, 4, 4)), "differs from Teacher input"),
    ],
)
def test_inputs_the_router_cannot_resize_between_are_a_clear_error(student, teacher, message):
    with pytest.raises(ValueError, match=message):
        check_pair(student, teacher)


def test_stage_inputs_must_nest_in_the_largest_one():
    assert router_input((spec((1, 4, 4)), spec((1, 6, 6)))).shape == (1, 6, 6)
    assert router_input((spec((1, 6, 6)), spec((1, 4, 4)))).shape == (1, 6, 6)
    with pytest.raises(ValueError, match="at least as large"):
        router_input((spec((1, 4, 8)), spec((1, 6, 6))))


def test_calibrated_build_writes_calibration_from_validation_data(tmp_path):
    student = tiny_classifier(tmp_path / "s.onnx", classes=5)
    teacher = tiny_classifier(tmp_path / "t.onnx", classes=5)
    val = labelled_npz(tmp_path / "val.npz", 200)
    out = tmp_path / "repo"
    main([*builder_args(student, teacher, out, val), "--score", "softmax"])
    record = json.loads((out / "ebjr_router" / "calibration.json").read_text())
    assert record["rows"] == 200 and record["split"] == "val"
    assert record["scores"] == ["softmax"] and record["chosen_by"] == "pinned"
    assert record["stages"] == ["student", "teacher"]
    assert set(record["evidence"]) == {"energy", "softmax", "entropy", "energy_of_softmax"}
    router = mc.read(out / "ebjr_router" / "config.pbtxt")
    assert mc.parameters(router)["default_threshold"] == "calibrated"


def test_uncalibrated_build_needs_a_numeric_default(tmp_path):
    model = tiny_classifier(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="without validation data"):
        build_repository(model, model, tmp_path / "repo")


def test_calibrating_the_default_models_never_reads_the_test_split(tmp_path, monkeypatch):
    from ebjr.ops.server import PROJECT_ROOT
    from ebjr.training import data

    real = data.load_split
    seen = []

    def guarded(split):
        seen.append(split)
        if split == "test":
            raise AssertionError("calibration read the test split")
        return real(split)

    monkeypatch.setattr(data, "load_split", guarded)
    repo = PROJECT_ROOT / "model_repository"
    student, teacher = repo / "student" / "1" / "model.onnx", repo / "teacher" / "1" / "model.onnx"
    main(builder_args(student, teacher, tmp_path / "repo", "fashion-mnist:val"))
    assert seen == ["val"]


def test_edge_cloud_layout_moves_the_teacher_to_its_own_repository(tmp_path, capsys):
    import numpy as np

    student = tiny_classifier(tmp_path / "s.onnx", classes=5)
    teacher = tiny_classifier(tmp_path / "t.onnx", classes=5)
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "val.npz",
        images=rng.random((100, 1, 4, 4), dtype=np.float32),
        labels=rng.integers(0, 5, 100),
    )
    out, cloud = tmp_path / "cascade", tmp_path / "teacher_server"
    args = builder_args(student, teacher, out, tmp_path / "val.npz")
    main([*args, "--remote-teacher", "10.0.0.7:8001", "--teacher-out", str(cloud)])
    assert not (out / "teacher").exists() and (cloud / "teacher" / "1" / "model.onnx").exists()
    assert mc.read(cloud / "teacher" / "config.pbtxt").name == "teacher"
    # and the Teacher behind a decoder, for clients that send encoded images (the edge's)
    ensemble = mc.read(cloud / "teacher_bytes" / "config.pbtxt")
    assert ensemble.platform == "ensemble" and [i.name for i in ensemble.input] == ["image_bytes"]
    steps = ensemble.ensemble_scheduling.step
    assert [(s.model_name, dict(s.input_map)) for s in steps] == [
        ("image_decoder", {"image_bytes": "image_bytes"}),
        ("teacher", {"x": "pixels"}),  # the Teacher's own input name
    ]
    decoder = mc.read(cloud / "image_decoder" / "config.pbtxt")
    assert [(o.name, list(o.dims)) for o in decoder.output] == [("image", [1, 4, 4])]
    assert "ebjr.serving.decoder" in (cloud / "image_decoder/1/model.py").read_text()
    router = mc.parameters(mc.read(out / "ebjr_router" / "config.pbtxt"))
    assert router["teacher_url"] == "10.0.0.7:8001" and router["teacher_model"] == "teacher"
    assert "gRPC at 10.0.0.7:8001" in capsys.readouterr().out


@pytest.mark.parametrize("url", ["http://host:8001", "host", "host:port", ""])
def test_a_bad_remote_teacher_url_is_a_clear_error(tmp_path, url):
    model = tiny_classifier(tmp_path / "m.onnx")
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                *("--student", str(model), "--teacher", str(model), "--out", str(tmp_path)),
                "--default-threshold",
                "1",
                "--score",
                "energy",
                "--remote-teacher",
                url,
                "--teacher-out",
                str(tmp_path / "t"),
            ]
        )
    assert exit_info.value.code == 2
    with pytest.raises(ValueError, match="host:port"):
        RouterSettings(teacher_url=url or "x")
