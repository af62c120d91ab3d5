"""COCO mAP of detector outputs on the Fashion-MNIST scenes (``pycocotools``).

``detections`` runs a detector's ONNX file (``ebjr.tasks.detection.models.DetectorExport``) and
returns its fixed-size outputs; ``coco_map`` scores the valid ones against the scenes' ground
truth: ``map`` is mAP@[.5:.95], ``map50`` mAP@.5.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ebjr.core.onnx_runner import OnnxModel
from ebjr.tasks.detection.data import Scenes, to_coco

FIELDS = ("boxes", "scores", "class_logits", "box_logits", "valid")


def detections(path: Path, images: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
    """``path``'s outputs on ``images: (N, 1, 96, 96)``: ``boxes (N, K, 4)``, ``scores (N,
    K)``, ``class_logits (N, K, C)``, ``box_logits (N, K, 4, B)``, ``valid (N, K)``."""
    model = OnnxModel(path, threads=2)
    chunks = [model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return {name: np.concatenate([c[k] for c in chunks]) for k, name in enumerate(FIELDS)}


def coco_results(found: dict[str, np.ndarray]) -> list[dict]:
    """The valid detections as COCO results (image ids from 1, category = class + 1)."""
    results = []
    for i, (boxes, scores, logits, valid) in enumerate(
        zip(found["boxes"], found["scores"], found["class_logits"], found["valid"], strict=True),
        1,
    ):
        for box, score, classes in zip(boxes[valid], scores[valid], logits[valid], strict=True):
            x0, y0, x1, y1 = (float(v) for v in box)
            results.append(
                {
                    "image_id": i,
                    "category_id": int(classes.argmax()) + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": float(score),
                }
            )
    return results


def coco_map(scenes: Scenes, found: dict[str, np.ndarray]) -> dict[str, float]:
    """``{"map": mAP@[.5:.95], "map50": mAP@.5}`` of ``found`` on ``scenes``."""
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints as it goes
        truth = COCO()
        truth.dataset = to_coco(scenes)
        truth.createIndex()
        results = coco_results(found)
        if not results:
            return {"map": 0.0, "map50": 0.0}
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {"map": float(evaluation.stats[0]), "map50": float(evaluation.stats[1])}
