"""Prometheus: read the text exposition (Triton's ``/metrics``), one parser for the
benchmarks, the tests and anything else that reads the router's series; and run a real
Prometheus with the shipped ``deploy/prometheus/`` config and alert rules against a server
(``running``), for the tests and ``make audit``."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ebjr.core.layout import PROJECT_ROOT
from ebjr.ops.server import free_ports

CONFIG_DIR = PROJECT_ROOT / "deploy" / "prometheus"
SHIPPED_TARGET = "127.0.0.1:8002"  # what prometheus.yml scrapes (make serve's metrics port)
SHIPPED_INTERVAL = "5s"

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of series ``name`` in ``text``: ``[(labels, value), ...]``."""
    found = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match["name"] == name:
            found.append((dict(_LABEL.findall(match["labels"] or "")), float(match["value"])))
    return found


def value(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when there is none)."""
    return sum(v for found, v in samples(text, name) if labels.items() <= found.items())


def scrape(url: str, timeout: float = 5.0) -> str:
    """The metrics text at ``url`` (e.g. ``http://127.0.0.1:8002/metrics``)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) metrics URL: {url}")
    with urllib.request.urlopen(url, timeout=timeout) as response:  # nosec B310
        return response.read().decode()


def get_json(url: str, timeout: float = 5.0) -> dict:
    """The JSON body at ``url`` (Prometheus's HTTP API)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")
    with urllib.request.urlopen(url, timeout=timeout) as response:  # nosec B310
        return json.loads(response.read())


@contextlib.contextmanager
def running(
    metrics_url: str, root: Path, interval_s: int | None = None, rules: str | None = None
) -> Iterator[str]:
    """Run Debian's ``prometheus`` with ``deploy/prometheus/``'s config and rules, scraping
    ``metrics_url``; yield its URL. ``interval_s`` replaces the shipped scrape and evaluation
    intervals, ``rules`` the shipped ``alerts.yml`` (a test shortens its ``for``). Its files,
    data and log go under ``root``."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("Prometheus is missing: `make monitoring-deps` installs it")
    config = (CONFIG_DIR / "prometheus.yml").read_text()
    edits = {f'"{SHIPPED_TARGET}"': f'"{urllib.parse.urlsplit(metrics_url).netloc}"'}
    if interval_s is not None:
        for key in ("scrape_interval", "evaluation_interval"):
            edits[f"{key}: {SHIPPED_INTERVAL}"] = f"{key}: {interval_s}s"
    for shipped, wanted in edits.items():
        if shipped not in config:
            raise RuntimeError(f"{CONFIG_DIR / 'prometheus.yml'} no longer says {shipped}")
        config = config.replace(shipped, wanted)
    root.mkdir(parents=True, exist_ok=True)
    (root / "prometheus.yml").write_text(config)
    (root / "alerts.yml").write_text(rules or (CONFIG_DIR / "alerts.yml").read_text())
    (port,) = free_ports(1)
    log = (root / "prometheus.log").open("wb")
    # the installed Prometheus on files written here, no shell
    process = subprocess.Popen(  # nosec B603
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
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"Prometheus did not start: {(root / 'prometheus.log').read_text()[-2000:]}"
                )
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:  # nosec B310
            return response.status == 200
    except OSError:
        return False


def query(url: str, expr: str) -> list[float]:
    """The values of an instant query ``expr`` at the Prometheus at ``url``."""
    body = get_json(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    if body["status"] != "success":
        raise RuntimeError(f"query {expr!r} failed: {body}")
    return [float(sample["value"][1]) for sample in body["data"]["result"]]


def alerts(url: str, name: str, state: str | None = None) -> list[dict]:
    """The labels of every alert ``name`` (in ``state``: ``pending`` or ``firing``)."""
    found = get_json(f"{url}/api/v1/alerts")["data"]["alerts"]
    return [
        a["labels"]
        for a in found
        if a["labels"]["alertname"] == name and state in (None, a["state"])
    ]
