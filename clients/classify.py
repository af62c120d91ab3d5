"""Classify Fashion-MNIST test images or a PNG file through the EBJR router.

    python clients/classify.py --index 0 --count 5 --threshold 8.5
    python clients/classify.py --png shoe.png --protocol grpc --teacher-fraction 0.3

Prints, per image: the class name, which model answered, the Student's routing score (the
score named in the router's calibration file), the threshold applied and the round-trip latency.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from tritonclient.utils import InferenceServerException

from ebjr.client import DEFAULT_URLS, classify, cli_args, connect
from ebjr.data import CLASS_NAMES, load_split


def load_png(path: str, invert: bool) -> np.ndarray:
    """A PNG as ``(1, 1, 28, 28) float32`` in [0, 1], light object on a dark background."""
    from PIL import Image

    image = Image.open(path).convert("L").resize((28, 28))
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    return (1.0 - pixels if invert else pixels)[None, None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", choices=("http", "grpc"), default="http")
    parser.add_argument("--url", help="host:port (default 127.0.0.1:8000 http, :8001 grpc)")
    knob = parser.add_mutually_exclusive_group()
    knob.add_argument("--threshold", help="score threshold t (number, inf or -inf)")
    knob.add_argument("--teacher-fraction", type=float, help="calibrated share sent to Teacher")
    knob.add_argument("--min-accuracy", type=float, help="cheapest calibrated threshold for it")
    parser.add_argument("--png", help="classify this PNG instead of test images")
    parser.add_argument("--invert", action="store_true", help="PNG has a light background")
    parser.add_argument("--index", type=int, default=0, help="first test image")
    parser.add_argument("--count", type=int, default=5, help="number of test images")
    args = parser.parse_args(cli_args(argv))

    if args.png:
        images, labels = load_png(args.png, args.invert), [None]
    else:
        test_images, test_labels = load_split("test")
        rows = slice(args.index, args.index + args.count)
        images, labels = test_images[rows], test_labels[rows]
    params = {
        key: value
        for key, value in (
            ("threshold", args.threshold),
            ("teacher_fraction", args.teacher_fraction),
            ("min_accuracy", args.min_accuracy),
        )
        if value is not None
    }
    client = connect(args.url or DEFAULT_URLS[args.protocol], args.protocol)
    print(
        f"{'#':>5}  {'class':<12} {'truth':<12} {'answered by':<17} {'score':>7} {'t':>7} {'ms':>6}"
    )
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        start = time.perf_counter()
        try:
            answer = classify(client, image[None], **params)
        except InferenceServerException as err:
            print(f"error: {err.message()}", file=sys.stderr)
            return 1
        ms = (time.perf_counter() - start) * 1000
        truth = CLASS_NAMES[label] if label is not None else "-"
        print(
            f"{args.index + i:>5}  {CLASS_NAMES[answer.classes[0]]:<12} {truth:<12} "
            f"{answer.routes[0]:<17} {answer.scores[0]:>7.3f} {answer.thresholds[0]:>7.3f} "
            f"{ms:>6.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
