"""The router's custom metrics (``ebjr.serving.metrics``) against a recording stand-in for the
Python backend's metrics API, which exists only inside Triton. That the series reach Triton's
metrics port is tested on the real server (``tests/server/test_dashboard.py``)."""

from __future__ import annotations

import importlib
import sys
import threading
import types

import numpy as np
import pytest

from ebjr.core.audit import Expectation
from ebjr.core.routing import ROUTE_NAMES
from ebjr.core.tally import OUTCOMES


class Metric:
    def __init__(self, family: str, labels: dict) -> None:
        self.family, self.labels, self.increments = family, labels, []

    def increment(self, value: float) -> None:
        self.increments.append(value)

    def set(self, value: float) -> None:
        self.value = value


class MetricFamily:
    COUNTER, GAUGE = "counter", "gauge"

    def __init__(self, name: str, description: str, kind: str) -> None:
        self.name, self.metrics = name, []

    def Metric(self, labels: dict) -> Metric:  # noqa: N802 (the backend's name)
        metric = Metric(self.name, labels)
        self.metrics.append(metric)
        return metric


class Response:
    def __init__(self, code: int | None, message: str = "") -> None:
        self.code, self.message = code, message

    def has_error(self) -> bool:
        return self.code is not None

    def error(self):
        return types.SimpleNamespace(code=lambda: self.code, message=lambda: self.message)


INVALID_ARG, INTERNAL = 3, 13


def on_stand_in(monkeypatch, name: str):
    """``name`` imported against the stand-in backend, then forgotten (bound to the stand-in:
    not for later tests)."""
    backend = types.ModuleType("triton_python_backend_utils")
    backend.MetricFamily = MetricFamily
    backend.TritonError = types.SimpleNamespace(INVALID_ARG=INVALID_ARG)
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", backend)
    sys.modules.pop(name, None)
    yield importlib.import_module(name)
    sys.modules.pop(name, None)


@pytest.fixture
def metrics_module(monkeypatch):
    yield from on_stand_in(monkeypatch, "ebjr.serving.metrics")


@pytest.fixture
def audit_module(monkeypatch):
    yield from on_stand_in(monkeypatch, "ebjr.serving.audit")


def sent(metrics, name: str, **labels) -> float:
    """The total sent to the one series of ``name`` with ``labels``."""
    series = [
        m
        for family in metrics._families
        for m in family.metrics
        if m.family == name and labels.items() <= m.labels.items()
    ]
    assert len(series) == 1, (name, labels)
    return sum(series[0].increments)


def test_a_flush_sends_each_series_what_was_tallied_labelled_with_the_router(metrics_module):
    metrics = metrics_module.RouterMetrics("my_router", [0.0, 1.0], flush_s=3600)
    try:
        routes = np.array([ROUTE_NAMES.index(r) for r in ("student", "teacher", "teacher")])
        metrics.record_rows(routes, np.array([-0.5, 0.5, 3.0], dtype=np.float32))
        refusal = Response(INTERNAL, "my_router is overloaded (40 requests ...): refused")
        metrics.record_responses(
            [Response(None), Response(INVALID_ARG), Response(INTERNAL, "boom"), refusal]
        )
        metrics.record_teacher_failure()
        metrics.record_short_circuit(5)
        metrics.flush()
        assert sent(metrics, "ebjr_rows_total", model="my_router", route="student") == 1
        assert sent(metrics, "ebjr_rows_total", route="teacher") == 2
        assert [sent(metrics, "ebjr_requests_total", outcome=o) for o in OUTCOMES] == [1, 1, 1, 1]
        assert sent(metrics, "ebjr_teacher_failures_total") == 1
        assert sent(metrics, "ebjr_short_circuited_rows_total") == 5
        le = {edge: sent(metrics, "ebjr_score_bucket", le=edge) for edge in ("0.0", "1.0", "+Inf")}
        assert le == {"0.0": 1, "1.0": 2, "+Inf": 3}  # cumulative, as Prometheus reads them
        assert sent(metrics, "ebjr_score_count") == 3
        assert sent(metrics, "ebjr_score_sum") == pytest.approx(3.0)
    finally:
        metrics.close()


def test_each_later_stage_is_exported_with_its_calls_and_rows(metrics_module):
    metrics = metrics_module.RouterMetrics("r", [0.0], later_stages=2, flush_s=3600)
    try:
        metrics.record_stage_call(1, 12)
        metrics.record_stage_call(1, 3)
        metrics.record_stage_call(2, 5)
        metrics.flush()
        assert sent(metrics, "ebjr_stage_calls_total", model="r", stage="1") == 2
        assert sent(metrics, "ebjr_stage_rows_total", stage="1") == 15
        assert sent(metrics, "ebjr_stage_calls_total", stage="2") == 1
        assert sent(metrics, "ebjr_stage_rows_total", stage="2") == 5
    finally:
        metrics.close()


def test_each_breaker_is_exported_with_its_state_and_only_its_new_opens(metrics_module):
    from ebjr.core.breaker import OPEN, CircuitBreaker

    metrics = metrics_module.RouterMetrics("r", [0.0], flush_s=3600)
    breaker = CircuitBreaker(failures=1)
    try:
        metrics.watch_breakers([breaker, None], instance="r_0_0")  # stage 2: no breaker
        metrics.flush()
        breaker.failed()
        metrics.flush()
        metrics.flush()
        state = [
            m for f in metrics._families for m in f.metrics if m.family == "ebjr_breaker_state"
        ]
        assert [(m.labels["stage"], m.labels["instance"], m.value) for m in state] == [
            ("1", "r_0_0", OPEN)
        ]
        assert sent(metrics, "ebjr_breaker_opens_total", stage="1") == 1
    finally:
        metrics.close()


def test_nothing_new_sends_nothing_and_a_second_flush_only_the_news(metrics_module):
    metrics = metrics_module.RouterMetrics("r", [0.0], flush_s=3600)
    try:
        metrics.flush()
        calls = [m.increments for family in metrics._families for m in family.metrics]
        assert not any(calls)  # no round trip for a zero
        metrics.record_rows(np.array([0]), np.array([1.0]))
        metrics.flush()
        metrics.record_rows(np.array([0]), np.array([1.0]))
        metrics.flush()
        assert sent(metrics, "ebjr_rows_total", route="student") == 2
    finally:
        metrics.close()


def test_closing_stops_the_flusher_and_sends_the_last_counts(metrics_module):
    metrics = metrics_module.RouterMetrics("r", [0.0], flush_s=3600)
    metrics.record_teacher_failure()
    metrics.close()
    assert not metrics._flusher.is_alive()
    assert sent(metrics, "ebjr_teacher_failures_total") == 1


def test_the_background_flusher_sends_without_being_asked(metrics_module):
    metrics = metrics_module.RouterMetrics("r", [0.0], flush_s=0.01)
    try:
        metrics.record_teacher_failure()
        for _ in range(200):
            if sent(metrics, "ebjr_teacher_failures_total"):
                break
            metrics._stop.wait(0.01)
        assert sent(metrics, "ebjr_teacher_failures_total") == 1
    finally:
        metrics.close()


def test_rows_a_full_audit_queue_drops_are_counted_off_the_request_path(audit_module):
    """A Teacher that hangs fills the audit's queue; ``offer`` (on the request path) then drops
    rows and makes no metric round trip; the clock sends their count, and every offered row is
    audited, dropped or still queued."""
    release = threading.Event()

    def teacher(images: np.ndarray) -> np.ndarray:
        release.wait()
        return np.zeros((len(images), 10), dtype=np.float32)

    log = types.SimpleNamespace(log_warn=lambda message: None)
    metrics = audit_module.AuditMetrics("r", "0", 10)
    expectation = Expectation(kept=1000, disagree=10)
    auditor = audit_module.Auditor("r", 1.0, 200, expectation, teacher, 8, log, metrics, seed=0)
    offered = audit_module.QUEUE_BATCHES + 40
    image, kept, classes = np.zeros((1, 1, 28, 28), np.float32), np.ones(1, bool), np.zeros(1, int)
    try:
        for _ in range(offered):
            auditor.offer(image, kept, classes)
        assert metrics.dropped.increments == []
    finally:
        release.set()
        auditor.close()
    dropped = sum(metrics.dropped.increments)
    audited = sent(metrics, "ebjr_audit_rows_total", agree="yes", **{"class": "0"})
    assert dropped > 0
    queued = sum(len(images) for images, _ in auditor.queue)
    assert audited + dropped + queued == offered


def test_each_audit_call_takes_at_most_batch_rows_the_newest_first(audit_module):
    """The audit's pace is its CPU cap: one Teacher call per tick, of at most ``BATCH_ROWS``
    rows, the newest first; a batch that does not fit leaves its older rows for the next call,
    and no row is audited twice."""
    from ebjr.core.audit import BATCH_ROWS

    calls, first, release = [], threading.Event(), threading.Event()

    def teacher(images: np.ndarray) -> np.ndarray:
        calls.append(images[:, 0, 0, 0].astype(int).tolist())
        first.set()
        release.wait()
        return np.zeros((len(images), 10), dtype=np.float32)

    log = types.SimpleNamespace(log_warn=lambda message: None)
    expectation = Expectation(kept=1000, disagree=10)
    auditor = audit_module.Auditor("r", 1.0, 200, expectation, teacher, 64, log, None, seed=0)

    def offer(rows: list[int]) -> None:
        images = np.array(rows, np.float32)[:, None, None, None] * np.ones((1, 1, 2, 2))
        auditor.offer(images.astype(np.float32), np.ones(len(rows), bool), np.zeros(len(rows)))

    try:
        offer([0])
        assert first.wait(5.0)  # the clock is in its first call: what follows queues
        for batch in ([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15]):
            offer(batch)
        release.set()
        for _ in range(100):
            if len(calls) == 3:
                break
            threading.Event().wait(0.05)
    finally:
        release.set()
        auditor.close()
    assert calls[:3] == [[0], [11, 12, 13, 14, 15, 8, 9, 10], [6, 7, 1, 2, 3, 4, 5]]
    assert max(map(len, calls)) <= BATCH_ROWS
