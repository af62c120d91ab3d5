"""The specialized router (paper eqs. 16-18) against the real server, row by row."""

from __future__ import annotations

import numpy as np
import pytest

from ebjr.core.calibration import Calibration, read_calibration
from ebjr.core.layout import calibration_path
from ebjr.core.scores import get_score
from ebjr.ops.client import classify, infer
from ebjr.training import data

ROUTER = "ebjr_specialized"


@pytest.fixture(scope="module")
def record(server) -> Calibration:
    return read_calibration(calibration_path(server.model_repository, ROUTER))


def direct(client, model, images):
    return infer(client, model, {"image": images}, ["logits"])["logits"]


def test_rows_follow_eqs_16_to_18_including_confident_other(client, record):
    images = data.load_split("test")[0][:1000]
    classes, other = np.array(record.popular), len(record.popular)
    score = get_score(record.scores[0], record.temperature)
    special = np.concatenate(
        [direct(client, "student_specialized", images[i : i + 64]) for i in range(0, 1000, 64)]
    )
    scores = score(np.delete(special, other, axis=1))  # eq. 17, written out here
    predicted_other = special.argmax(1) == other
    # "Other" rows score low (paper eq. 15): take a threshold that half of them pass.
    threshold = float(np.median(scores[predicted_other]))
    confident_other = np.flatnonzero(predicted_other & (scores >= threshold))
    assert len(confident_other) >= 4, "too few rows predicted 'other' in 1000 images"
    rows = np.concatenate([confident_other[:16], np.arange(48)])
    batch = images[rows]

    answer = classify(client, batch, model=ROUTER, threshold=threshold)
    np.testing.assert_allclose(answer.scores, scores[rows], rtol=1e-5, atol=1e-5)
    to_student = (answer.scores >= np.float32(threshold)) & ~predicted_other[rows]
    assert answer.routes.tolist() == np.where(to_student, "student", "teacher").tolist()
    assert (answer.routes[:16] == "teacher").all()  # confident "other" -> Teacher (eq. 16)
    mapped = np.full((len(rows), 10), -1e30, dtype=np.float32)  # eq. 18's label mapping
    mapped[:, classes] = np.delete(special[rows], other, axis=1)
    teacher = direct(client, "teacher", batch)
    np.testing.assert_allclose(answer.logits[to_student], mapped[to_student], atol=1e-5)
    np.testing.assert_allclose(answer.logits[~to_student], teacher[~to_student], atol=1e-5)
    assert set(answer.classes[to_student]) <= set(classes.tolist())  # Teacher's label space


def test_minus_inf_still_sends_other_to_the_teacher(client, record):
    images = data.load_split("test")[0][:64]
    other = len(record.popular)
    predicted_other = direct(client, "student_specialized", images).argmax(1) == other
    answer = classify(client, images, model=ROUTER, threshold="-inf")
    assert answer.routes.tolist() == np.where(predicted_other, "teacher", "student").tolist()


def test_plumbing_calibrated_knob_reaches_the_specialized_router(client, record):
    """Plumbing: the oracle is the project's own calibration record (the knobs themselves are
    checked against brute-force counts in test_calibration.py)."""
    calibration = record
    images = data.load_split("test")[0][:16]
    answer = classify(client, images, model=ROUTER, teacher_fraction=0.5)
    np.testing.assert_array_equal(
        answer.thresholds, np.float32(calibration.thresholds_for("teacher_fraction", 0.5)[0])
    )
    default = classify(client, images, model=ROUTER)
    np.testing.assert_array_equal(default.thresholds, np.float32(calibration.parity_thresholds[0]))
    certified = classify(client, images, model=ROUTER, max_accuracy_drop=0.01, confidence=0.95)
    (expected,) = calibration.certified_thresholds(0.01, 0.95)
    np.testing.assert_array_equal(certified.thresholds, np.float32(expected))
    assert np.isfinite(expected)  # "other" rows always go on: never -inf
