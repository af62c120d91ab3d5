"""The server's own count of what a model ran, and a router's count of what it sent to each
later stage, read once they have settled."""

from __future__ import annotations

import time

from ebjr.core.tally import FLUSH_S
from ebjr.ops import prometheus
from ebjr.ops.client import protocol_of
from ebjr.ops.restricted import admin_headers


def settled_counts(client, model: str, timeout: float = 5.0) -> tuple[int, int]:
    """``(inference_count, execution_count)`` of ``model``, once two reads 50 ms apart agree.

    Triton records a model's statistics after it sends the response, so a read made right after
    the client has its answer can miss that request.
    """
    protocol = protocol_of(client)
    kwargs = {"as_json": True} if protocol == "grpc" else {}
    kwargs["headers"] = admin_headers(protocol)  # statistics is restricted
    last = None
    deadline = time.monotonic() + timeout
    while True:
        stats = client.get_inference_statistics(model, **kwargs)["model_stats"][0]
        now = int(stats["inference_count"]), int(stats["execution_count"])
        if now == last or time.monotonic() > deadline:
            return now
        last = now
        time.sleep(0.05)


def settled_stage_counts(server, router: str, stage: int = 1) -> tuple[int, int]:
    """``(rows, calls)`` that ``router`` sent to its later stage ``stage`` (1 = the first after
    the Student), in its process or not, from its own metrics, once two scrapes a flush
    apart agree (the router flushes its counts every ``FLUSH_S``)."""
    last = None
    deadline = time.monotonic() + 5.0
    while True:
        text = prometheus.scrape(server.metrics_url)
        labels = {"model": router, "stage": str(stage)}
        now = tuple(
            int(prometheus.value(text, name, **labels))
            for name in ("ebjr_stage_rows_total", "ebjr_stage_calls_total")
        )
        if now == last or time.monotonic() > deadline:
            return now
        last = now
        time.sleep(2 * FLUSH_S)
