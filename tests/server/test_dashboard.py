"""The Grafana dashboard and the Prometheus config in ``deploy/`` against the real server and
a real Prometheus (Debian's package): every query of the dashboard must return data, so the
dashboard cannot drift from the metrics the code exports."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from conftest import AUDITED

from ebjr.core.layout import PROJECT_ROOT
from ebjr.ops import prometheus as prom
from ebjr.ops.client import classify, connect

DEPLOY = PROJECT_ROOT / "deploy"


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "ebjr.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


@pytest.fixture(scope="module")
def prometheus(server, tmp_path_factory):
    """A real Prometheus scraping the test server with ``deploy/prometheus/``, every second."""
    root = Path(tmp_path_factory.mktemp("prometheus"))
    with prom.running(server.metrics_url, root, interval_s=1) as url:
        yield url


def test_every_dashboard_query_returns_data_through_prometheus(server, prometheus, test_images):
    http = connect(server.http_url, "http")
    images = test_images[0][:16]
    pending = dict.fromkeys(dashboard_queries())
    assert len(pending) >= 7
    deadline = time.monotonic() + 90
    while pending and time.monotonic() < deadline:
        for threshold in ("-inf", "inf", "0"):  # rows on both routes, a score histogram
            classify(http, images, threshold=threshold)
        classify(http, images[:2], model="router_fallback", threshold="inf")  # a failure
        classify(http, images, model=AUDITED)  # audited rows (the default thresholds)
        time.sleep(0.5)
        for expr in list(pending):
            values = prom.query(prometheus, expr)
            if any(math.isfinite(v) for v in values):  # idle routers give 0/0
                pending.pop(expr)
    assert not pending, f"queries without data after 90 s: {list(pending)}"
