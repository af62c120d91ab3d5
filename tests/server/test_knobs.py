"""Each knob resolves, on the real server, to the exact table point that a brute-force count
over the validation rows picks (``max_accuracy_drop``: a hand-written Learn-then-Test walk).

The expectation never goes through the lookup under test (``Calibration.thresholds_for``):
the validation rows are scored here, each table threshold's Teacher share and accuracy (or
error) is counted row by row, and the point each knob promises is found by a plain loop. The
served ``threshold`` must be that point's, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom
from tritonclient.utils import InferenceServerException

from ebjr.build.model_config import parameters, read
from ebjr.core.calibration import read_calibration
from ebjr.core.gate import routing_score
from ebjr.core.layout import (
    DEFAULT_REPOSITORY,
    ROUTER,
    calibration_path,
    config_path,
    onnx_path,
)
from ebjr.core.scores import ScoreContext
from ebjr.ops.client import classify, detect, infer
from ebjr.tasks.classification.evaluate import model_outputs
from ebjr.tasks.regression import REGRESSOR_ROUTER, REGRESSOR_STUDENT, REGRESSOR_TEACHER
from ebjr.tasks.regression.data import make_rotated
from ebjr.tasks.regression.repository import outputs
from ebjr.tasks.regression.scores import EnergyHead, predict, score


def nearest_share(shares: list[float], wanted: float) -> int:
    """The point whose Teacher share is nearest ``wanted`` (the first, on a tie)."""
    best = 0
    for k, share in enumerate(shares):
        if abs(share - wanted) < abs(shares[best] - wanted):
            best = k
    return best


def cheapest_meeting(shares: list[float], meets: list[bool]) -> int:
    """Among the points that meet the target, the one sending the fewest rows to the Teacher
    (every row pays the Student, so the fewest FLOPs; the first, on a tie)."""
    best = None
    for k, (share, ok) in enumerate(zip(shares, meets, strict=True)):
        if ok and (best is None or share < shares[best]):
            best = k
    assert best is not None, "no table point meets the target"
    return best


@pytest.fixture(scope="module")
def validation_rows() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The default router's routing score on each validation row, and where its Student and
    its Teacher answer right: ``(N,)`` each, from the models' own logits (run by the evaluation,
    cached by the models' digest: the unit tests' evaluation has run them already)."""
    record = read_calibration(calibration_path(DEFAULT_REPOSITORY, ROUTER))
    val = model_outputs(DEFAULT_REPOSITORY, "val")
    scores = routing_score(
        record.scores[0], ScoreContext(record.temperature, DEFAULT_REPOSITORY / ROUTER)
    )(val.student)
    return scores, val.student.argmax(1) == val.labels, val.teacher.argmax(1) == val.labels


@pytest.fixture(scope="module")
def classifier_table(validation_rows):
    """The default router's table thresholds and, counted on the validation rows, each one's
    Teacher share and cascade accuracy."""
    record = read_calibration(calibration_path(DEFAULT_REPOSITORY, ROUTER))
    scores, student_right, teacher_right = validation_rows
    shares, accuracy = [], []
    for t in record.table.thresholds:
        to_teacher = scores < t
        shares.append(float(to_teacher.mean()))
        right = teacher_right[to_teacher].sum() + student_right[~to_teacher].sum()
        accuracy.append(float(right / len(scores)))
    return record.table.thresholds, shares, accuracy


def served_threshold(client, **knob) -> float:
    answer = classify(client, np.zeros((2, 1, 28, 28), np.float32), **knob)
    assert len(set(answer.thresholds.tolist())) == 1
    return float(answer.thresholds[0])


def test_the_table_is_what_the_validation_rows_count(classifier_table):
    thresholds, shares, accuracy = classifier_table
    record = read_calibration(calibration_path(DEFAULT_REPOSITORY, ROUTER))
    np.testing.assert_allclose(record.table.teacher_fraction, shares, atol=5e-7)
    np.testing.assert_allclose(record.table.accuracy, accuracy, atol=5e-7)


@pytest.mark.parametrize("wanted", [0.0, 0.05, 0.123, 0.3, 0.77, 1.0])
def test_teacher_fraction_serves_the_point_with_the_nearest_counted_share(
    client, classifier_table, wanted
):
    thresholds, shares, _ = classifier_table
    expected = thresholds[nearest_share(shares, wanted)]
    assert served_threshold(client, teacher_fraction=str(wanted)) == np.float32(expected)


@pytest.mark.parametrize("share_of_gap", [0.0, 0.5, 0.9, 1.0])
def test_min_accuracy_serves_the_cheapest_point_whose_counted_accuracy_reaches_it(
    client, classifier_table, share_of_gap
):
    thresholds, shares, accuracy = classifier_table
    low, high = min(accuracy), max(accuracy)
    target = low + share_of_gap * (high - low)
    expected = thresholds[cheapest_meeting(shares, [a >= target for a in accuracy])]
    assert served_threshold(client, min_accuracy=repr(target)) == np.float32(expected)


@pytest.fixture(scope="module")
def regressor_table():
    """The regressor router's table thresholds and, counted on the validation images, each
    one's Teacher share and mean absolute error (degrees)."""
    record = read_calibration(calibration_path(DEFAULT_REPOSITORY, REGRESSOR_ROUTER))
    config = parameters(read(config_path(DEFAULT_REPOSITORY, REGRESSOR_ROUTER)))
    head = EnergyHead.from_parameters(config)
    rotated = make_rotated("val")
    found = [
        outputs(onnx_path(DEFAULT_REPOSITORY, m), rotated.images)
        for m in (REGRESSOR_STUDENT, REGRESSOR_TEACHER)
    ]
    forms = config["prediction"].split(",")
    error = [
        np.abs(predict(form, f, head) - rotated.angles)
        for form, f in zip(forms, found, strict=True)
    ]
    scores = score(record.scores[0], found[0], head)
    shares, mae = [], []
    for (t,) in record.table.thresholds:
        to_teacher = scores < t
        shares.append(float(to_teacher.mean()))
        mae.append(float(np.where(to_teacher, error[1], error[0]).mean()))
    return record, shares, mae


def test_the_regressor_table_is_what_the_validation_images_count(regressor_table):
    record, shares, mae = regressor_table
    np.testing.assert_allclose(record.table.teacher_fraction, shares, atol=5e-7)
    np.testing.assert_allclose(-record.table.accuracy, mae, atol=2e-5)


@pytest.mark.parametrize("level", [0.02, 0.3, 0.7, 0.98])
def test_max_error_serves_the_cheapest_point_whose_counted_error_stays_within_it(
    client, regressor_table, level
):
    record, shares, mae = regressor_table
    # halfway between two counted errors: the file's rounding (1e-6) cannot change the answer
    errors = sorted(set(mae))
    i = int(level * (len(errors) - 2))
    bound = (errors[i] + errors[i + 1]) / 2
    expected = record.table.thresholds[cheapest_meeting(shares, [m <= bound for m in mae])][0]
    answer = infer(
        client,
        REGRESSOR_ROUTER,
        {"image": np.zeros((2, 1, 28, 28), np.float32)},
        ["threshold"],
        max_error=repr(bound),
    )
    assert answer["threshold"][:, 0].tolist() == [np.float32(expected)] * 2


def p_value(lost: int, n: int, drop: float) -> float:
    """Hoeffding-Bentkus for a binary loss, written out (the smaller of the Hoeffding bound,
    its rate capped at ``drop``, and the exact binomial tail)."""
    r = min(lost / n, drop)
    h = (r * np.log(r / drop) if r > 0 else 0.0) + (1 - r) * np.log((1 - r) / (1 - drop))
    return min(float(np.exp(-n * h)), float(binom.cdf(lost, n, drop)))


@pytest.fixture(scope="module")
def lost_counts(validation_rows):
    """The default router's validation rows: each distinct score threshold from ``+inf`` down
    and the rows it loses to the Teacher (kept, Student wrong, Teacher right)."""
    scores, student_right, teacher_right = validation_rows
    lost = ~student_right & teacher_right
    thresholds = [np.inf, *np.unique(scores)[::-1]]
    return thresholds, [int((lost & (scores >= t)).sum()) for t in thresholds], len(scores)


@pytest.mark.parametrize(("drop", "confidence"), [(0.005, 0.9), (0.01, 0.95), (0.02, 0.8)])
def test_max_accuracy_drop_serves_the_last_threshold_fixed_sequence_testing_certifies(
    client, lost_counts, drop, confidence
):
    """Walking the thresholds down from "everything to the Teacher", each is certified while
    its p-value stays within ``1 - confidence``; the served threshold is the last one."""
    thresholds, lost, n = lost_counts
    expected = thresholds[0]
    for t, count in zip(thresholds, lost, strict=True):
        if p_value(count, n, drop) > 1 - confidence:
            break
        expected = t
    served = served_threshold(client, max_accuracy_drop=repr(drop), confidence=repr(confidence))
    assert served == np.float32(expected) and np.isfinite(expected)


def test_max_accuracy_drop_asks_for_confidence_0_9_by_default(client):
    assert served_threshold(client, max_accuracy_drop="0.005") == served_threshold(
        client, max_accuracy_drop="0.005", confidence="0.9"
    )


@pytest.mark.parametrize(
    ("knob", "words"),
    [
        ({"confidence": "0.9"}, "confidence qualifies max_accuracy_drop"),
        ({"max_accuracy_drop": "0.0001"}, "smallest calibrated drop"),
        ({"max_accuracy_drop": "0.01", "confidence": "0.999"}, "at most 0.99"),
        ({"max_accuracy_drop": "0.01", "min_accuracy": "0.9"}, "at most one"),
    ],
)
def test_a_promise_the_table_cannot_keep_is_a_clear_error(client, knob, words):
    with pytest.raises(InferenceServerException, match=words):
        served_threshold(client, **knob)
    assert served_threshold(client, threshold="inf") == np.inf  # still serving


def test_the_detector_router_says_it_has_no_such_knob(client):
    with pytest.raises(InferenceServerException, match="no risk-controlled table"):
        detect(client, np.zeros((1, 1, 96, 96), np.float32), max_accuracy_drop="0.01")
