"""The regression task: the rotation angle of a rotated Fashion-MNIST item (paper eqs. 8-11).

Each image is a real Fashion-MNIST image of the matching split, rotated about its centre by an
angle drawn uniformly from ``[-60, 60]`` degrees (counter-clockwise positive, bilinear, the
corners filled with background); the target is that angle. Within +-60 degrees the angle is
unambiguous even for items that look the same upside down. Generation is seeded per split,
so every run makes the same images.

    python -m ebjr.tasks.regression.data --out build/regression    # writes <split>.npz
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ebjr.tasks.regression.scores import MAX_ANGLE
from ebjr.training.data import SPLITS, load_split

SEEDS = {"train": 21, "val": 22, "test": 23}
COUNTS = {"train": 55_000, "val": 5_000, "test": 10_000}


@dataclass(frozen=True)
class Rotated:
    """``images: (N, 1, 28, 28) float32`` in [0, 1]; ``angles: (N,) float32`` degrees;
    ``sources: (N,)`` the index of each image in its Fashion-MNIST split."""

    images: np.ndarray
    angles: np.ndarray
    sources: np.ndarray


def rotate(image: np.ndarray, angle: float) -> np.ndarray:
    """``image: (28, 28)`` rotated by ``angle`` degrees counter-clockwise about its centre."""
    out = ndimage.rotate(image, angle, reshape=False, order=1, mode="constant", cval=0.0)
    return np.clip(out, 0.0, 1.0)


def make_rotated(split: str, count: int | None = None) -> Rotated:
    """The first ``count`` (default ``COUNTS[split]``) rotated images of ``split``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    images = load_split(split)[0]
    count = COUNTS[split] if count is None else count
    rng = np.random.default_rng(SEEDS[split])
    sources = rng.choice(len(images), size=count, replace=count > len(images))
    angles = rng.uniform(-MAX_ANGLE, MAX_ANGLE, size=count).astype(np.float32)
    rotated = np.stack([rotate(images[i, 0], a) for i, a in zip(sources, angles, strict=True)])
    return Rotated(rotated[:, None].astype(np.float32), angles, sources)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("build/regression"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        data = make_rotated(split)
        path = args.out / f"{split}.npz"
        np.savez_compressed(path, images=data.images, angles=data.angles, sources=data.sources)
        print(f"{path}: {len(data.angles)} images")


if __name__ == "__main__":
    main()
