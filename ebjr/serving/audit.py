"""The live audit in a router's process: a uniform sample of the rows the Student keeps also goes
to the Teacher, after the response (``audit_share`` in ``config.pbtxt``; off by default).

``execute`` only samples the kept rows and queues them (``Auditor.offer``), which costs a few
NumPy operations. A clock thread, every ``FLUSH_S``, sends at most ``BATCH_ROWS`` of them, the
newest first, to the Teacher in one call, compares its answers with the Student's, tallies the
agreement (``ebjr.core.audit``) and sends the tally and the dropped rows to Triton's metrics
(each metric update is a round trip to the server, so ``execute`` makes none), as the router's
own metrics do. That pace is a hard cap on the audit's CPU: 16 rows/s per router instance, a
few percent of a core, whatever the load. A worker that audited more on otherwise idle CPU (at
Linux's ``SCHED_IDLE``, tried before) cost a saturated server far more than the CPU it used,
likely through the GIL: a starved thread of the router's process that waits for it stalls the
threads that answer requests (docs/operations.md). The response never waits for the audit and
an audited row's answer is never changed. The queue keeps the newest ``QUEUE_BATCHES`` sampled
batches and drops the oldest (counted), so a slow Teacher or a busy server cannot make the
audit hold memory or requests, and what it audits is recent.

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

import threading
from collections import deque
from collections.abc import Callable

import numpy as np
import triton_python_backend_utils as pb_utils

from ebjr.core.audit import BATCH_ROWS, AgreementTally, AuditWindow, Estimate, Expectation, sample
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
    """Samples ``share`` of the kept rows and audits them off the response path, at most
    ``BATCH_ROWS`` rows per ``FLUSH_S`` (see the module).

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
        self.call_teacher, self.log, self.metrics = call_teacher, log, metrics
        self.rows_per_call = min(BATCH_ROWS, max_rows)  # within the Teacher's batch limit
        self.window = AuditWindow(window)
        self.tally = AgreementTally(metrics.num_classes) if metrics is not None else None
        self.live: Estimate | None = None  # the window at the last audit not yet sent
        self.dropped = 0  # rows sampled but not audited since the last send
        self.rng = np.random.default_rng(seed)
        self.queue: deque = deque()  # (images, classes) batches, the newest last
        self.drift_log = RateLimited(LOG_S)
        self.failure_log = RateLimited(LOG_S)
        if metrics is not None:
            metrics.set_expected(expectation.estimate)
        self._lock = threading.Lock()  # the queue and ``dropped``: execute and the clock
        self._stop = threading.Event()
        self._clock = threading.Thread(target=self._run, name="audit", daemon=True)
        self._clock.start()

    def offer(self, images: np.ndarray, kept: np.ndarray, classes: np.ndarray) -> None:
        """Queue the sampled rows of ``kept: (N,) bool`` (``images: (N, ...)``, the Student's
        answered ``classes: (N,)``) for the audit, dropping the oldest queued batch when the
        queue is full; return at once."""
        rows = sample(kept, self.share, self.rng)
        if len(rows) == 0:
            return
        with self._lock:  # counted here, sent by the clock: no metric round trip in execute
            if len(self.queue) == QUEUE_BATCHES:
                self.dropped += len(self.queue.popleft()[0])
            self.queue.append((images[rows], classes[rows]))

    def close(self) -> None:
        """Stop the clock (a call under way finishes; rows still queued are not audited) and
        send the last tally."""
        self._stop.set()
        self._clock.join()
        self._send()  # after the clock: what its last call tallied is sent too

    def _run(self) -> None:
        """Every ``FLUSH_S``: one Teacher call for the newest queued rows, then the tally to the
        metrics."""
        while not self._stop.wait(FLUSH_S):
            taken = self._take()
            if taken is not None:
                self._audit(*taken)
            self._send()

    def _take(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Up to ``rows_per_call`` queued rows as ``(images, classes)``, the newest first (None
        when none are queued); the rest of a batch that does not fit stays queued."""
        parts: list = []
        rows = 0
        with self._lock:
            while self.queue and rows < self.rows_per_call:
                images, classes = self.queue.pop()
                room = self.rows_per_call - rows
                if len(images) > room:  # the older rows of this batch wait for the next call
                    self.queue.append((images[:-room], classes[:-room]))
                    images, classes = images[-room:], classes[-room:]
                parts.append((images, classes))
                rows += len(images)
        if not parts:
            return None
        return tuple(np.concatenate(part) for part in zip(*parts, strict=True))

    def _audit(self, images: np.ndarray, classes: np.ndarray) -> None:
        """One Teacher call for ``images``; tally and check its agreement."""
        try:
            teacher = self.call_teacher(images).argmax(axis=1)
        except Exception as err:  # an audit failure never reaches a request
            self._failed(err)
            return
        agree = classes == teacher
        self.window.add(agree)
        self.live = live = self.window.estimate()
        if self.tally is not None:
            self.tally.add(agree, classes)
        self._check(live)

    def _send(self) -> None:
        """Send the tally and the dropped rows since the last send to Triton's metrics."""
        if self.metrics is None:
            return
        live, self.live = self.live, None  # the clock's own, like the window and the tally
        counts = self.tally.take() if live is not None else None
        with self._lock:
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
