"""Stream the whole Fashion-MNIST test set through the EBJR router and report, per threshold,
accuracy, the fraction answered by the Teacher and throughput.

    python clients/evaluate.py --threshold -inf 6 8 10 inf
    python clients/evaluate.py --protocol grpc --teacher-fraction 0.3
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm import tqdm

from ebjr.client import DEFAULT_URLS, classify, cli_args, connect
from ebjr.data import load_split


def evaluate(url: str, protocol: str, images, labels, batch_size: int, workers: int, **params):
    """Return (accuracy, teacher_fraction, images_per_second, thresholds applied)."""
    batches = [slice(i, i + batch_size) for i in range(0, len(labels), batch_size)]
    local = threading.local()  # one client per worker thread: the HTTP client is not thread-safe

    def send(k: int):
        if not hasattr(local, "client"):
            local.client = connect(url, protocol)
        return classify(local.client, images[batches[k]], **params)

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        answers = list(
            tqdm(
                pool.map(send, range(len(batches))),
                total=len(batches),
                desc=str(params),
                unit="batch",
                leave=False,
            )
        )
    seconds = time.perf_counter() - start
    classes = np.concatenate([a.classes for a in answers])
    routes = np.concatenate([a.routes for a in answers])
    applied = np.unique(np.concatenate([a.thresholds for a in answers]))
    return (
        float((classes == labels).mean()),
        float((routes == "teacher").mean()),
        len(labels) / seconds,
        applied,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", choices=("http", "grpc"), default="http")
    parser.add_argument("--url", help="host:port (default 127.0.0.1:8000 http, :8001 grpc)")
    knob = parser.add_mutually_exclusive_group()
    knob.add_argument("--threshold", nargs="+", help="one or more thresholds (inf, -inf ok)")
    knob.add_argument("--teacher-fraction", type=float, nargs="+")
    knob.add_argument("--min-accuracy", type=float, nargs="+")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=4, help="concurrent requests")
    parser.add_argument("--limit", type=int, help="use only the first N test images")
    args = parser.parse_args(cli_args(argv))

    images, labels = load_split("test")
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    name, values = next(
        (
            (n, v)
            for n, v in (
                ("threshold", args.threshold),
                ("teacher_fraction", args.teacher_fraction),
                ("min_accuracy", args.min_accuracy),
            )
            if v
        ),
        ("default", [None]),
    )
    url = args.url or DEFAULT_URLS[args.protocol]
    print(
        f"{len(labels)} test images, {args.protocol} {url}, batch {args.batch_size}, "
        f"{args.workers} workers"
    )
    print(f"{name:>16} {'t applied':>10} {'accuracy':>9} {'teacher %':>10} {'images/s':>9}")
    for value in values:
        params = {} if value is None else {name: value}
        accuracy, fraction, speed, applied = evaluate(
            url, args.protocol, images, labels, args.batch_size, args.workers, **params
        )
        shown = f"{applied[0]:.3f}" if len(applied) == 1 else "mixed"
        print(f"{str(value):>16} {shown:>10} {accuracy:>9.4f} {fraction:>10.2%} {speed:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
