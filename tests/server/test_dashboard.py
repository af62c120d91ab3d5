"""The Grafana dashboard and the Prometheus config in ``deploy/`` against the real server and
a real Prometheus (Debian's package): every query of the dashboard must return data, so the
dashboard cannot drift from the metrics the code exports."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from ebjr.core.layout import PROJECT_ROOT
from ebjr.ops.client import classify, connect
from ebjr.ops.server import free_ports

DEPLOY = PROJECT_ROOT / "deploy"


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "ebjr.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def prometheus(server, tmp_path_factory):
    """A real Prometheus scraping the test server with ``deploy/prometheus/prometheus.yml``
    (its target and interval pointed at the test server)."""
    binary = shutil.which("prometheus")
    assert binary, "Prometheus is missing: `make monitoring-deps` installs Debian's package"
    config = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    target = urllib.parse.urlsplit(server.metrics_url).netloc
    assert '"127.0.0.1:8002"' in config and "scrape_interval: 5s" in config
    config = config.replace('"127.0.0.1:8002"', f'"{target}"')
    root = Path(tmp_path_factory.mktemp("prometheus"))
    (root / "prometheus.yml").write_text(
        config.replace("scrape_interval: 5s", "scrape_interval: 1s")
    )
    (port,) = free_ports(1)
    log = (root / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if urllib.request.urlopen(f"{url}/-/ready", timeout=2).status == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline, (root / "prometheus.log").read_text()[-2000:]
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def query(prometheus: str, expr: str) -> list[float]:
    body = get(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert body["status"] == "success", body
    return [float(sample["value"][1]) for sample in body["data"]["result"]]


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
        time.sleep(0.5)
        for expr in list(pending):
            values = query(prometheus, expr)
            if any(math.isfinite(v) for v in values):  # idle routers give 0/0
                pending.pop(expr)
    assert not pending, f"queries without data after 90 s: {list(pending)}"
