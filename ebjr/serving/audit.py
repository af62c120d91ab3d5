"""The live audit in a router's process: a uniform sample of the rows the Student keeps also
goes to the Teacher, after the response (``audit_share`` in ``config.pbtxt``; off by default).

``execute`` only samples the kept rows and queues them (``Auditor.offer``), which costs a few
NumPy operations. A worker thread gathers them until it holds ``BATCH_ROWS`` rows or
``FLUSH_S`` has passed, sends them to the Teacher in one call, compares its answers with
the Student's and tallies the agreement (``ebjr.core.audit``). That worker runs only on
otherwise idle CPU (``ebjr.core.priority``): at normal priority its Teacher calls took cores
from the requests on a saturated server. So that a saturated server is still audited, a clock
thread at normal priority audits one gathered batch itself whenever ``FLOOR_S`` has passed
without an audit (at most ``BATCH_ROWS`` rows per ``FLOOR_S`` per router instance; both in
``ebjr.core.audit``). The clock also sends the tally and the dropped rows to Triton's metrics
every ``FLUSH_S`` (each metric update is a round trip to the server, so ``execute`` makes
none), as the router's own metrics do. The response never waits for the audit and an
audited row's answer is never changed. A full queue drops the batch (counted), so a slow
Teacher or a busy server cannot make the audit hold memory or requests.

Exported, labelled with the router's ``model``:

- ``ebjr_audit_rows_total{agree="yes|no", route, class}``: audited rows, by the route that
  answered them and the class the Student answered;
- ``ebjr_audit_disagreement{instance, bound="rate|lower|upper"}``: the disagreement of the last
  ``audit_window`` audited rows of each router instance, with its 99% Wilson interval, and
  ``ebjr_audit_window_rows{instance}``: how many rows that window holds;
- ``ebjr_audit_expected_disagreement{bound="rate|lower|upper"}``: what calibration measured
  at the default thresholds (``calibration.json``'s ``kept_disagreement``), with its interval;
- ``ebjr_audit_dropped_rows_total`` and ``ebjr_audit_failures_total``: rows not audited
  because the queue was full, and audit calls the Teacher failed.

``deploy/prometheus/alerts.yml`` fires when an instance's lower bound, on at least
``ebjr.core.audit.MIN_ROWS`` rows, stays above the calibrated upper bound. The router also
logs, at most every ``LOG_S`` seconds, when its window leaves the calibrated interval either
way.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import numpy as np
import triton_python_backend_utils as pb_utils

from ebjr.core.audit import (
    BATCH_ROWS,
    FLOOR_S,
    AgreementTally,
    AuditWindow,
    Estimate,
    Expectation,
    sample,
)
from ebjr.core.priority import run_when_idle
from ebjr.core.ratelimit import RateLimited
from ebjr.core.tally import FLUSH_S

QUEUE_BATCHES = 64  # sampled batches (one per execution) waiting for the Teacher, at most
LOG_S = 10.0
BOUNDS = ("rate", "lower", "upper")


class AuditMetrics:
    """The audit's Prometheus series for one router instance."""

    def __init__(self, model: str, instance: str, num_classes: int) -> None:
        kind = pb_utils.MetricFamily
        m = {"model": model}
        rows = kind("ebjr_audit_rows_total", "Audited rows by agreement", kind.COUNTER)
        live = kind("ebjr_audit_disagreement", "Audited disagreement, last window", kind.GAUGE)
        expected = kind("ebjr_audit_expected_disagreement", "Calibrated disagreement", kind.GAUGE)
        held = kind("ebjr_audit_window_rows", "Audited rows in the window", kind.GAUGE)
        dropped = kind("ebjr_audit_dropped_rows_total", "Rows not audited", kind.COUNTER)
        failures = kind("ebjr_audit_failures_total", "Failed audit calls", kind.COUNTER)
        self._families = [rows, live, expected, held, dropped, failures]
        self.num_classes = num_classes
        self.rows = {
            (agree, c): rows.Metric(
                labels={**m, "agree": agree, "route": "student", "class": str(c)}
            )
            for agree in ("yes", "no")
            for c in range(num_classes)
        }
        here = {**m, "instance": instance}
        self.live = [live.Metric(labels={**here, "bound": b}) for b in BOUNDS]
        self.window_rows = held.Metric(labels=here)
        self.expected = [expected.Metric(labels={**m, "bound": b}) for b in BOUNDS]
        self.dropped = dropped.Metric(labels=m)
        self.failures = failures.Metric(labels=m)

    def send(self, counts: np.ndarray, live: Estimate) -> None:
        """``counts: (2, C)`` audited rows since the last send that agreed (row 0) and
        disagreed (row 1) per class (``AgreementTally.take``); ``live``: the window now."""
        for label, per_class in zip(("yes", "no"), counts, strict=True):
            for c in np.flatnonzero(per_class):
                self.rows[(label, int(c))].increment(float(per_class[c]))
        for metric, value in zip(self.live, (live.rate, live.lower, live.upper), strict=True):
            metric.set(value)
        self.window_rows.set(float(live.rows))

    def set_expected(self, calibrated: Estimate) -> None:
        values = (calibrated.rate, calibrated.lower, calibrated.upper)
        for metric, value in zip(self.expected, values, strict=True):
            metric.set(value)


class Auditor:
    """Samples ``share`` of the kept rows and audits them off the response path: in a worker
    on idle CPU, and at least one batch per ``FLOOR_S`` at normal priority (see the module).

    ``call_teacher``: ``images (M, ...) -> logits (M, C)`` for at most ``max_rows`` rows,
    raising on failure; ``log``: the router's ``pb_utils.Logger``; ``metrics``: an
    ``AuditMetrics``, or None."""

    def __init__(
        self,
        name: str,
        share: float,
        window: int,
        expectation: Expectation,
        call_teacher: Callable[[np.ndarray], np.ndarray],
        max_rows: int,
        log,
        metrics: AuditMetrics | None,
        seed: int | None = None,
    ) -> None:
        self.name, self.share, self.expectation = name, share, expectation
        self.max_rows = max_rows
        self.call_teacher, self.log, self.metrics = call_teacher, log, metrics
        self.window = AuditWindow(window)
        self.tally = AgreementTally(metrics.num_classes) if metrics is not None else None
        self.live: Estimate | None = None  # the window at the last audit not yet sent
        self.dropped = 0  # rows sampled but not queued since the last send
        self.rng = np.random.default_rng(seed)
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES)
        self.drift_log = RateLimited(LOG_S)
        self.failure_log = RateLimited(LOG_S)
        if metrics is not None:
            metrics.set_expected(expectation.estimate)
        self._lock = threading.Lock()  # the window, tally, ``live`` and ``dropped``: three threads
        self._audited = time.monotonic()  # when the last audit call ended
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name="audit", daemon=True),
            threading.Thread(target=self._clock, name="audit-clock", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def offer(self, images: np.ndarray, kept: np.ndarray, classes: np.ndarray) -> None:
        """Queue the sampled rows of ``kept: (N,) bool`` (``images: (N, ...)``, the Student's
        answered ``classes: (N,)``) for the audit; return at once."""
        rows = sample(kept, self.share, self.rng)
        if len(rows) == 0:
            return
        try:
            self.queue.put_nowait((images[rows], classes[rows]))
        except queue.Full:  # counted here, sent by the clock: no metric round trip in execute
            with self._lock:
                self.dropped += len(rows)

    def close(self) -> None:
        """Stop both threads (a call under way finishes; rows still queued are not audited)
        and send the last tally."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._send()  # after both: what the worker's last call tallied is sent too

    def _work(self) -> None:
        """The worker, on idle CPU: every batch it gathers, in the Teacher's batch limit."""
        if not run_when_idle():
            self.log.log_warn(f"{self.name}: the audit runs at normal priority (no SCHED_IDLE)")
        while not self._stop.is_set():
            self._audit_all(self._gather(FLUSH_S))

    def _clock(self) -> None:
        """At normal priority, every ``FLUSH_S``: one gathered batch if no audit call ended in
        ``FLOOR_S`` (the worker is starved), then the tally to the metrics."""
        while not self._stop.wait(FLUSH_S):
            if time.monotonic() - self._audited >= FLOOR_S:
                self._audit_all(self._gather(0.0))
            self._send()

    def _gather(self, wait_s: float) -> list:
        """Queued batches, from the first until they hold ``BATCH_ROWS`` rows or ``wait_s`` has
        passed (none if nothing came)."""
        batches: list = []
        rows, until = 0, time.monotonic() + wait_s
        while rows < BATCH_ROWS and not self._stop.is_set():
            try:
                batch = self.queue.get(timeout=max(until - time.monotonic(), 0.0))
            except queue.Empty:
                break
            batches.append(batch)
            rows += len(batch[0])
        return batches

    def _audit_all(self, batches: list) -> None:
        if not batches:
            return
        images, classes = (np.concatenate(part) for part in zip(*batches, strict=True))
        for start in range(0, len(images), self.max_rows):  # the Teacher's batch limit
            chunk = slice(start, start + self.max_rows)
            self._audit(images[chunk], classes[chunk])

    def _audit(self, images: np.ndarray, classes: np.ndarray) -> None:
        """One Teacher call for ``images``; tally and check its agreement."""
        try:
            teacher = self.call_teacher(images).argmax(axis=1)
        except Exception as err:  # an audit failure never reaches a request
            self._failed(err)
            return
        agree = classes == teacher
        with self._lock:
            self.window.add(agree)
            self.live = live = self.window.estimate()
            if self.tally is not None:
                self.tally.add(agree, classes)
            self._audited = time.monotonic()
        self._check(live)

    def _send(self) -> None:
        """Send the tally and the dropped rows since the last send to Triton's metrics."""
        if self.metrics is None:
            return
        with self._lock:
            live, self.live = self.live, None
            counts = self.tally.take() if live is not None else None
            dropped, self.dropped = self.dropped, 0
        if dropped:
            self.metrics.dropped.increment(float(dropped))
        if live is not None:
            self.metrics.send(counts, live)

    def _check(self, live: Estimate) -> None:
        drift = self.expectation.drift(live)
        if drift is None:
            return
        held = self.drift_log.take()
        if held is not None:
            calibrated = self.expectation.estimate
            self.log.log_warn(
                f"{self.name}: the Student's kept answers disagree with the Teacher on "
                f"{live.rate:.2%} of the last {live.rows} audited rows (99% interval "
                f"{live.lower:.2%}-{live.upper:.2%}), {drift} the calibrated {calibrated.rate:.2%} "
                f"({calibrated.lower:.2%}-{calibrated.upper:.2%}) ({held} more since the last "
                "message)"
            )

    def _failed(self, err: Exception) -> None:
        if self.metrics is not None:
            self.metrics.failures.increment(1.0)
        held = self.failure_log.take()
        if held is not None:
            self.log.log_warn(f"{self.name}: an audit call failed: {err} ({held} more)")
