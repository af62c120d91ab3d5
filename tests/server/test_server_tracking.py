"""``track_window`` on the real server: on σ=0.2 noisy traffic a ``teacher_fraction=0.25``
request sends about a quarter of the rows to the Teacher once the window has filled, where the
same router reading its calibration sends most of them; other knobs are untouched."""

from __future__ import annotations

import numpy as np
from conftest import TRACKED

from ebjr.ops.client import classify, connect
from ebjr.tasks.classification.drift_study import noisy
from ebjr.training import data


def teacher_share(client, model: str, images: np.ndarray) -> float:
    routes = np.concatenate(
        [
            classify(client, images[i : i + 32], model=model, teacher_fraction=0.25).routes
            for i in range(0, len(images), 32)
        ]
    )
    return float((routes == "teacher").mean())


def test_teacher_fraction_tracks_the_live_scores_under_noise(server):
    # one protocol: this is the router's tracking, and the knob's parsing is the same over
    # HTTP and gRPC (test_knobs.py runs both)
    client = connect(server.grpc_url, "grpc")
    images = noisy(data.load_split("test")[0][:4000])
    teacher_share(client, TRACKED, images[:2000])  # fills both instances' windows
    tracked = teacher_share(client, TRACKED, images[2000:])
    calibrated = teacher_share(client, "ebjr_router", images[2000:])
    assert abs(tracked - 0.25) <= 0.05, tracked
    assert calibrated > 0.5, calibrated
    answer = classify(client, images[:8], model=TRACKED, threshold="-inf")
    assert set(answer.routes) == {"student"}
