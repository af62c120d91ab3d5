"""Detect Fashion-MNIST items in a scene through the EBJR detector router, and draw the boxes.

    python clients/detect.py --index 0 --out boxes.png
    python clients/detect.py --png scene.png --teacher-fraction 0.3 --protocol grpc

Sends a 96x96 test scene (``ebjr.tasks.detection.data``; ``--count`` scenes from ``--index``) or an
image file (grey, resized to 96x96; ``--invert`` for dark items on a light background) to
``ebjr_detector``. Prints which detector answered each scene, its routing score and the
threshold applied, then one line per box; ``--out`` draws the kept boxes (the first scene's, or
every scene's side by side), labelled with class and confidence, over the scene, with the
ground truth in grey. Problems end with one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tritonclient.utils import InferenceServerException

from ebjr.ops.client import (
    DEFAULT_URLS,
    ClientError,
    Detections,
    add_knob_arguments,
    add_server_arguments,
    cli_args,
    describe_router,
    detect,
    knob_parameters,
    load_image,
    open_client,
    run_cli,
)
from ebjr.tasks.detection import DETECTOR_ROUTER
from ebjr.tasks.detection.data import CANVAS, make_scenes
from ebjr.training.data import CLASS_NAMES

ROUTE_COLOURS = {"student": (255, 160, 0), "teacher": (0, 200, 255)}
SCALE = 4  # the drawing's pixels per scene pixel


def draw(images: np.ndarray, found: Detections, truth: list | None, out: Path) -> None:
    """The scenes side by side with their kept boxes (coloured by route) and ground truth."""
    from PIL import Image, ImageDraw

    side = CANVAS * SCALE
    canvas = Image.new("RGB", (side * len(images), side + 16))
    pen = ImageDraw.Draw(canvas)
    for i, image in enumerate(images):
        grey = Image.fromarray((image[0] * 255).astype(np.uint8)).resize((side, side))
        canvas.paste(grey.convert("RGB"), (i * side, 16))
        colour = ROUTE_COLOURS.get(found.routes[i], (255, 60, 60))
        pen.text((i * side + 4, 2), f"{found.routes[i]}  s={found.scores[i]:.2f}", fill=colour)
        for box in truth[i] if truth else []:
            pen.rectangle(list(_pixels(box, i * side)), outline=(110, 110, 110))
        for box, label, conf in _kept(found, i):
            x0, y0, x1, y1 = _pixels(box, i * side)
            pen.rectangle([x0, y0, x1, y1], outline=colour, width=2)
            pen.text((x0 + 3, y0 + 2), f"{CLASS_NAMES[label]} {conf:.2f}", fill=colour)
    canvas.save(out)


def _pixels(box: np.ndarray, left: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) * SCALE for v in box)
    return x0 + left, y0 + 16, x1 + left, y1 + 16


def _kept(found: Detections, i: int) -> list[tuple[np.ndarray, int, float]]:
    keep = found.valid[i]
    return list(
        zip(found.boxes[i][keep], found.classes[i][keep], found.box_scores[i][keep], strict=True)
    )


def main(argv: list[str] | None = None) -> int:
    return run_cli(run, argv)


def run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_arguments(parser)
    parser.set_defaults(model=DETECTOR_ROUTER)
    add_knob_arguments(parser, min_accuracy="cheapest threshold for this val mAP", certified=False)
    parser.add_argument("--png", help="detect in this image file instead of a test scene")
    parser.add_argument("--invert", action="store_true", help="the image has a light background")
    parser.add_argument("--index", type=int, default=0, help="first test scene")
    parser.add_argument("--count", type=int, default=1, help="number of test scenes")
    parser.add_argument("--out", type=Path, help="draw the boxes to this PNG file")
    parser.add_argument("--min-confidence", type=float, default=0.3, help="boxes to print/draw")
    args = parser.parse_args(cli_args(argv))
    if args.count < 1 or args.index < 0:
        raise ClientError("--index must be >= 0 and --count >= 1")

    if args.png:
        images, truth = load_image(args.png, args.invert, side=CANVAS)[None], None
    else:
        scenes = make_scenes("test", args.index + args.count)
        images, truth = scenes.images[args.index :], scenes.boxes[args.index :]
    params = knob_parameters(args)
    url = args.url or DEFAULT_URLS[args.protocol]
    client = open_client(url, args.protocol, args.model, args.timeout)
    info = describe_router(client, args.model)
    print(f"{args.model} at {url}: routing score {info.score!r}, default {info.default_threshold}")
    try:
        found = detect(client, images, model=args.model, **params)
    except InferenceServerException as err:
        raise ClientError(err.message()) from None
    found.valid = found.valid & (found.box_scores >= args.min_confidence)
    for i in range(len(images)):
        print(
            f"scene {args.index + i}: {found.routes[i]} answered (score {found.scores[i]:.3f}, "
            f"threshold {found.thresholds[i]:.3f}), {found.valid[i].sum()} boxes"
        )
        for box, label, conf in _kept(found, i):
            print(f"  {CLASS_NAMES[label]:<12} {conf:.2f}  [{', '.join(f'{v:.0f}' for v in box)}]")
    if args.out:
        draw(images, found, truth, args.out)
        print(f"drew {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
