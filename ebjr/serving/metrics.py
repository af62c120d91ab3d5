"""The router's custom Prometheus metrics (Python-backend custom-metrics API).

Served on Triton's metrics port next to Triton's own ``nv_*`` metrics, each labelled with the
router's ``model`` name:

- ``ebjr_requests_total{outcome}``: requests answered ``ok``, rejected as ``invalid``,
  failed with an ``error`` or ``refused`` by admission control (``admit_requests``);
- ``ebjr_rows_total{route}``: rows answered by ``student``, ``teacher`` or
  ``student_fallback`` (the Teacher failed and ``on_teacher_error`` is ``fallback``);
- ``ebjr_teacher_failures_total``: Teacher calls that failed or timed out;
- ``ebjr_breaker_state{stage, instance}``: each later stage's circuit breaker in each router
  instance, 0 closed, 1 half-open, 2 open (``ebjr.core.breaker``);
  ``ebjr_breaker_opens_total{stage, instance}``: how often it opened;
  ``ebjr_short_circuited_rows_total``: rows answered without a call while a breaker was open
  (they are also counted as ``student_fallback`` rows, or failed in ``fail`` mode);
- ``ebjr_stage_calls_total{stage}``, ``ebjr_stage_rows_total{stage}``: calls made to each
  later stage (1 = the first after the Student; the Teacher last), in the router's process or
  over BLS or gRPC, audit calls included, and the rows they carried;
- ``ebjr_score_bucket{le}``, ``ebjr_score_count``, ``ebjr_score_sum``: the Student's routing
  score per row, as a Prometheus histogram's series (cumulative ``le`` buckets), so that
  ``histogram_quantile`` and heatmaps work on them.

Each metric update is a round trip from the router's process to the server, so the router only
tallies counts in its own process (``ebjr.core.tally``) and a background thread sends them every
``FLUSH_S`` seconds, and once more when the model is unloaded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import triton_python_backend_utils as pb_utils

from ebjr.core.breaker import CLOSED, CircuitBreaker
from ebjr.core.routing import ROUTE_NAMES
from ebjr.core.tally import FLUSH_S, OUTCOMES, Tally
from ebjr.serving.triton import OVERLOADED


@dataclass
class _Watched:
    """One exported breaker: its gauge and counter, and what was last sent of each."""

    breaker: CircuitBreaker
    state: object  # the ebjr_breaker_state gauge
    opens: object  # the ebjr_breaker_opens_total counter
    sent_state: int = CLOSED
    sent_opens: int = 0


class RouterMetrics:
    def __init__(
        self,
        model: str,
        score_buckets: list[float],
        later_stages: int = 1,
        flush_s: float = FLUSH_S,
    ) -> None:
        kind = pb_utils.MetricFamily
        m = {"model": model}
        requests = kind("ebjr_requests_total", "Router requests by outcome", kind.COUNTER)
        rows = kind("ebjr_rows_total", "Rows by the model that answered them", kind.COUNTER)
        failures = kind(
            "ebjr_teacher_failures_total", "Failed or timed-out Teacher calls", kind.COUNTER
        )
        bucket = kind("ebjr_score_bucket", "Rows with routing score <= le", kind.COUNTER)
        count = kind("ebjr_score_count", "Rows with a finite routing score", kind.COUNTER)
        total = kind("ebjr_score_sum", "Sum of the finite routing scores", kind.GAUGE)
        self._families = [requests, rows, failures, bucket, count, total]
        self._kind, self._labels = kind, m
        self.requests = [requests.Metric(labels={**m, "outcome": o}) for o in OUTCOMES]
        self.rows = [rows.Metric(labels={**m, "route": name}) for name in ROUTE_NAMES]
        self.teacher_failures = failures.Metric(labels=m)
        les = [repr(float(edge)) for edge in score_buckets] + ["+Inf"]
        self.buckets = [bucket.Metric(labels={**m, "le": le}) for le in les]
        self.score_count = count.Metric(labels=m)
        self.score_sum = total.Metric(labels=m)
        shorted = kind(
            "ebjr_short_circuited_rows_total",
            "Rows answered without calling a later stage whose circuit breaker was open",
            kind.COUNTER,
        )
        self._families.append(shorted)
        self.short_circuited = shorted.Metric(labels=m)
        calls = kind("ebjr_stage_calls_total", "Calls to each later stage", kind.COUNTER)
        carried = kind("ebjr_stage_rows_total", "Rows sent to each later stage", kind.COUNTER)
        self._families += [calls, carried]
        stages = [{**m, "stage": str(k)} for k in range(1, later_stages + 1)]
        self.stage_calls = [calls.Metric(labels=labels) for labels in stages]
        self.stage_rows = [carried.Metric(labels=labels) for labels in stages]
        self._breakers: list[_Watched] = []
        self.tally = Tally(score_buckets, later_stages)
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_every, args=(flush_s,), daemon=True)
        self._flusher.start()

    def record_rows(self, routes: np.ndarray, scores: np.ndarray) -> None:
        """routes: (N,) int8 route codes; scores: (N,) float32."""
        self.tally.add_rows(routes, scores)

    def record_responses(self, responses: list) -> None:
        """Count ``responses`` (``pb_utils.InferenceResponse``) by outcome."""
        self.tally.add_outcomes([OUTCOMES.index(_outcome(r)) for r in responses])

    def record_teacher_failure(self) -> None:
        self.tally.add_teacher_failure()

    def record_short_circuit(self, rows: int) -> None:
        self.tally.add_short_circuit(rows)

    def record_stage_call(self, stage: int, rows: int) -> None:
        self.tally.add_stage_call(stage, rows)

    def watch_breakers(self, breakers: list, instance: str) -> None:
        """Export each later stage's breaker (stage 1 first; None: that stage has none) of this
        router ``instance`` (each has its own) as ``ebjr_breaker_state`` and
        ``ebjr_breaker_opens_total``, read at every flush."""
        kind = self._kind
        state = kind("ebjr_breaker_state", "0 closed, 1 half-open, 2 open", kind.GAUGE)
        opens = kind("ebjr_breaker_opens_total", "Times the breaker opened", kind.COUNTER)
        self._families += [state, opens]
        watched = []
        for stage, breaker in enumerate(breakers, 1):
            if breaker is not None:
                labels = {**self._labels, "stage": str(stage), "instance": instance}
                watched.append(
                    _Watched(breaker, state.Metric(labels=labels), opens.Metric(labels=labels))
                )
        self._breakers = watched  # one assignment: the flusher sees all of them or none

    def _flush_every(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            self.flush()

    def flush(self) -> None:
        """Send what was tallied since the last flush to Triton's metrics."""
        counts = self.tally.take()
        pairs = [
            *zip(self.rows, counts.rows, strict=True),
            *zip(self.requests, counts.outcomes, strict=True),
            (self.teacher_failures, counts.teacher_failures),
            *zip(self.buckets, counts.buckets, strict=True),
            (self.score_count, counts.buckets[-1]),
            *zip(self.stage_calls, counts.stage_calls, strict=True),
            *zip(self.stage_rows, counts.stage_rows, strict=True),
        ]
        for metric, value in pairs:
            if value:
                metric.increment(float(value))
        if counts.score_sum:
            self.score_sum.increment(counts.score_sum)
        if counts.short_circuited:
            self.short_circuited.increment(float(counts.short_circuited))
        for watched in self._breakers:  # only what changed: an idle flush makes no round trip
            state, opens = watched.breaker.state, watched.breaker.opens
            if state != watched.sent_state:
                watched.state.set(float(state))
            if opens > watched.sent_opens:
                watched.opens.increment(float(opens - watched.sent_opens))
            watched.sent_state, watched.sent_opens = state, opens

    def close(self) -> None:
        """Stop the flusher and send the last counts."""
        self._stop.set()
        self._flusher.join()
        self.flush()


def _outcome(response) -> str:
    """``ok``, ``invalid`` (a rejected request), ``refused`` (admission control) or
    ``error``."""
    if not response.has_error():
        return "ok"
    if response.error().code() == pb_utils.TritonError.INVALID_ARG:
        return "invalid"
    return "refused" if OVERLOADED in response.error().message() else "error"


class NoMetrics:
    """Stands in for ``RouterMetrics`` when ``metrics`` is ``off`` in ``config.pbtxt``."""

    def record_rows(self, routes: np.ndarray, scores: np.ndarray) -> None:
        pass

    def record_responses(self, responses: list) -> None:
        pass

    def record_teacher_failure(self) -> None:
        pass

    def record_short_circuit(self, rows: int) -> None:
        pass

    def record_stage_call(self, stage: int, rows: int) -> None:
        pass

    def watch_breakers(self, breakers: list, instance: str) -> None:
        pass

    def close(self) -> None:
        pass
