"""A real Prometheus (Debian's package) scraping a test server with the shipped
``deploy/prometheus/`` config and rules, its intervals shortened for a test."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from ebjr.core.layout import PROJECT_ROOT
from ebjr.ops.server import free_ports

DEPLOY = PROJECT_ROOT / "deploy"


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:  # nosec B310: loopback test URL
        return json.loads(response.read())


@contextlib.contextmanager
def prometheus(metrics_url: str, root: Path, rules: str | None = None):
    """Yield the URL of a Prometheus scraping ``metrics_url`` every second with
    ``prometheus.yml`` and ``alerts.yml`` (or ``rules`` in its place), evaluated every second."""
    binary = shutil.which("prometheus")
    assert binary, "Prometheus is missing: `make monitoring-deps` installs Debian's package"
    config = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    target = urllib.parse.urlsplit(metrics_url).netloc
    for shipped in ('"127.0.0.1:8002"', "scrape_interval: 5s", "evaluation_interval: 5s"):
        assert shipped in config
    config = config.replace('"127.0.0.1:8002"', f'"{target}"')
    config = config.replace("scrape_interval: 5s", "scrape_interval: 1s")
    config = config.replace("evaluation_interval: 5s", "evaluation_interval: 1s")
    root.mkdir(parents=True, exist_ok=True)
    (root / "prometheus.yml").write_text(config)
    (root / "alerts.yml").write_text(rules or (DEPLOY / "prometheus" / "alerts.yml").read_text())
    (port,) = free_ports(1)
    log = (root / "prometheus.log").open("wb")
    process = subprocess.Popen(  # nosec B603: the test's own Prometheus
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
                if urllib.request.urlopen(f"{url}/-/ready", timeout=2).status == 200:  # nosec B310
                    break
            except OSError:
                assert process.poll() is None, (root / "prometheus.log").read_text()[-2000:]
                assert time.monotonic() < deadline, (root / "prometheus.log").read_text()[-2000:]
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def query(url: str, expr: str) -> list[float]:
    body = get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert body["status"] == "success", body
    return [float(sample["value"][1]) for sample in body["data"]["result"]]


def firing(url: str, alert: str) -> list[dict]:
    """The labels of every firing ``alert``."""
    alerts = get(f"{url}/api/v1/alerts")["data"]["alerts"]
    return [
        a["labels"] for a in alerts if a["labels"]["alertname"] == alert and a["state"] == "firing"
    ]
