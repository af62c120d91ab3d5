"""The edge client: the Student (and its gate) run on the caller's machine with onnxruntime,
and only the rows that need the Teacher go to a remote Triton server, batched.

    edge = EdgeClient.from_repository("model_repository", "cloud.example:8001")
    answer = edge.classify(images, teacher_fraction=0.3)   # images: (N, 1, 28, 28) float32
    answer = edge.classify(encoded(pngs))                  # or PNG / JPEG files' bytes

Encoded images are decoded here for the Student, as the router decodes them, and the rows that
need the Teacher go to the cloud as they came: to its ``teacher_bytes`` ensemble (a decoder,
then the Teacher; ``make remote-repos`` writes it), a few KB a row instead of the pixels.

It uses the router's own calibration file and score, so the knobs (``threshold``,
``teacher_fraction``, ``min_accuracy``) mean the same as on the server. When the cloud is
unreachable or slower than ``timeout_s``, the rows that needed it keep the Student's answer,
marked ``student_fallback``, and are counted. Over gRPC the channel can use TLS, mutual with
a client key and certificate (``tls=TLS(ca, key, cert)``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ebjr.build import model_config as mc
from ebjr.build.onnx_info import describe
from ebjr.core.calibration import Calibration, read_calibration, resolve_thresholds
from ebjr.core.gate import routing_score
from ebjr.core.layout import (
    ROUTER,
    STUDENT,
    TEACHER,
    TEACHER_BYTES,
    calibration_path,
    config_path,
    onnx_path,
)
from ebjr.core.onnx_runner import OnnxClassifier
from ebjr.core.policy import GeneralPolicy
from ebjr.core.preprocess import IMAGE_BYTES, Preprocessing
from ebjr.core.preprocess import PARAMETER as PREPROCESSING
from ebjr.core.remote import TLS, HttpRemoteModel, RemoteModel
from ebjr.core.routing import FALLBACK, ROUTE_NAMES, cascade, check_batch
from ebjr.core.scores import ScoreContext


@dataclass(frozen=True)
class EdgeAnswer:
    """One batch: ``logits (N, C)``, ``classes (N,)``, ``scores (N,)``, ``routes (N,)`` str,
    and what went to the cloud: ``sent_rows`` and ``sent_bytes`` (the pixels' size, or the
    encoded images' own)."""

    logits: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    routes: np.ndarray
    threshold: float
    sent_rows: int
    sent_bytes: int
    error: str | None = None  # why the cloud did not answer, when it did not


@dataclass
class EdgeStats:
    """Totals since the client was made."""

    batches: int = 0
    rows: int = 0
    sent_rows: int = 0
    sent_bytes: int = 0
    fallbacks: int = 0
    last_error: str | None = None


class EdgeClient:
    """Route locally, defer remotely: see the module docstring."""

    def __init__(
        self,
        student: Path,
        calibration: Calibration,
        router_dir: Path,
        teacher_url: str,
        teacher_model: str = TEACHER,
        protocol: str = "grpc",
        timeout_s: float = 2.0,
        tls: TLS | None = None,
    ) -> None:
        if len(calibration.stages) != 2:
            raise ValueError(
                "the edge client runs two stages: give a two-stage router's calibration"
            )
        info = describe(student)
        self.student = OnnxClassifier(student)
        self.calibration, self.timeout_s = calibration, timeout_s
        self.policy = GeneralPolicy(
            routing_score(calibration.scores[0], ScoreContext(calibration.temperature, router_dir))
        )
        if protocol not in ("grpc", "http"):
            raise ValueError(f"protocol must be grpc or http, not {protocol!r}")
        if tls is not None and protocol != "grpc":
            raise ValueError("TLS to the Teacher is supported over gRPC only")
        self.preprocessing = Preprocessing.from_parameter(
            mc.parameters(mc.read(config_path(router_dir.parent, router_dir.name)))[PREPROCESSING]
        )

        def remote(name: str, input_name: str) -> RemoteModel | HttpRemoteModel:
            args = (teacher_url, name, input_name, info.output.name)
            return (
                RemoteModel(*args, tls) if protocol == "grpc" else HttpRemoteModel(*args, timeout_s)
            )

        self.teacher = remote(teacher_model, info.input.name)
        self.teacher_bytes = remote(TEACHER_BYTES, IMAGE_BYTES)  # for encoded images
        self.stats = EdgeStats()

    @classmethod
    def from_repository(cls, repository: Path, teacher_url: str, **kwargs) -> EdgeClient:
        """The Student, gate and calibration of ``repository``'s ``ebjr_router``."""
        router_dir = Path(repository) / ROUTER
        path = calibration_path(repository, ROUTER)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: the edge client needs a calibrated router")
        student = onnx_path(repository, STUDENT)
        return cls(student, read_calibration(path), router_dir, teacher_url, **kwargs)

    def classify(self, images: np.ndarray, **knobs: object) -> EdgeAnswer:
        """Route ``images``, pixels ``(N, ...)`` or encoded images (``(N,)`` or ``(N, 1)``
        object: PNG or JPEG bytes), with at most one knob (``threshold``,
        ``teacher_fraction``, ``min_accuracy``, ``max_accuracy_drop`` with its
        ``confidence``; none = the calibrated default)."""
        payloads = images.reshape(-1, 1) if images.dtype == np.object_ else None
        batch = (
            np.ascontiguousarray(images, dtype=np.float32)
            if payloads is None
            else self.preprocessing.decode_batch(payloads)
        )
        check_batch(batch)
        given = {k: v for k, v in knobs.items() if v is not None}
        (threshold,) = resolve_thresholds(
            json.dumps(given), (self.calibration.parity_thresholds[0],), self.calibration
        )
        sent: list[np.ndarray] = []

        def run(stage: int, rows: np.ndarray) -> np.ndarray:  # rows: indices into the batch
            if stage == 0:
                return self.student(self.student.fit(batch[rows]))  # a low-resolution one: resized
            sent.append(rows)
            if payloads is None:
                return self.teacher(batch[rows], self.timeout_s)
            return self.teacher_bytes(payloads[rows], self.timeout_s)

        rows = np.arange(len(batch))
        routed, error = cascade(rows, np.full((len(batch), 1), threshold), [self.policy], run)
        fallbacks = int((routed.route == FALLBACK).sum())
        sent_rows = sum(len(r) for r in sent)
        sent_bytes = (
            sent_rows * int(batch[0].nbytes)
            if payloads is None
            else sum(len(p) for r in sent for p in payloads[r, 0])
        )
        answer = EdgeAnswer(
            logits=routed.logits,
            classes=routed.predictions,
            scores=routed.scores,
            routes=np.array(ROUTE_NAMES)[routed.route],
            threshold=threshold,
            sent_rows=sent_rows,
            sent_bytes=sent_bytes,
            error=None if error is None else str(error),
        )
        s = self.stats
        s.batches, s.rows, s.fallbacks = s.batches + 1, s.rows + len(batch), s.fallbacks + fallbacks
        s.sent_rows, s.sent_bytes = s.sent_rows + sent_rows, s.sent_bytes + answer.sent_bytes
        s.last_error = answer.error or s.last_error
        return answer

    def close(self) -> None:
        self.teacher.close()
        self.teacher_bytes.close()
