"""Classify Fashion-MNIST test images or an image file through the EBJR router.

    python clients/classify.py --index 0 --count 5 --threshold 8.5
    python clients/classify.py --png shoe.png --protocol grpc --teacher-fraction 0.3

Prints the router's routing score name (the units of a raw ``--threshold``) and default, then
per image: the class name, which model answered, the routing score, the threshold applied and
the round-trip latency. ``--png`` sends the file's bytes (PNG or JPEG) as ``image_bytes``: the
router decodes it, turns colour grey (luminance), puts transparent pixels on the background and
resizes it to 28x28. Fashion-MNIST items are light on a dark background: give ``--invert`` for a
dark item on a light background (then this client decodes and inverts it, and sends pixels).
Problems (a missing or unreadable file, no server, an unknown model, a bad knob) end with one
line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from tritonclient.utils import InferenceServerException

from ebjr.ops.client import (
    DEFAULT_URLS,
    ClientError,
    add_knob_arguments,
    add_server_arguments,
    classify,
    cli_args,
    describe_router,
    encoded,
    knob_parameters,
    load_image,
    open_client,
    read_file,
    run_cli,
)
from ebjr.training.data import CLASS_NAMES, load_split


def main(argv: list[str] | None = None) -> int:
    return run_cli(run, argv)


def run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_arguments(parser)
    add_knob_arguments(parser, min_accuracy="cheapest calibrated threshold for it")
    parser.add_argument("--png", help="classify this image file (PNG or JPEG: sent as bytes)")
    parser.add_argument(
        "--invert", action="store_true", help="the image has a light background (sent as pixels)"
    )
    parser.add_argument("--index", type=int, default=0, help="first test image")
    parser.add_argument("--count", type=int, default=5, help="number of test images")
    args = parser.parse_args(cli_args(argv))

    if args.png and not args.invert:
        images, labels = encoded([read_file(args.png)]), [None]
    elif args.png:
        images, labels = load_image(args.png, args.invert, side=28)[None], [None]
    else:
        test_images, test_labels = load_split("test")
        rows = slice(args.index, args.index + args.count)
        images, labels = test_images[rows], test_labels[rows]
    params = knob_parameters(args)
    url = args.url or DEFAULT_URLS[args.protocol]
    client = open_client(url, args.protocol, args.model, args.timeout)
    info = describe_router(client, args.model)
    print(
        f"{args.model} at {url}: routing score {info.score!r} (the units of --threshold), "
        f"default threshold {info.default_threshold}"
    )
    print(
        f"{'#':>5}  {'class':<12} {'truth':<12} {'answered by':<17} {'score':>7} {'t':>7} {'ms':>6}"
    )
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        start = time.perf_counter()
        try:
            answer = classify(client, image[None], model=args.model, **params)
        except InferenceServerException as err:
            raise ClientError(err.message()) from None
        ms = (time.perf_counter() - start) * 1000
        truth = CLASS_NAMES[label] if label is not None else "-"
        threshold = ",".join(f"{t:.3f}" for t in np.atleast_1d(answer.thresholds[0]))
        print(
            f"{args.index + i:>5}  {CLASS_NAMES[answer.classes[0]]:<12} {truth:<12} "
            f"{answer.routes[0]:<17} {answer.scores[0]:>7.3f} {threshold:>7} {ms:>6.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
