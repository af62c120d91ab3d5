"""The EBJR detector router (paper eqs. 12-14): a packed router (``ebjr.serving.packed``)
over a Student and a Teacher detector.

The Student detector runs once per dynamic batch; each image's score is the negative free
energy of the boxes the Student keeps (``ebjr.tasks.detection.scores``); the images below their
request's threshold go to the Teacher detector in one BLS call, and every image gets the
answering detector's boxes, classes, box scores and valid mask, plus ``score``, ``threshold``
and ``route``. The knobs are the classification router's: ``threshold``, ``teacher_fraction``
and ``min_accuracy`` (in COCO mAP@[.5:.95] on the calibration scenes). The Teacher is local
(``teacher_url`` is refused).
"""

from __future__ import annotations

import numpy as np

from ebjr.core.routing import Routed
from ebjr.serving.packed import PackedRouter
from ebjr.serving.router import routing_columns
from ebjr.tasks.detection import ROUTER_SPEC
from ebjr.tasks.detection.scores import SCORE_FACTORIES


class TritonPythonModel(PackedRouter):
    spec, scores = ROUTER_SPEC, SCORE_FACTORIES

    def _columns(self, routed: Routed, thresholds: np.ndarray) -> dict[str, np.ndarray]:
        found = self.layout.unpack(routed.logits)
        return {
            "boxes": found["boxes"],
            "classes": found["class_logits"].argmax(axis=-1).astype(np.int64),
            "scores": found["scores"],
            "valid": found["valid"],
            **routing_columns(routed, thresholds),
        }
