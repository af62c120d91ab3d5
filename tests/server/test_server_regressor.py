"""The regressor router (``ebjr_regressor``, paper eqs. 8-11) on the real server: each image's
prediction is the Student's or the Teacher's own (direct calls to ``regressor_student`` and
``regressor_teacher``) as its score and threshold dictate, the knobs resolve in degrees of
error, the Teacher runs once per batch on only the images that need it, and bad input gets a
clear 4xx while the server keeps serving."""

from __future__ import annotations

import numpy as np
import pytest
from server_stats import settled_stage_counts
from tritonclient.utils import InferenceServerException

from ebjr.build.model_config import parameters, read
from ebjr.core.calibration import Calibration, read_calibration
from ebjr.core.layout import calibration_path
from ebjr.ops.client import infer
from ebjr.tasks.regression import REGRESSOR_ROUTER, REGRESSOR_STUDENT, REGRESSOR_TEACHER
from ebjr.tasks.regression.data import make_rotated
from ebjr.tasks.regression.scores import EnergyHead, predict, score

OUTPUTS = ["angle_logits", "direct", "candidates", "candidate_scores"]
ANSWER = ["prediction", "score", "threshold", "route"]


@pytest.fixture(scope="module")
def rotated():
    return make_rotated("test", 64)


@pytest.fixture(scope="module")
def calibration(server) -> Calibration:
    return read_calibration(calibration_path(server.model_repository, REGRESSOR_ROUTER))


@pytest.fixture(scope="module")
def config(server) -> dict[str, str]:
    return parameters(read(server.model_repository / REGRESSOR_ROUTER / "config.pbtxt"))


def ask(client, images, **params) -> dict:
    out = infer(client, REGRESSOR_ROUTER, {"image": images}, ANSWER, **params)
    out["route"] = np.array([r.decode() for r in out["route"].ravel()])
    return out


def expected(client, images, calibration, config):
    """Each model's own prediction and the Student's score, from direct calls."""
    head = EnergyHead.from_parameters(config)
    student, teacher = (
        infer(client, m, {"image": images}, OUTPUTS) for m in (REGRESSOR_STUDENT, REGRESSOR_TEACHER)
    )
    forms = config["prediction"].split(",")  # the Student's, the Teacher's
    predictions = [
        predict(form, f, head) for form, f in zip(forms, (student, teacher), strict=True)
    ]
    return predictions, score(calibration.scores[0], student, head)


def assert_rows(answer, predictions, scores, threshold):
    keep = scores >= np.float32(threshold)
    assert answer["route"].tolist() == np.where(keep, "student", "teacher").tolist()
    np.testing.assert_allclose(
        answer["prediction"][:, 0], np.where(keep, *predictions), rtol=1e-5, atol=1e-4
    )
    np.testing.assert_allclose(answer["score"][:, 0], scores, rtol=1e-5)
    np.testing.assert_array_equal(answer["threshold"][:, 0], np.float32(threshold))


def test_each_prediction_is_the_student_or_the_teacher_as_its_threshold_dictates(
    client, rotated, calibration, config
):
    predictions, scores = expected(client, rotated.images, calibration, config)
    for t in [float(np.quantile(scores, q)) for q in (0.3, 0.7)] + [-np.inf, np.inf]:
        assert_rows(ask(client, rotated.images, threshold=repr(t)), predictions, scores, t)
    routes = ask(client, rotated.images, threshold=repr(float(np.median(scores))))["route"]
    assert set(routes) == {"student", "teacher"}


def test_the_knobs_resolve_through_the_calibration_in_degrees(client, rotated, calibration, config):
    predictions, scores = expected(client, rotated.images, calibration, config)
    assert_rows(ask(client, rotated.images), predictions, scores, calibration.parity_thresholds[0])
    error = float(-calibration.table.accuracy[len(calibration.table.accuracy) // 3])
    answer = ask(client, rotated.images, max_error=str(error))
    assert_rows(answer, predictions, scores, calibration.thresholds_for("max_error", error)[0])
    answer = ask(client, rotated.images, teacher_fraction="0.4")
    assert_rows(answer, predictions, scores, calibration.thresholds_for("teacher_fraction", 0.4)[0])
    assert -calibration.teacher_accuracy < -calibration.stage_accuracy[0]  # Teacher errs less


def test_the_teacher_runs_once_per_batch_on_only_the_images_that_need_it(
    client, server, rotated, calibration, config
):
    _, scores = expected(client, rotated.images, calibration, config)
    before = settled_stage_counts(server, REGRESSOR_ROUTER)
    answer = ask(client, rotated.images, threshold=repr(float(np.median(scores))))
    after = settled_stage_counts(server, REGRESSOR_ROUTER)
    assert after[0] - before[0] == (answer["route"] == "teacher").sum()
    assert after[1] - before[1] == 1


@pytest.mark.parametrize(
    ("shape", "params", "message"),
    [
        ((1, 1, 96, 96), {}, "image"),  # a detector's input size
        (None, {"max_error": "0.001"}, "max_error must be >="),
        (None, {"min_accuracy": "0.9"}, "max_error"),
        (None, {"teacher_fraction": "-1"}, "[0, 1]"),
        ("nan", {}, "NaN"),
    ],
)
def test_bad_input_gets_a_clear_error_and_the_router_keeps_serving(
    client, rotated, shape, params, message
):
    images = rotated.images[:2].copy()
    if shape == "nan":
        images[0, 0, 3, 3] = np.nan
    elif shape is not None:
        images = np.zeros(shape, np.float32)
    with pytest.raises(InferenceServerException, match=message.replace("[", r"\[")) as err:
        ask(client, images, **params)
    assert str(err.value.status()) in ("400", "StatusCode.INVALID_ARGUMENT")
    assert ask(client, rotated.images[:2])["route"].shape == (2,)
