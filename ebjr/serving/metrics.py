"""The router's custom Prometheus metrics (Python-backend custom-metrics API).

Served on Triton's metrics port next to Triton's own ``nv_*`` metrics, each labelled with the
router's ``model`` name:

- ``ebjr_requests_total{outcome}``: requests answered ``ok``, rejected as ``invalid`` or
  failed with an ``error``;
- ``ebjr_rows_total{route}``: rows answered by ``student``, ``teacher`` or
  ``student_fallback`` (the Teacher failed and ``on_teacher_error`` is ``fallback``);
- ``ebjr_teacher_failures_total``: Teacher calls that failed or timed out;
- ``ebjr_score_bucket{le}``, ``ebjr_score_count``, ``ebjr_score_sum``: the Student's routing
  score per row, as a Prometheus histogram's series (cumulative ``le`` buckets), so that
  ``histogram_quantile`` and heatmaps work on them.

Each metric update is a round trip from the router's process to the server, so the router only
tallies counts in its own process (``ebjr.core.tally``) and a background thread sends them every
``FLUSH_S`` seconds, and once more when the model is unloaded.
"""

from __future__ import annotations

import threading

import numpy as np
import triton_python_backend_utils as pb_utils

from ebjr.core.routing import ROUTE_NAMES
from ebjr.core.tally import FLUSH_S, OUTCOMES, Tally


class RouterMetrics:
    def __init__(self, model: str, score_buckets: list[float], flush_s: float = FLUSH_S) -> None:
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
        self.requests = [requests.Metric(labels={**m, "outcome": o}) for o in OUTCOMES]
        self.rows = [rows.Metric(labels={**m, "route": name}) for name in ROUTE_NAMES]
        self.teacher_failures = failures.Metric(labels=m)
        les = [repr(float(edge)) for edge in score_buckets] + ["+Inf"]
        self.buckets = [bucket.Metric(labels={**m, "le": le}) for le in les]
        self.score_count = count.Metric(labels=m)
        self.score_sum = total.Metric(labels=m)
        self.tally = Tally(score_buckets)
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
        ]
        for metric, value in pairs:
            if value:
                metric.increment(float(value))
        if counts.score_sum:
            self.score_sum.increment(counts.score_sum)

    def close(self) -> None:
        """Stop the flusher and send the last counts."""
        self._stop.set()
        self._flusher.join()
        self.flush()


def _outcome(response) -> str:
    """``ok``, ``invalid`` (a rejected request) or ``error``."""
    if not response.has_error():
        return "ok"
    invalid = response.error().code() == pb_utils.TritonError.INVALID_ARG
    return "invalid" if invalid else "error"


class NoMetrics:
    """Stands in for ``RouterMetrics`` when ``metrics`` is ``off`` in ``config.pbtxt``."""

    def record_rows(self, routes: np.ndarray, scores: np.ndarray) -> None:
        pass

    def record_responses(self, responses: list) -> None:
        pass

    def record_teacher_failure(self) -> None:
        pass

    def close(self) -> None:
        pass
