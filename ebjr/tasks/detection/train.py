"""Train the detection Student and Teacher (``ebjr.tasks.detection.models``) on the Fashion-MNIST
scenes, export them to ONNX and measure them with COCO mAP (Torch for training only).

    python -m ebjr.tasks.detection.train [--out detection_models]      # part of `make models`

Targets: the cell holding a box's centre is positive for its class (the smaller box wins a
shared cell); focal loss on every class logit of every cell; on positive cells, distribution
focal loss (DFL) on the two bins around each true side distance, plus L1 on the expected one.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ebjr.build.onnx_info import count_flops
from ebjr.tasks.detection import models as dm
from ebjr.tasks.detection.data import Scenes, make_scenes
from ebjr.tasks.detection.metrics import coco_map, detections
from ebjr.training.fit import fit
from ebjr.training.onnx_export import export_checked

SEED = 0
log = logging.getLogger(__name__)


def targets(boxes: np.ndarray, labels: np.ndarray, num_classes: int = 10):
    """One scene's targets: ``classes (C, G, G)`` 0/1, ``distances (4, G, G)`` pixels and
    ``positive (G, G)`` bool. ``boxes: (K, 4)`` xyxy, ``labels: (K,)``."""
    g = dm.GRID
    classes = np.zeros((num_classes, g, g), dtype=np.float32)
    distances = np.zeros((4, g, g), dtype=np.float32)
    positive = np.zeros((g, g), dtype=bool)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for k in np.argsort(-areas):  # larger first, so a smaller box sharing a cell wins it
        x0, y0, x1, y1 = boxes[k]
        i = min(int((y0 + y1) / 2 // dm.STRIDE), g - 1)
        j = min(int((x0 + x1) / 2 // dm.STRIDE), g - 1)
        cx, cy = (j + 0.5) * dm.STRIDE, (i + 0.5) * dm.STRIDE
        classes[:, i, j] = 0
        classes[labels[k], i, j] = 1
        distances[:, i, j] = [cx - x0, cy - y0, x1 - cx, y1 - cy]
        positive[i, j] = True
    return classes, distances, positive


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(logits)
    ce = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    weight = alpha * target + (1 - alpha) * (1 - target)
    return (weight * (1 - p_t) ** gamma * ce).sum()


def box_loss(box_logits: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """DFL + L1 for ``box_logits (P, 4, BINS)`` against ``distances (P, 4)`` pixels."""
    u = (distances / dm.BIN_WIDTH - 0.5).clamp(0, dm.BINS - 1 - 1e-4)
    left = u.floor().long()
    w_right = u - left
    log_p = torch.log_softmax(box_logits, dim=-1)
    dfl = -(
        (1 - w_right) * log_p.gather(-1, left[..., None])[..., 0]
        + w_right * log_p.gather(-1, (left + 1)[..., None])[..., 0]
    )
    l1 = (dm.expected_distances(box_logits) - distances).abs() / dm.BIN_WIDTH
    return (dfl + l1).sum()


def train(name: str, scenes: Scenes, epochs: int, batch_size: int = 64, lr: float = 2e-3):
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    model = dm.build(name)
    images = torch.from_numpy(scenes.images)
    prepared = [targets(b, lab) for b, lab in zip(scenes.boxes, scenes.labels, strict=True)]
    classes = torch.from_numpy(np.stack([t[0] for t in prepared]))
    distances = torch.from_numpy(np.stack([t[1] for t in prepared]))
    positive = torch.from_numpy(np.stack([t[2] for t in prepared]))

    def loss(rows: torch.Tensor) -> torch.Tensor:
        class_logits, box_logits = model(images[rows])
        pos = positive[rows]
        n_pos = max(int(pos.sum()), 1)
        cls = focal_loss(class_logits, classes[rows]) / n_pos
        boxes = box_logits.permute(0, 3, 4, 1, 2)[pos]  # (P, 4, BINS)
        d = distances[rows].permute(0, 2, 3, 1)[pos]  # (P, 4)
        return cls + box_loss(boxes, d) / n_pos

    return fit(model, len(images), epochs, batch_size, lr, loss, generator, name)


OUTPUTS = ["boxes", "scores", "class_logits", "box_logits", "valid"]


def export(model: dm.Detector, path: Path, example: np.ndarray) -> None:
    """ONNX with a dynamic batch axis, checked against Torch."""
    export_checked(dm.DetectorExport(model).eval(), path, example, OUTPUTS)


def detector_metrics(
    path: Path, name: str, epochs: int, seconds: float, val_scenes: Scenes
) -> dict:
    """What ``metrics.json`` records of one trained detector."""
    return {
        "architecture": dm.ARCHITECTURES[name],
        "epochs": epochs,
        "train_seconds": round(seconds, 1),
        "flops": count_flops(onnx.load(str(path))),
        **{
            f"val_{k}": v
            for k, v in coco_map(val_scenes, detections(path, val_scenes.images)).items()
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("detection_models"))
    parser.add_argument("--epochs", type=int, help="for every detector (default: EPOCHS)")
    parser.add_argument("--scenes", type=int, default=20_000)
    parser.add_argument("--only", help="train this detector only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    train_scenes, val_scenes = make_scenes("train", args.scenes), make_scenes("val", 1000)
    metrics = {}
    for name in [args.only] if args.only else list(dm.ARCHITECTURES):
        start, epochs = time.perf_counter(), args.epochs or dm.EPOCHS[name]
        model = train(name, train_scenes, epochs)
        path = args.out / f"{name}.onnx"
        export(model, path, val_scenes.images[:8])
        seconds = time.perf_counter() - start
        metrics[name] = detector_metrics(path, name, epochs, seconds, val_scenes)
        print(json.dumps({name: metrics[name]}))
    if not args.only:
        (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


if __name__ == "__main__":
    main()
