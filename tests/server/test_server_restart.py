"""A server stopped and started again under a client loop: every acknowledged answer is right;
requests in the gap fail with clear errors (connection refused, or "no available versions"
while Triton shuts down), never with wrong answers."""

from __future__ import annotations

import threading
import time

from ebjr.core.layout import DEFAULT_REPOSITORY, onnx_path
from ebjr.core.onnx_runner import OnnxClassifier
from ebjr.ops.client import classify, connect
from ebjr.ops.server import TritonServer, free_ports
from ebjr.training import data


def test_restart_under_a_client_loop_loses_no_acknowledged_answer(tmp_path):
    images = data.load_split("test")[0][:200]
    # t = -inf: every answer must be the Student's class, known offline
    expected = OnnxClassifier(onnx_path(DEFAULT_REPOSITORY, "student")).predict(images)
    expected = expected.argmax(1)
    http, grpc, metrics = free_ports(3)

    def start() -> TritonServer:
        return TritonServer(
            DEFAULT_REPOSITORY,
            "127.0.0.1",
            http,
            grpc,
            metrics,
            log_file=tmp_path / "tritonserver.log",
        ).__enter__()

    server = start()
    stop = threading.Event()
    answered, wrong, errors = [], [], []

    def loop() -> None:
        i = 0
        while not stop.is_set():
            row = i % len(images)
            try:
                client = connect(f"127.0.0.1:{grpc}", "grpc")
                got = int(classify(client, images[row : row + 1], threshold="-inf").classes[0])
                (answered if got == expected[row] else wrong).append(row)
            except Exception as err:  # collected and classified below
                errors.append(f"{type(err).__name__}: {err}")
                time.sleep(0.05)
            i += 1

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        time.sleep(2)
        before_restart = len(answered)
        server.stop()
        time.sleep(1)
        server = start()
        time.sleep(2)
    finally:
        stop.set()
        worker.join(timeout=30)
        server.stop()
    assert not wrong, f"wrong answers for rows {wrong[:10]}"
    assert before_restart > 0 and len(answered) > before_restart  # served before and after
    assert errors, "the loop never saw the server down"
    # Connection refused while down; "no available versions" in the shutdown window, where
    # Triton has unloaded the models but not yet closed its endpoints.
    clear = ("UNAVAILABLE", "onnect", "has no available versions")
    assert all(any(c in e for c in clear) for e in errors), errors[:5]
