"""The router's custom Prometheus metrics (Python-backend custom-metrics API).

Served on Triton's metrics port next to Triton's own ``nv_*`` metrics:

- ``ebjr_requests_total{outcome}``: requests answered ``ok``, rejected as ``invalid`` or
  failed with an ``error``;
- ``ebjr_rows_total{route}``: rows answered by ``student``, ``teacher`` or
  ``student_fallback`` (the Teacher failed and ``on_teacher_error`` is ``fallback``);
- ``ebjr_teacher_failures_total``: BLS calls to the Teacher that failed or timed out;
- ``ebjr_score``: histogram of the Student's routing score per row.
"""

from __future__ import annotations

import numpy as np
import triton_python_backend_utils as pb_utils

from ebjr.routing import ROUTE_NAMES

OUTCOMES = ("ok", "invalid", "error")


class RouterMetrics:
    """Every series carries the label ``model`` (the router's name)."""

    def __init__(self, model: str, score_buckets: list[float]) -> None:
        kind = pb_utils.MetricFamily
        self._families = [
            kind("ebjr_requests_total", "Router requests by outcome", kind.COUNTER),
            kind("ebjr_rows_total", "Rows by the model that answered them", kind.COUNTER),
            kind("ebjr_teacher_failures_total", "Failed or timed-out Teacher calls", kind.COUNTER),
            kind("ebjr_score", "Student routing score per row", kind.HISTOGRAM),
        ]
        requests, rows, failures, scores = self._families
        m = {"model": model}
        self.requests = {o: requests.Metric(labels={**m, "outcome": o}) for o in OUTCOMES}
        self.rows = [rows.Metric(labels={**m, "route": name}) for name in ROUTE_NAMES]
        self.teacher_failures = failures.Metric(labels=m)
        self.scores = scores.Metric(labels=m, buckets=score_buckets)

    def record_rows(self, routes: np.ndarray, scores: np.ndarray) -> None:
        """routes: (N,) int8 route codes; scores: (N,) float32."""
        for code, count in enumerate(np.bincount(routes, minlength=len(ROUTE_NAMES))):
            if count:
                self.rows[code].increment(float(count))
        for value in scores[np.isfinite(scores)].tolist():
            self.scores.observe(value)

    def record_responses(self, responses: list) -> None:
        """Count ``responses`` (``pb_utils.InferenceResponse``) by outcome."""
        outcomes = [
            "ok" if not r.has_error()
            else "invalid" if r.error().code() == pb_utils.TritonError.INVALID_ARG
            else "error"
            for r in responses
        ]  # fmt: skip
        for outcome in OUTCOMES:
            if count := outcomes.count(outcome):
                self.requests[outcome].increment(float(count))

    def record_teacher_failure(self) -> None:
        self.teacher_failures.increment(1.0)


class NoMetrics:
    """Stands in for ``RouterMetrics`` when ``metrics`` is ``off`` in ``config.pbtxt``."""

    def record_rows(self, routes: np.ndarray, scores: np.ndarray) -> None:
        pass

    def record_responses(self, responses: list) -> None:
        pass

    def record_teacher_failure(self) -> None:
        pass
