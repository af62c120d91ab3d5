"""A reproducible object-detection set composed from real Fashion-MNIST items (paper eqs.
12-14 need a detection task; this is a synthetic composition, not a photographic dataset).

Each scene is a ``CANVAS`` x ``CANVAS`` black canvas holding 1-5 items of one Fashion-MNIST
split, each rescaled to 20-40 pixels (scale jitter) and placed where it overlaps no earlier item
by more than ``MAX_IOU``; overlapping pixels keep the brighter value. A ground-truth box is the
tight box of the item's visible pixels (above ``INK``), in pixels, ``(x0, y0, x1, y1)`` with
``x1``/``y1`` exclusive. Train, validation and test scenes draw their items only from the
matching ``ebjr.training.data`` split; a fixed seed per split makes every scene reproducible.

    scenes = make_scenes("val", 500)            # images (N, 1, 96, 96), boxes, labels
    coco = to_coco(scenes)                      # COCO ground truth, for pycocotools

    python -m ebjr.tasks.detection.data --out build/detection   # every split: .npz + COCO .json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ebjr.training import data

CANVAS = 96
ITEMS = (1, 5)  # items per scene, inclusive
SIZES = (20, 40)  # item side in pixels after scale jitter, inclusive
MAX_IOU = 0.3
INK = 0.1  # a pixel above this belongs to the item's box
SEEDS = {"train": 11, "val": 12, "test": 13}


@dataclass(frozen=True)
class Scenes:
    """``images: (N, 1, CANVAS, CANVAS) float32`` in [0, 1]; per scene ``boxes[i]: (K_i, 4)
    float32`` (x0, y0, x1, y1) and ``labels[i]: (K_i,) int64`` (Fashion-MNIST classes);
    ``sources[i]: (K_i,)`` the items' indices in their ``split``."""

    split: str
    images: np.ndarray
    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    sources: list[np.ndarray]


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of ``box: (4,)`` with each of ``boxes: (K, 4)``, xyxy."""
    if len(boxes) == 0:
        return np.zeros(0)
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter)


def _resized(item: np.ndarray, size: int) -> np.ndarray:
    """``item: (28, 28)`` in [0, 1] as ``(size, size)`` (bilinear)."""
    image = Image.fromarray((item * 255).round().astype(np.uint8)).resize((size, size), 2)
    return np.asarray(image, dtype=np.float32) / 255.0


def make_scenes(split: str, count: int, seed: int | None = None) -> Scenes:
    """``count`` scenes from ``split``'s items (seed: ``SEEDS[split]``)."""
    items, classes = data.load_split(split)
    rng = np.random.default_rng(SEEDS[split] if seed is None else seed)
    images = np.zeros((count, 1, CANVAS, CANVAS), dtype=np.float32)
    all_boxes, all_labels, all_sources = [], [], []
    for n in range(count):
        boxes: list[np.ndarray] = []
        labels, sources = [], []
        for _ in range(int(rng.integers(ITEMS[0], ITEMS[1] + 1))):
            for _attempt in range(20):  # a place that overlaps no earlier item too much
                source = int(rng.integers(len(items)))
                size = int(rng.integers(SIZES[0], SIZES[1] + 1))
                x, y = (int(v) for v in rng.integers(0, CANVAS - size + 1, 2))
                patch = _resized(items[source, 0], size)
                ys, xs = np.nonzero(patch > INK)
                if len(xs) == 0:
                    continue
                box = np.array(
                    [x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1],
                    dtype=np.float32,
                )
                if (iou(box, np.array(boxes).reshape(-1, 4)) <= MAX_IOU).all():
                    region = images[n, 0, y : y + size, x : x + size]
                    np.maximum(region, patch, out=region)
                    boxes.append(box)
                    labels.append(int(classes[source]))
                    sources.append(source)
                    break
        all_boxes.append(np.array(boxes, dtype=np.float32).reshape(-1, 4))
        all_labels.append(np.array(labels, dtype=np.int64))
        all_sources.append(np.array(sources, dtype=np.int64))
    return Scenes(split, images, all_boxes, all_labels, all_sources)


def to_coco(scenes: Scenes) -> dict:
    """The scenes' ground truth in COCO format: boxes as ``[x, y, width, height]``, image ids
    from 1 in scene order, category ids = Fashion-MNIST class + 1 (COCO ids start at 1)."""
    annotations = []
    for i, (boxes, labels) in enumerate(zip(scenes.boxes, scenes.labels, strict=True), 1):
        for box, label in zip(boxes.tolist(), labels.tolist(), strict=True):
            width, height = box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": label + 1,
                    "bbox": [box[0], box[1], width, height],
                    "area": width * height,
                    "iscrowd": 0,
                }
            )
    return {
        "info": {"description": f"EBJR Fashion-MNIST scenes, {scenes.split} split (synthetic)"},
        "images": [
            {"id": i, "width": CANVAS, "height": CANVAS, "file_name": f"{scenes.split}-{i}"}
            for i in range(1, len(scenes.images) + 1)
        ],
        "annotations": annotations,
        "categories": [{"id": c + 1, "name": name} for c, name in enumerate(data.CLASS_NAMES)],
    }


COUNTS = {"train": 20_000, "val": 2_000, "test": 2_000}


def write(scenes: Scenes, out: Path) -> tuple[Path, Path]:
    """``out/<split>.npz`` (images; boxes and labels concatenated, with each scene's row
    offsets) and ``out/<split>.json`` (COCO ground truth)."""
    out.mkdir(parents=True, exist_ok=True)
    arrays = out / f"{scenes.split}.npz"
    np.savez_compressed(
        arrays,
        images=scenes.images,
        boxes=np.concatenate(scenes.boxes),
        labels=np.concatenate(scenes.labels),
        offsets=np.cumsum([0] + [len(b) for b in scenes.boxes]),
    )
    coco = out / f"{scenes.split}.json"
    coco.write_text(json.dumps(to_coco(scenes)))
    return arrays, coco


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the Fashion-MNIST detection scenes.")
    parser.add_argument("--out", type=Path, default=Path("build/detection"))
    args = parser.parse_args(argv)
    for split, count in COUNTS.items():
        arrays, coco = write(make_scenes(split, count), args.out)
        print(f"{split}: {count} scenes -> {arrays}, {coco}")


if __name__ == "__main__":
    main()
