"""Detection routing without Triton: packing a detector's outputs into cascade rows, the
detection scores on those rows, the router's calibration with COCO mAP, and the builder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ebjr.build import model_config as mc
from ebjr.build.onnx_info import describe_graph
from ebjr.build.router_config import PUBLISHED
from ebjr.core.calibration import read_calibration
from ebjr.core.layout import calibration_path, config_path
from ebjr.core.packing import LAYOUT_PARAMETER, RowLayout
from ebjr.core.tensors import TensorSpec
from ebjr.tasks.detection import (
    DETECTION_MODELS,
    DETECTOR_ROUTER,
    DETECTOR_STUDENT,
    DETECTOR_TEACHER,
)
from ebjr.tasks.detection.calibration import measure
from ebjr.tasks.detection.data import make_scenes
from ebjr.tasks.detection.energy import detection_energy
from ebjr.tasks.detection.metrics import detections
from ebjr.tasks.detection.models import BIN_WIDTH
from ebjr.tasks.detection.repository import build_detector_router, main
from ebjr.tasks.detection.scores import DETECTION_SCORES, detection_score, detector_layout

STUDENT_ONNX = DETECTION_MODELS / f"{DETECTOR_STUDENT}.onnx"
TEACHER_ONNX = DETECTION_MODELS / f"{DETECTOR_TEACHER}.onnx"


@pytest.fixture(scope="module")
def val():
    scenes = make_scenes("val", 60)
    return scenes, detections(STUDENT_ONNX, scenes.images), detections(TEACHER_ONNX, scenes.images)


@pytest.fixture(scope="module")
def layout() -> RowLayout:
    return detector_layout(describe_graph(STUDENT_ONNX).outputs)


def test_packed_rows_unpack_to_the_detectors_own_outputs(val, layout):
    _, student, _ = val
    rows = layout.pack([student[name] for name in layout.names])
    assert rows.shape == (60, layout.width) and rows.dtype == np.float32
    unpacked = layout.unpack(rows)
    for name in layout.names:
        np.testing.assert_array_equal(unpacked[name], student[name])
        assert unpacked[name].dtype == student[name].dtype  # valid comes back as bool
    assert RowLayout.from_json(layout.to_json()) == layout


def test_detection_scores_on_rows_equal_eq_14_on_the_tensors(val, layout):
    _, student, _ = val
    rows = layout.pack([student[name] for name in layout.names])
    for name, terms in DETECTION_SCORES.items():
        expected = detection_energy(
            student["class_logits"], student["box_logits"], student["valid"], BIN_WIDTH, terms
        )
        np.testing.assert_array_equal(detection_score(name, layout, BIN_WIDTH)(rows), expected)


def test_a_plain_box_head_is_routed_on_the_class_term_alone(layout):
    plain = RowLayout(tuple(s for s in layout.specs if s.name != "box_logits"))
    assert detection_score("detection_class_energy", plain, BIN_WIDTH).terms == ("class",)
    with pytest.raises(ValueError, match="box_logits"):
        detection_score("detection_energy", plain, BIN_WIDTH)
    with pytest.raises(ValueError, match="unknown detection score"):
        detection_score("energy", layout, BIN_WIDTH)
    with pytest.raises(ValueError, match="valid"):
        detector_layout((TensorSpec("boxes", (10, 4), "TYPE_FP32"),))


@pytest.fixture(scope="module")
def built(tmp_path_factory, val):
    out = tmp_path_factory.mktemp("repo")
    record = build_detector_router(STUDENT_ONNX, TEACHER_ONNX, out, val[0])
    return out, record


def test_the_builder_writes_both_detectors_and_a_calibrated_router(built, layout):
    out, record = built
    student = mc.read(config_path(out, DETECTOR_STUDENT))
    assert student.platform == "onnxruntime_onnx"
    assert [o.name for o in student.output] == list(layout.names)
    assert mc.pb.DataType.Name(student.output[-1].data_type) == "TYPE_BOOL"
    router = mc.read(config_path(out, DETECTOR_ROUTER))
    assert router.backend == "python"
    assert [o.name for o in router.output] == [
        "boxes",
        "classes",
        "scores",
        "valid",
        "score",
        "threshold",
        "route",
    ]
    p = mc.parameters(router)
    assert RowLayout.from_json(p[LAYOUT_PARAMETER]) == layout
    assert set(PUBLISHED) <= set(p)
    assert json.loads(p["operating_points"])["parity"]["threshold"] == repr(
        record.parity_thresholds[0]
    )


def test_calibration_serves_the_cheapest_score_reaching_97_percent_of_the_teachers_map(built, val):
    out, record = built
    scenes, student, teacher = val
    stored = read_calibration(calibration_path(out, DETECTOR_ROUTER))
    assert stored.parity_thresholds == record.parity_thresholds
    assert record.scores[0] in DETECTION_SCORES and record.parity_share == 0.97
    fs, ft = record.stage_flops
    rows = detector_layout(describe_graph(STUDENT_ONNX).outputs)
    scores = detection_score(record.scores[0], rows, BIN_WIDTH)(
        rows.pack([student[n] for n in rows.names])
    )
    point = measure(scenes, student, teacher, scores >= record.parity_thresholds[0], fs, ft, 0)
    assert point.map == pytest.approx(record.parity_accuracy)
    assert point.map >= 0.97 * record.teacher_accuracy - 1e-9
    assert point.flops == pytest.approx(record.parity_flops, rel=1e-6)
    reaching = record.table.accuracy >= 0.97 * record.teacher_accuracy - 1e-9
    assert record.parity_flops == pytest.approx(record.table.flops[reaching].min(), rel=1e-6)
    assert np.all(np.diff(record.table.flops) > 0) and np.all(np.diff(record.table.accuracy) > 0)


def test_calibration_refuses_the_test_split(val, layout):
    from ebjr.tasks.detection.calibration import calibrate_detector

    scenes, student, teacher = val
    with pytest.raises(ValueError, match="test split"):
        calibrate_detector(scenes, student, teacher, layout, BIN_WIDTH, (1, 2), ("s", "t"), "test")


def test_a_classifier_as_teacher_is_refused_with_a_clear_error(tmp_path, capsys):
    classifier = DETECTION_MODELS.parent / "model_repository" / "teacher" / "1" / "model.onnx"
    with pytest.raises(SystemExit) as exit_:
        main(["--teacher", str(classifier), "--out", str(tmp_path), "--val-scenes", "0"])
    assert exit_.value.code == 2
    assert "must share input and outputs" in capsys.readouterr().err
