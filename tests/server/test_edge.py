"""The edge client against the real server: the Student runs locally, the rows that need the
Teacher go to the server's ``teacher`` model, and a cloud that is down or slow gives marked
fallbacks, counted."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from ebjr.core.layout import DEFAULT_REPOSITORY
from ebjr.core.onnx_runner import OnnxClassifier
from ebjr.core.preprocess import encode_png
from ebjr.core.routing import RequestError
from ebjr.ops.client import connect, encoded, infer
from ebjr.ops.edge import EdgeClient
from ebjr.ops.server import free_ports

sys.path.insert(0, str(Path(__file__).parents[2] / "clients"))
import edge as edge_cli  # noqa: E402


def edge_for(server, protocol, **kwargs) -> EdgeClient:
    url = server.grpc_url if protocol == "grpc" else server.http_url
    return EdgeClient.from_repository(DEFAULT_REPOSITORY, url, protocol=protocol, **kwargs)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_only_rows_below_the_threshold_go_to_the_cloud_and_come_back_in_order(
    server, test_images, protocol
):
    images = test_images[0][:64]
    edge = edge_for(server, protocol)
    try:
        answer = edge.classify(images, teacher_fraction=0.3)
    finally:
        edge.close()
    student = OnnxClassifier(DEFAULT_REPOSITORY / "student" / "1" / "model.onnx")(images)
    teacher = infer(connect(server.grpc_url, "grpc"), "teacher", {"image": images}, ["logits"])
    to_cloud = answer.scores < np.float32(answer.threshold)
    assert 0 < to_cloud.sum() < len(images)
    assert answer.routes.tolist() == np.where(to_cloud, "teacher", "student").tolist()
    np.testing.assert_allclose(answer.logits[to_cloud], teacher["logits"][to_cloud], atol=1e-5)
    np.testing.assert_allclose(answer.logits[~to_cloud], student[~to_cloud], atol=1e-6)
    assert answer.sent_rows == to_cloud.sum() and answer.sent_bytes == to_cloud.sum() * 784 * 4
    assert edge.stats.sent_rows == answer.sent_rows and edge.stats.fallbacks == 0


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_encoded_images_are_decoded_here_and_sent_to_the_cloud_as_they_came(
    server, test_images, protocol
):
    images = test_images[0][:64]
    payloads = [encode_png(image) for image in images]
    edge = edge_for(server, protocol)
    try:
        from_pixels = edge.classify(images, teacher_fraction=0.3)
        from_bytes = edge.classify(encoded(payloads), teacher_fraction=0.3)
    finally:
        edge.close()
    # the same answers: the test images are 8-bit, so their PNGs hold the same pixels
    assert from_bytes.routes.tolist() == from_pixels.routes.tolist()
    np.testing.assert_allclose(from_bytes.logits, from_pixels.logits, atol=1e-5)
    to_cloud = from_bytes.routes == "teacher"
    assert to_cloud.any() and edge.stats.fallbacks == 0
    assert from_bytes.sent_bytes == sum(
        len(p) for p, sent in zip(payloads, to_cloud, strict=True) if sent
    )
    assert from_bytes.sent_bytes < from_pixels.sent_bytes / 2  # PNGs, not FP32 pixels


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_the_clouds_bytes_entry_refuses_a_bad_payload_and_answers_its_batch_mates(
    server, test_images, protocol
):
    url = server.grpc_url if protocol == "grpc" else server.http_url
    good = encoded([encode_png(test_images[0][0])])
    bad = encoded([b"%PDF-1.4 not an image"])

    def send(payload):  # one client per call: the HTTP client is not thread-safe
        return infer(connect(url, protocol), "teacher_bytes", {"image_bytes": payload}, ["logits"])

    with ThreadPoolExecutor(4) as pool:  # sent together, so that they can share a batch
        calls = [pool.submit(send, p) for p in (good, bad, good, bad)]
    expected = infer(connect(url, protocol), "teacher", {"image": test_images[0][:1]}, ["logits"])
    for k, call in enumerate(calls):
        if k % 2:
            with pytest.raises(InferenceServerException, match="not a PNG or JPEG"):
                call.result()
        else:
            np.testing.assert_allclose(call.result()["logits"], expected["logits"], atol=1e-5)
    assert connect(url, protocol).is_server_ready()


def closed_port() -> str:
    """A loopback address nothing listens on."""
    return f"127.0.0.1:{free_ports(1)[0]}"


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_an_unreachable_cloud_gives_the_students_answers_marked_and_counted(test_images, protocol):
    images = test_images[0][:16]
    edge = EdgeClient.from_repository(DEFAULT_REPOSITORY, closed_port(), protocol=protocol)
    start = time.monotonic()
    try:
        answer = edge.classify(images, threshold="inf")
    finally:
        edge.close()
    assert time.monotonic() - start < 5
    assert set(answer.routes) == {"student_fallback"} and answer.error
    student = OnnxClassifier(DEFAULT_REPOSITORY / "student" / "1" / "model.onnx")(images)
    np.testing.assert_allclose(answer.logits, student, atol=1e-6)
    assert edge.stats.fallbacks == 16 and edge.stats.sent_rows == 16


def test_a_slow_cloud_times_out_into_fallbacks(server, test_images):
    edge = edge_for(server, "grpc", teacher_model="teacher_sleeps", timeout_s=0.3)
    start = time.monotonic()
    try:
        answer = edge.classify(test_images[0][:4], threshold="inf")
    finally:
        edge.close()
    assert time.monotonic() - start < 1.5
    assert set(answer.routes) == {"student_fallback"}
    assert "teacher_sleeps" in answer.error and "Deadline Exceeded" in answer.error


def test_edge_knobs_are_checked_like_the_servers(server, test_images):
    edge = edge_for(server, "grpc")
    try:
        with pytest.raises(RequestError, match="teacher_fraction must be in"):
            edge.classify(test_images[0][:2], teacher_fraction=2)
        with pytest.raises(RequestError, match="NaN"):
            edge.classify(np.full((1, 1, 28, 28), np.nan, dtype=np.float32))
    finally:
        edge.close()


def test_edge_cli_reports_rows_and_bytes_per_batch(server, capsys):
    args = ["--teacher-url", server.grpc_url, "--count", "96", "--batch-size", "32"]
    assert edge_cli.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    batches = [line.split() for line in lines[2:5]]
    assert [int(b[1]) for b in batches] == [32, 32, 32]
    assert all(int(b[3]) == int(b[2]) * 784 * 4 for b in batches)
    assert lines[-1].startswith("96 rows in 3 batches")
    assert edge_cli.main(["--teacher-url", "not a url"]) == 1
    assert "host:port" in capsys.readouterr().err
