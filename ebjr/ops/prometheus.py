"""Read Prometheus text exposition (Triton's ``/metrics``): one parser for the benchmark, the
tests and anything else that reads the router's series."""

from __future__ import annotations

import re
import urllib.request

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
