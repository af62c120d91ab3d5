"""The detector router (``ebjr_detector``, paper eqs. 12-14) on the real server: each image's
answer equals the Student's or the Teacher's own outputs (direct calls to ``detector_student``
and ``detector_teacher``) as its score and threshold dictate, the Teacher runs once per batch on
only the images that need it, and bad input gets a clear 4xx while the server keeps serving."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from server_stats import settled_stage_counts
from tritonclient.utils import InferenceServerException

from ebjr.build.model_config import parameters, read
from ebjr.core.calibration import Calibration, read_calibration
from ebjr.core.layout import calibration_path
from ebjr.ops.client import Detections, connect, detect, infer
from ebjr.tasks.detection import DETECTOR_ROUTER, DETECTOR_STUDENT, DETECTOR_TEACHER
from ebjr.tasks.detection.data import CANVAS, make_scenes
from ebjr.tasks.detection.energy import detection_energy
from ebjr.tasks.detection.scores import DETECTION_SCORES

OUTPUTS = ["boxes", "scores", "class_logits", "box_logits", "valid"]


@pytest.fixture(scope="module")
def scenes() -> np.ndarray:
    return make_scenes("test", 48).images


@pytest.fixture(scope="module")
def calibration(server) -> Calibration:
    return read_calibration(calibration_path(server.model_repository, DETECTOR_ROUTER))


def direct(client, model: str, images: np.ndarray) -> dict[str, np.ndarray]:
    return infer(client, model, {"image": images}, OUTPUTS)


def student_scores(student: dict, calibration: Calibration, server) -> np.ndarray:
    """Eq. 14 (or the calibrated term) on the Student's direct outputs, independently of the
    router's packing."""
    config = parameters(read(server.model_repository / DETECTOR_ROUTER / "config.pbtxt"))
    return detection_energy(
        student["class_logits"],
        student["box_logits"],
        student["valid"],
        float(config["bin_width"]),
        DETECTION_SCORES[calibration.scores[0]],
    )


def assert_rows(answer: Detections, student: dict, teacher: dict, scores, threshold) -> None:
    keep = scores >= np.float32(threshold)
    assert answer.routes.tolist() == np.where(keep, "student", "teacher").tolist()
    for rows, found in ((keep, student), (~keep, teacher)):
        np.testing.assert_array_equal(answer.boxes[rows], found["boxes"][rows])
        np.testing.assert_array_equal(answer.box_scores[rows], found["scores"][rows])
        np.testing.assert_array_equal(answer.valid[rows], found["valid"][rows])
        np.testing.assert_array_equal(
            answer.classes[rows], found["class_logits"][rows].argmax(axis=-1)
        )
    np.testing.assert_allclose(answer.scores, scores, rtol=1e-5)
    np.testing.assert_array_equal(answer.thresholds, np.float32(threshold))


def test_each_image_is_the_student_or_the_teacher_as_its_threshold_dictates(
    client, server, scenes, calibration
):
    student = direct(client, DETECTOR_STUDENT, scenes)
    teacher = direct(client, DETECTOR_TEACHER, scenes)
    scores = student_scores(student, calibration, server)
    thresholds = [float(np.quantile(scores, q)) for q in (0.25, 0.5, 0.75)]
    for t in [*thresholds, "-inf", "inf"]:
        answer = detect(client, scenes, threshold=str(t))
        assert_rows(answer, student, teacher, scores, float(t))
    answer = detect(client, scenes, threshold=str(thresholds[1]))
    assert {"student", "teacher"} == set(answer.routes)  # both detectors exercised


def test_the_knobs_resolve_through_the_calibration_in_map_units(
    client, server, scenes, calibration
):
    student = direct(client, DETECTOR_STUDENT, scenes)
    teacher = direct(client, DETECTOR_TEACHER, scenes)
    scores = student_scores(student, calibration, server)
    default = calibration.parity_thresholds[0]
    assert_rows(detect(client, scenes), student, teacher, scores, default)
    target = float(calibration.table.accuracy[len(calibration.table.accuracy) // 2])
    answer = detect(client, scenes, min_accuracy=str(target))
    assert_rows(
        answer, student, teacher, scores, calibration.thresholds_for("min_accuracy", target)[0]
    )
    answer = detect(client, scenes, teacher_fraction="0.3")
    assert_rows(
        answer, student, teacher, scores, calibration.thresholds_for("teacher_fraction", 0.3)[0]
    )
    assert calibration.teacher_accuracy > calibration.stage_accuracy[0] + 0.05  # mAP units


def test_the_teacher_runs_once_per_batch_on_only_the_images_that_need_it(
    client, server, scenes, calibration
):
    scores = student_scores(direct(client, DETECTOR_STUDENT, scenes), calibration, server)
    before = settled_stage_counts(server, DETECTOR_ROUTER)
    answer = detect(client, scenes, threshold=repr(float(np.median(scores))))
    after = settled_stage_counts(server, DETECTOR_ROUTER)
    assert after[0] - before[0] == (answer.routes == "teacher").sum()
    assert after[1] - before[1] == 1


def test_an_image_where_the_student_finds_nothing_goes_to_the_teacher(client, calibration):
    blank = np.zeros((2, 1, CANVAS, CANVAS), dtype=np.float32)
    student = direct(client, DETECTOR_STUDENT, blank)
    assert not student["valid"].any()  # the defined case: no box kept
    answer = detect(client, blank, threshold="-1e30")
    assert np.isneginf(answer.scores).all()
    assert answer.routes.tolist() == ["teacher", "teacher"]
    assert detect(client, blank, threshold="-inf").routes.tolist() == ["student", "student"]


@pytest.mark.parametrize(
    ("images", "params", "message"),
    [
        (np.zeros((1, 1, 28, 28), np.float32), {}, "image"),  # a classifier's input size
        (np.full((1, 1, CANVAS, CANVAS), np.nan, np.float32), {}, "NaN"),
        (np.zeros((1, 1, CANVAS, CANVAS), np.float32), {"teacher_fraction": "1.5"}, "[0, 1]"),
        (np.zeros((1, 1, CANVAS, CANVAS), np.float32), {"min_accuracy": "0.99"}, "min_accuracy"),
        (np.zeros((1, 1, CANVAS, CANVAS), np.float32), {"threshold": "abc"}, "threshold"),
    ],
)
def test_bad_input_gets_a_clear_error_and_the_router_keeps_serving(
    client, scenes, images, params, message
):
    with pytest.raises(InferenceServerException, match=message.replace("[", r"\[")) as err:
        detect(client, images, **params)
    status = str(err.value.status())
    assert status in ("400", "StatusCode.INVALID_ARGUMENT"), status
    assert detect(client, scenes[:2]).routes.shape == (2,)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_detect_cli_prints_the_routed_boxes_and_draws_them(server, tmp_path, capsys, protocol):
    sys.path.insert(0, str(Path(__file__).parents[2] / "clients"))
    import detect as detect_cli

    url = server.http_url if protocol == "http" else server.grpc_url
    out = tmp_path / "boxes.png"
    args = ["--url", url, "--protocol", protocol, "--index", "3", "--count", "2", "--out", str(out)]
    assert detect_cli.main([*args, "--threshold", "inf", "--min-confidence", "0"]) == 0
    printed = capsys.readouterr().out
    expected = detect(connect(url, protocol), make_scenes("test", 5).images[3:], threshold="inf")
    assert printed.count("teacher answered") == 2
    assert printed.count("\n  ") == expected.valid.sum()  # one line per kept box
    assert Image.open(out).size == (2 * CANVAS * detect_cli.SCALE, CANVAS * detect_cli.SCALE + 16)
    assert detect_cli.main([*args, "--png", str(tmp_path / "missing.png")]) == 1
    assert "no such file" in capsys.readouterr().err
