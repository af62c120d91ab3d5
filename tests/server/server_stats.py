"""The server's own count of what a model ran, read once it has settled."""

from __future__ import annotations

import time

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
