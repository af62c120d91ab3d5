"""Locust users for the EBJR router: one over HTTP (JSON), one over gRPC (tritonclient).

Each request sends one real Fashion-MNIST test image with a threshold drawn at random (both
infinities, the calibrated default and the thresholds for a few Teacher fractions), and checks
the class against the offline reference for that threshold (Student and Teacher run once with
onnxruntime on the same ONNX files). A wrong answer is a failed request.

    locust -f load_tests/locustfile.py --host http://127.0.0.1:8000      # web UI on :8089
    python load_tests/run.py --users 8 --run-time 60s                      # headless, see run.py

Environment: ``EBJR_GRPC_URL`` (default 127.0.0.1:8001), ``EBJR_REPO`` (model_repository).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import grpc.experimental.gevent as grpc_gevent
from locust import FastHttpUser, User, constant, task

from ebjr.core.calibration import read_calibration
from ebjr.core.gate import routing_score
from ebjr.core.layout import (
    DEFAULT_REPOSITORY,
    ROUTER,
    STUDENT,
    TEACHER,
    calibration_path,
    onnx_path,
)
from ebjr.core.onnx_runner import OnnxClassifier
from ebjr.core.scores import ScoreContext
from ebjr.ops.client import classify, connect
from ebjr.training.data import load_split

grpc_gevent.init_gevent()  # gRPC must cooperate with Locust's gevent loop

REPO = Path(os.environ.get("EBJR_REPO", DEFAULT_REPOSITORY))
POOL = 1000
TIE = 1e-4  # scores this close to the threshold may round either way: accept both answers


class Reference:
    """Offline answers for the image pool: what the router must return at each threshold."""

    def __init__(self) -> None:
        images = load_split("test")[0][:POOL]
        self.images = images
        calibration = read_calibration(calibration_path(REPO))
        student = OnnxClassifier(onnx_path(REPO, STUDENT), threads=1).predict(images)
        teacher = OnnxClassifier(onnx_path(REPO, TEACHER), threads=1).predict(images)
        score = routing_score(
            calibration.scores[0], ScoreContext(calibration.temperature, REPO / ROUTER)
        )
        self.scores = score(student)
        self.student_class, self.teacher_class = student.argmax(1), teacher.argmax(1)
        self.thresholds = ["-inf", "inf", repr(calibration.parity_thresholds[0])] + [
            repr(calibration.thresholds_for("teacher_fraction", f)[0]) for f in (0.1, 0.3, 0.5)
        ]

    def accepts(self, row: int, threshold: str, answer: int) -> bool:
        t, s = float(threshold), float(self.scores[row])
        allowed = set()
        if s >= t or abs(s - t) < TIE:
            allowed.add(int(self.student_class[row]))
        if s < t or abs(s - t) < TIE:
            allowed.add(int(self.teacher_class[row]))
        return answer in allowed


REFERENCE = Reference()


def draw() -> tuple[int, str]:
    return random.randrange(POOL), random.choice(REFERENCE.thresholds)


class RouterHttpUser(FastHttpUser):
    """Triton's HTTP/JSON protocol, as a browser or curl would speak it."""

    wait_time = constant(0)

    @task
    def infer(self) -> None:
        row, threshold = draw()
        body = {
            "parameters": {"threshold": threshold},
            "inputs": [
                {
                    "name": "image",
                    "shape": [1, 1, 28, 28],
                    "datatype": "FP32",
                    "data": REFERENCE.images[row].ravel().tolist(),
                }
            ],
            "outputs": [{"name": "class"}],
        }
        with self.client.post(
            f"/v2/models/{ROUTER}/infer", json=body, name=f"http {ROUTER}", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            answer = response.json()["outputs"][0]["data"][0]
            if not REFERENCE.accepts(row, threshold, answer):
                response.failure(f"wrong answer for image {row} at t={threshold}: {answer}")


class RouterGrpcUser(User):
    """tritonclient over gRPC; results reported through Locust's request events."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.client = connect(os.environ.get("EBJR_GRPC_URL", "127.0.0.1:8001"), "grpc")

    def on_stop(self) -> None:
        self.client.close()  # an open gRPC channel keeps the gevent process from exiting

    @task
    def infer(self) -> None:
        row, threshold = draw()
        start = time.perf_counter()
        error = None
        try:
            answer = classify(self.client, REFERENCE.images[row : row + 1], threshold=threshold)
            if not REFERENCE.accepts(row, threshold, int(answer.classes[0])):
                error = AssertionError(f"wrong answer for image {row} at t={threshold}")
        except Exception as err:  # reported to Locust as a failure, never raised
            error = err
        self.environment.events.request.fire(
            request_type="grpc",
            name=f"grpc {ROUTER}",
            response_time=(time.perf_counter() - start) * 1000,
            response_length=0,
            exception=error,
            context={},
        )
