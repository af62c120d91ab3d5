"""Fashion-MNIST from the original IDX files, with a fixed validation split.

Where the files are looked for, in order: ``$EBJR_DATA``, Debian's ``dataset-fashion-mnist``
folder, ``apt-get install dataset-fashion-mnist`` (when running as root), the official download.

Splits: ``train`` (55,000) and ``val`` (5,000) are a fixed, seeded partition of the 60,000
training images; ``test`` (10,000) is the official test set, used for reporting only.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import numpy as np

from ebjr.core.preprocess import Preprocessing
from ebjr.core.routing import RequestError

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
log = logging.getLogger(__name__)
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CACHE_DIR = Path.home() / ".cache" / "ebjr" / "fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
VAL_SIZE = 5_000
SPLIT_SEED = 0
SPLITS = ("train", "val", "test")


def _has_files(folder: Path) -> bool:
    return all((folder / name).exists() for pair in FILES.values() for name in pair)


def data_dir() -> Path:
    """The folder holding the four IDX files, installing or downloading them if needed."""
    if os.environ.get("EBJR_DATA"):
        folder = Path(os.environ["EBJR_DATA"])
        if not _has_files(folder):
            raise FileNotFoundError(f"$EBJR_DATA={folder} lacks the Fashion-MNIST IDX files")
        return folder
    if _has_files(DEBIAN_DIR):
        return DEBIAN_DIR
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        log.info("installing Debian package dataset-fashion-mnist")
        # fixed argv, no shell; apt-get as found on root's PATH
        subprocess.run(["apt-get", "update", "-q"], check=False)  # nosec B603, B607
        install = ["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"]
        subprocess.run(install, check=False)  # nosec B603
        if _has_files(DEBIAN_DIR):
            return DEBIAN_DIR
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for pair in FILES.values():
        for name in pair:
            if not (CACHE_DIR / name).exists():
                log.info("downloading %s%s", DOWNLOAD_URL, name)
                # an https:// constant, never a user's URL
                urllib.request.urlretrieve(DOWNLOAD_URL + name, CACHE_DIR / name)  # nosec B310
    return CACHE_DIR


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a uint8 array of its stored shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``images: (N, 1, 28, 28) float32`` in [0, 1] and ``labels: (N,) int64``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    folder = data_dir()
    image_file, label_file = FILES["test" if split == "test" else "train"]
    images = read_idx(folder / image_file)
    labels = read_idx(folder / label_file).astype(np.int64)
    if split != "test":
        order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
        rows = order[:VAL_SIZE] if split == "val" else order[VAL_SIZE:]
        images, labels = images[rows], labels[rows]
    return (images[:, None].astype(np.float32) / 255.0), labels


LABELLED_FORMATS = (
    "fashion-mnist:SPLIT, FILE.npz (images, labels), IMAGES.idx,LABELS.idx, or a DIR with one "
    "folder of PNG/JPEG files per class"
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def add_labelled_argument(
    parser: argparse.ArgumentParser, flag: str, purpose: str, default: str | None = None
) -> None:
    """A command-line option naming labelled data for ``load_labelled``."""
    parser.add_argument(flag, default=default, help=f"labelled data {purpose}: {LABELLED_FORMATS}")


def load_labelled(
    spec: str, preprocessing: Preprocessing | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Labelled data for calibration or evaluation, from one of:

    - ``fashion-mnist:val`` (or ``:train``/``:test``): a split of the built-in dataset;
    - ``FILE.npz`` holding ``images`` (N, ...) and ``labels`` (N,);
    - ``IMAGES.idx[.gz],LABELS.idx[.gz]``: IDX files, uint8 images scaled to [0, 1] with a
      channel axis added to (N, H, W) images;
    - a directory with one folder per class (torchvision's ImageFolder: label ``k`` is the
      ``k``-th folder name in sorted order) of PNG or JPEG files, decoded as ``preprocessing``
      says: the serving router's own (``ebjr.core.preprocess``).
    """
    if Path(spec).is_dir():
        return load_image_folder(Path(spec), preprocessing)
    if spec.startswith("fashion-mnist:"):
        return load_split(spec.split(":", 1)[1])
    if spec.endswith(".npz"):
        with np.load(spec) as archive:
            if "images" not in archive or "labels" not in archive:
                raise ValueError(f"{spec} must hold arrays 'images' and 'labels'")
            return archive["images"], archive["labels"].astype(np.int64)
    if "," in spec:
        image_path, label_path = (Path(p) for p in spec.split(",", 1))
        images, labels = read_idx(image_path), read_idx(label_path).astype(np.int64)
        images = images.astype(np.float32) / 255.0
        return (images[:, None] if images.ndim == 3 else images), labels
    raise ValueError(
        f"unrecognised data {spec!r}: use fashion-mnist:val, FILE.npz, IMAGES,LABELS or a DIR"
    )


def load_image_folder(
    folder: Path, preprocessing: Preprocessing | None
) -> tuple[np.ndarray, np.ndarray]:
    """``folder/<class>/<image>`` as ``(N, C, H, W) float32`` and ``(N,)`` labels (the classes
    in sorted order); ``ValueError`` naming a file that does not decode."""
    if preprocessing is None:
        raise ValueError(f"{folder}: an image folder needs the model's preprocessing to decode")
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"{folder} has no class folders (one folder of images per class)")
    images, labels = [], []
    for label, cls in enumerate(classes):
        for path in sorted(p for p in cls.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            try:
                images.append(preprocessing.decode(path.read_bytes()))
            except RequestError as err:
                raise ValueError(f"{path}: {err}") from None
            labels.append(label)
    if not images:
        raise ValueError(f"{folder}: no PNG or JPEG files in its class folders")
    log.info(
        "%s: %d images in %d classes %s",
        folder,
        len(labels),
        len(classes),
        [c.name for c in classes],
    )
    return np.stack(images), np.array(labels, dtype=np.int64)
