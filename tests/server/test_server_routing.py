"""The router against the real Triton server, over HTTP and gRPC (paper eqs. 6-7)."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from server_stats import settled_counts, settled_stage_counts
from tritonclient.utils import InferenceServerException

from ebjr.core.calibration import Calibration, read_calibration
from ebjr.core.gate import routing_score
from ebjr.core.layout import calibration_path
from ebjr.core.scores import ScoreContext
from ebjr.ops.client import classify, connect, describe_router, infer
from ebjr.training import data


@pytest.fixture(scope="module")
def calibration(server) -> Calibration:
    return read_calibration(calibration_path(server.model_repository))


@pytest.fixture(scope="module")
def served_score(server, calibration):
    """The routing score the router serves: the one its calibration file names."""
    router_dir = server.model_repository / "ebjr_router"
    return routing_score(calibration.scores[0], ScoreContext(calibration.temperature, router_dir))


def direct(client, model: str, images: np.ndarray) -> np.ndarray:
    return infer(client, model, {"image": images}, ["logits"])["logits"]


def assert_routed_correctly(answer, images, client, threshold, score):
    """Each row equals the Student's own output at or above ``threshold``, else the Teacher's."""
    student, teacher = direct(client, "student", images), direct(client, "teacher", images)
    np.testing.assert_allclose(answer.scores, score(student), rtol=1e-5, atol=1e-5)
    to_student = answer.scores >= np.float32(threshold)
    assert answer.routes.tolist() == np.where(to_student, "student", "teacher").tolist()
    np.testing.assert_allclose(answer.logits[to_student], student[to_student], atol=1e-5)
    np.testing.assert_allclose(answer.logits[~to_student], teacher[~to_student], atol=1e-5)
    np.testing.assert_array_equal(answer.classes, answer.logits.argmax(axis=1))
    np.testing.assert_array_equal(answer.thresholds, np.full(len(images), threshold, np.float32))


def median_score(client, images) -> float:
    return float(np.median(classify(client, images, threshold="-inf").scores))


def test_router_rows_equal_student_or_teacher_by_threshold(client, test_images, served_score):
    images = test_images[0][:64]
    threshold = median_score(client, images)
    answer = classify(client, images, threshold=threshold)
    assert 0 < (answer.routes == "teacher").sum() < len(images)  # both paths exercised
    assert_routed_correctly(answer, images, client, threshold, served_score)


def test_numeric_string_threshold_equals_number(client, test_images):
    images = test_images[0][:32]
    threshold = median_score(client, images)
    as_number = classify(client, images, threshold=threshold)
    as_string = classify(client, images, threshold=repr(threshold))
    assert as_string.routes.tolist() == as_number.routes.tolist()
    np.testing.assert_array_equal(as_string.logits, as_number.logits)


@pytest.mark.parametrize(("threshold", "model"), [("-inf", "student"), ("inf", "teacher")])
def test_infinite_thresholds_route_every_row_to_one_model(client, test_images, threshold, model):
    images = test_images[0][:48]
    answer = classify(client, images, threshold=threshold)
    assert set(answer.routes) == {model}
    np.testing.assert_allclose(answer.logits, direct(client, model, images), atol=1e-5)


def test_plumbing_calibrated_default_threshold_applies_without_parameter(
    client, calibration, test_images, served_score
):
    default = calibration.parity_thresholds[0]
    answer = classify(client, test_images[0][:16])
    np.testing.assert_array_equal(answer.thresholds, np.float32(default))
    assert_routed_correctly(answer, test_images[0][:16], client, default, served_score)


@pytest.mark.parametrize("knob", ["teacher_fraction", "min_accuracy"])
def test_plumbing_calibrated_knobs_resolve_to_the_calibration_threshold(
    client, calibration, test_images, served_score, knob
):
    """Plumbing: the oracle is the project's own calibration record. The knobs' promises are
    checked independently below and in test_calibration.py."""
    value = 0.3 if knob == "teacher_fraction" else 0.9
    (expected,) = calibration.thresholds_for(knob, value)
    images = test_images[0][:32]
    answer = classify(client, images, **{knob: str(value)})
    np.testing.assert_array_equal(answer.thresholds, np.float32(expected))
    assert_routed_correctly(answer, images, client, expected, served_score)


def test_mixed_thresholds_in_concurrent_requests_are_each_honoured(
    server, test_images, served_score
):
    images = test_images[0]
    http = connect(server.http_url, "http", concurrency=16)
    median = median_score(http, images[:64])
    spread = float(np.std(classify(http, images[:64], threshold="-inf").scores))
    thresholds = [
        -math.inf,
        math.inf,
        median,
        median - spread,
        median + spread,
        "-inf",
        str(median),
    ]
    jobs = [(i, thresholds[i % len(thresholds)]) for i in range(42)]
    before = settled_counts(http, "ebjr_router")

    def send(job):
        i, threshold = job
        protocol = "grpc" if i % 2 else "http"
        c = connect(server.grpc_url if i % 2 else server.http_url, protocol)
        rows = images[(6 * i) % 250 : (6 * i) % 250 + 6]
        return rows, float(threshold), classify(c, rows, threshold=threshold)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(send, jobs))
    for rows, threshold, answer in results:
        assert_routed_correctly(answer, rows, http, threshold, served_score)
    after = settled_counts(http, "ebjr_router")
    requests, executions = (a - b for a, b in zip(after, before, strict=True))
    assert requests == 42 * 6
    assert executions < 42, "no two concurrent requests shared a dynamic batch"


@pytest.mark.parametrize("threshold", ["abc", "nan", True])
def test_bad_threshold_is_a_clear_error_and_server_keeps_serving(client, test_images, threshold):
    images = test_images[0][:4]
    with pytest.raises(InferenceServerException, match="threshold"):
        classify(client, images, threshold=threshold)
    assert len(classify(client, images, threshold=0.0).classes) == 4


def test_router_metadata_lists_the_documented_outputs(server):
    meta = connect(server.http_url, "http").get_model_metadata("ebjr_router")
    assert [o["name"] for o in meta["outputs"]] == [
        "logits",
        "class",
        "score",
        "threshold",
        "route",
    ]
    assert json.dumps(meta["inputs"][0]["shape"]) == "[-1, 1, 28, 28]"


def test_stages_over_bls_and_in_process_give_the_same_answers(client, test_images, served_score):
    images = test_images[0][:48]
    threshold = median_score(client, images)
    in_process = classify(client, images, threshold=threshold)
    over_bls = classify(client, images, model="router_bls", threshold=threshold)
    assert over_bls.routes.tolist() == in_process.routes.tolist()
    np.testing.assert_allclose(over_bls.logits, in_process.logits, atol=1e-5)
    assert_routed_correctly(over_bls, images, client, threshold, served_score)


@pytest.mark.parametrize("router", ["ebjr_router", "router_bls"])
def test_the_teacher_runs_once_per_batch_on_only_the_rows_that_need_it(
    server, client, test_images, router
):
    """The router's own count of its Teacher calls, in its process (the default) or over BLS;
    over BLS, Triton's count of what the Teacher model ran says the same."""
    images = test_images[0][:64]
    threshold = median_score(client, images)
    before, teacher_before = settled_stage_counts(server, router), settled_counts(client, "teacher")
    answer = classify(client, images, model=router, threshold=threshold)
    after, teacher_after = settled_stage_counts(server, router), settled_counts(client, "teacher")
    sent = (after[0] - before[0], after[1] - before[1])
    assert sent == ((answer.routes == "teacher").sum(), 1)
    ran = (teacher_after[0] - teacher_before[0], teacher_after[1] - teacher_before[1])
    assert ran == (sent if router == "router_bls" else (0, 0))


def test_a_batch_wider_than_a_stage_reaches_it_in_pieces_of_its_batch_limit(client, test_images):
    """A router takes in up to its admission window (128 rows), its stages up to 64: over BLS
    the Teacher gets a 100-row request's rows in two calls, and the answer is the one the
    router gives with the Teacher in its process (any batch)."""
    images = test_images[0][:100]
    before = settled_counts(client, "teacher")
    over_bls = classify(client, images, model="router_bls", threshold="inf")
    after = settled_counts(client, "teacher")
    assert (after[0] - before[0], after[1] - before[1]) == (100, 2)
    assert set(over_bls.routes) == {"teacher"}
    in_process = classify(client, images, threshold="inf")
    np.testing.assert_allclose(over_bls.logits, in_process.logits, atol=1e-5)


def test_teacher_fraction_knob_holds_on_the_whole_test_set(server):
    """Calibrated on validation only, ``teacher_fraction=0.3`` sends about 30% of the 10,000
    test images to the Teacher."""
    images = data.load_split("test")[0]
    grpc = connect(server.grpc_url, "grpc")
    routes = np.concatenate(
        [
            classify(grpc, images[i : i + 64], teacher_fraction="0.3").routes
            for i in range(0, len(images), 64)
        ]
    )
    assert abs((routes == "teacher").mean() - 0.3) < 0.03


@pytest.mark.parametrize("share", [0.4, 0.8])
def test_min_accuracy_knob_reaches_its_accuracy_on_the_validation_data(server, calibration, share):
    """Served over gRPC on the validation split it was calibrated on, ``min_accuracy`` must
    reach what it promises (counted here from labels, not from the calibration file); the
    targets lie ``share`` of the way from the Student's accuracy to the Teacher's."""
    low, high = calibration.stage_accuracy[0], calibration.teacher_accuracy
    target = round(low + share * (high - low), 4)
    assert low < target < high  # both models
    images, labels = data.load_split("val")
    grpc = connect(server.grpc_url, "grpc")
    answers = [
        classify(grpc, images[i : i + 64], min_accuracy=str(target))
        for i in range(0, len(images), 64)
    ]
    classes = np.concatenate([a.classes for a in answers])
    routes = np.concatenate([a.routes for a in answers])
    assert (classes == labels).mean() >= target - 0.002  # float32 ties may flip a row or two
    assert 0 < (routes == "teacher").mean() < 1


def test_only_the_requested_outputs_are_returned(client, test_images):
    images = test_images[0][:8]
    only = infer(client, "ebjr_router", {"image": images}, ["class", "route"], threshold="inf")
    full = classify(client, images, threshold="inf")
    assert set(only) == {"class", "route"}
    np.testing.assert_array_equal(only["class"].ravel(), full.classes)


def test_router_publishes_its_score_and_operating_points_to_clients(client, calibration):
    """Any client reads what a raw threshold means from the router's model config."""
    info = describe_router(client)
    assert info.score == calibration.scores[0] != "calibrated"
    assert float(info.default_threshold) == calibration.parity_thresholds[0]
    parity = info.operating_points["parity"]
    assert parity["teacher_fraction"] == calibration.parity_teacher_fraction
    assert parity["accuracy"] == calibration.parity_accuracy
    shares = [p["teacher_fraction"] for p in info.operating_points["points"]]
    assert shares == sorted(shares) and len(shares) >= 6 and shares[0] == 0.0
    certified = info.certified_points
    assert certified["confidence"] == calibration.risk.confidence.tolist()
    assert certified["teacher_fraction"] == calibration.risk.teacher_fraction.tolist()
