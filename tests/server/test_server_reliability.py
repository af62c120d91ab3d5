"""Bad input, Teacher and Student faults, and the router's metrics, on the real server."""

from __future__ import annotations

import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from ebjr.core.layout import DEFAULT_REPOSITORY, onnx_path
from ebjr.core.onnx_runner import OnnxClassifier
from ebjr.ops import prometheus
from ebjr.ops.client import classify, connect, infer

TEACHER = OnnxClassifier(onnx_path(DEFAULT_REPOSITORY, "teacher"))


def raw_infer(client, model: str, array: np.ndarray, datatype: str, **params):
    module = grpcclient if isinstance(client, grpcclient.InferenceServerClient) else httpclient
    tensor = module.InferInput("image", list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return client.infer(model, [tensor], parameters=params or None)


def assert_still_serving(client, images):
    """The next good request is answered correctly: at ``inf`` every row is the Teacher's
    answer, checked against the Teacher run offline with onnxruntime."""
    expected = TEACHER(images[:4]).argmax(1)
    answer = classify(client, images[:4], threshold="inf")
    assert answer.classes.tolist() == expected.tolist()
    assert set(answer.routes) == {"teacher"}


@pytest.mark.parametrize(
    ("make", "datatype", "message"),
    [
        (lambda x: x.astype(np.float64), "FP64", "data-type|datatype|FP64"),
        (lambda x: x[:, :, :27], "FP32", "shape"),
        (lambda x: np.repeat(x, 33, axis=0)[:129], "FP32", "batch-size must be <= 128"),
        (lambda x: x[:0], "FP32", "empty batch|byte size mismatch"),
    ],
    ids=["wrong-dtype", "wrong-shape", "batch-above-max", "empty-batch"],
)
def test_malformed_tensors_are_refused_and_server_keeps_serving(
    client, test_images, make, datatype, message
):
    images = test_images[0][:4]
    with pytest.raises(InferenceServerException, match=message):
        raw_infer(client, "ebjr_router", make(images), datatype)
    assert_still_serving(client, test_images[0])


def test_missing_input_is_refused(server, test_images):
    client = httpclient.InferenceServerClient(server.http_url)
    with pytest.raises(InferenceServerException, match="input"):
        client.infer("ebjr_router", [])
    assert_still_serving(client, test_images[0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_are_rejected_as_invalid_argument(client, test_images, bad):
    images = test_images[0][:3].copy()
    images[1, 0, 5, 5] = bad
    with pytest.raises(InferenceServerException, match="NaN or Inf values in 1 of 3 rows") as err:
        classify(client, images)
    assert err.value.status() in ("400", "StatusCode.INVALID_ARGUMENT")
    assert_still_serving(client, test_images[0])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"threshold": 1.0, "teacher_fraction": 0.3}, "at most one"),
        ({"teacher_fraction": "1.5"}, r"teacher_fraction must be in \[0, 1\]"),
        ({"min_accuracy": "1.0"}, "min_accuracy must be in"),
        ({"teacher_fraction": "lots"}, "teacher_fraction must be a number"),
    ],
)
def test_bad_knobs_are_clear_errors(client, test_images, params, message):
    with pytest.raises(InferenceServerException, match=message):
        classify(client, test_images[0][:2], **params)
    assert_still_serving(client, test_images[0])


def test_unknown_parameters_are_ignored(client, test_images):
    images = test_images[0][:8]
    plain = classify(client, images, threshold="5.0")
    extra = classify(client, images, threshold="5.0", colour="blue", priority_hint=3)
    np.testing.assert_array_equal(plain.logits, extra.logits)


def test_teacher_failure_falls_back_to_the_student_only_for_teacher_rows(client, test_images):
    images = test_images[0][:16]
    student = infer(client, "student", {"image": images}, ["logits"])["logits"]
    answer = classify(client, images, model="router_fallback", threshold="inf")
    assert set(answer.routes) == {"student_fallback"}
    np.testing.assert_allclose(answer.logits, student, atol=1e-5)
    untouched = classify(client, images, model="router_fallback", threshold="-inf")
    assert set(untouched.routes) == {"student"}


def test_teacher_failures_are_logged_with_their_cause_at_most_every_10_s(server, test_images):
    client = connect(server.http_url, "http")

    def logged() -> list[str]:
        text = server.log_file.read_text()
        return [
            line for line in text.splitlines() if "router_fallback: Teacher call failed" in line
        ]

    classify(client, test_images[0][:2], model="router_fallback", threshold="inf")
    time.sleep(0.5)  # the log line is written by the server as it arrives
    before = logged()
    assert before and "injected Teacher failure" in before[-1]
    for _ in range(10):
        classify(client, test_images[0][:2], model="router_fallback", threshold="inf")
    time.sleep(0.5)
    assert len(logged()) - len(before) <= 1  # ten failures within 10 s: one message at most


def test_teacher_failure_in_fail_mode_errors_only_requests_that_needed_it(client, test_images):
    images = test_images[0][:8]
    with pytest.raises(InferenceServerException, match="injected Teacher failure"):
        classify(client, images, model="router_fail", threshold="inf")
    assert set(classify(client, images, model="router_fail", threshold="-inf").routes) == {
        "student"
    }


def test_slow_teacher_times_out_into_fallback(client, test_images):
    start = time.perf_counter()
    answer = classify(client, test_images[0][:4], model="router_timeout", threshold="inf")
    elapsed = time.perf_counter() - start
    assert set(answer.routes) == {"student_fallback"}
    assert elapsed < 1.9, (
        f"the 300 ms Teacher timeout did not cut the 2 s Teacher ({elapsed:.2f} s)"
    )


def test_a_healthy_teacher_slower_than_its_configured_deadline_allows_is_still_waited_for(
    server, test_images
):
    """``router_slow`` was built with a 200 ms deadline, and its Teacher takes 50 ms a row: a
    2-row call fits, a 5-row one (250 ms) does not. The router raises its deadline from the
    calls it sees answered (to 4 x 100 ms), so after a few small ones no row of a large one
    falls back."""
    client = connect(server.grpc_url, "grpc")
    for _ in range(3):
        small = classify(client, test_images[0][:2], model="router_slow", threshold="inf")
        assert set(small.routes) == {"teacher"}  # fits the configured deadline: evidence
    large = classify(client, test_images[0][:5], model="router_slow", threshold="inf")
    assert list(large.routes) == ["teacher"] * 5, "a healthy Teacher's rows fell back"


def test_student_failure_fails_the_request_clearly(client, test_images):
    with pytest.raises(InferenceServerException, match="teacher_raises failed"):
        classify(client, test_images[0][:4], model="router_no_student", threshold="-inf")
    assert_still_serving(client, test_images[0])


def scrape(server) -> str:
    return prometheus.scrape(server.metrics_url)


def test_router_metrics_count_rows_requests_and_fallbacks(server, test_images):
    client = connect(server.http_url, "http")
    images = test_images[0][:10]
    time.sleep(1.2)  # earlier tests' counts reach the server first (flushed every 0.5 s)
    before = scrape(server)
    classify(client, images, threshold="inf")
    classify(client, images[:4], threshold="-inf")
    classify(client, images[:3], model="router_fallback", threshold="inf")
    with pytest.raises(InferenceServerException):
        classify(client, images[:2], threshold="nan")

    def delta(name, **labels):
        return prometheus.value(after, name, **labels) - prometheus.value(before, name, **labels)

    router, fallback = {"model": "ebjr_router"}, {"model": "router_fallback"}
    expected = [  # (series, labels, rows or requests counted)
        ("ebjr_rows_total", {**router, "route": "teacher"}, 10),
        ("ebjr_rows_total", {**router, "route": "student"}, 4),
        ("ebjr_rows_total", {**fallback, "route": "student_fallback"}, 3),
        ("ebjr_teacher_failures_total", fallback, 1),
        ("ebjr_requests_total", {**router, "outcome": "ok"}, 2),
        ("ebjr_requests_total", {**router, "outcome": "invalid"}, 1),
        ("ebjr_score_count", router, 14),
        ("ebjr_score_bucket", {**router, "le": "+Inf"}, 14),
    ]
    wanted = [count for *_, count in expected]

    def measured() -> list[float]:
        return [delta(name, **labels) for name, labels, _ in expected]

    # Every router instance tallies in its own process and flushes every FLUSH_S (0.5 s):
    # wait until every count has arrived, then one more flush period, so that an
    # over-count would show too.
    deadline = time.monotonic() + 10
    while True:
        after = scrape(server)
        if all(got >= want for got, want in zip(measured(), wanted, strict=True)):
            break
        assert time.monotonic() < deadline, f"metrics never arrived: {measured()}"
        time.sleep(0.2)
    time.sleep(1.2)
    after = scrape(server)
    assert measured() == wanted
    buckets = sorted(
        (float(labels["le"]), count)
        for labels, count in prometheus.samples(after, "ebjr_score_bucket")
        if labels["model"] == "ebjr_router"
    )
    assert len(buckets) > 3 and all(
        a[1] <= b[1] for a, b in zip(buckets[:-1], buckets[1:], strict=True)
    )
