"""Stream the whole Fashion-MNIST test set through the EBJR router and report, per threshold,
accuracy, the fraction answered by the Teacher, the fraction whose Teacher call failed or missed
its deadline (answered by the Student, ``student_fallback``) and throughput.

    python clients/evaluate.py --threshold -inf 6 8 10 inf
    python clients/evaluate.py --protocol grpc --teacher-fraction 0.3

Problems (no server, an unknown model, a bad knob) end with one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm import tqdm
from tritonclient.utils import InferenceServerException

from ebjr.ops.client import (
    DEFAULT_URLS,
    ClientError,
    add_server_arguments,
    classify,
    cli_args,
    connect,
    describe_router,
    open_client,
    run_cli,
)
from ebjr.training.data import load_split


def evaluate(
    url: str, protocol: str, model: str, images, labels, batch_size: int, workers: int, **params
):
    """Return (accuracy, teacher_fraction, fallback_fraction, images_per_second, thresholds
    applied)."""
    batches = [slice(i, i + batch_size) for i in range(0, len(labels), batch_size)]
    local = threading.local()  # one client per worker thread: the HTTP client is not thread-safe

    def send(k: int):
        if not hasattr(local, "client"):
            local.client = connect(url, protocol)
        try:
            return classify(local.client, images[batches[k]], model=model, **params)
        except InferenceServerException as err:
            raise ClientError(err.message()) from None

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
    applied = np.unique(  # one row per distinct threshold (tuple, for N-stage routers)
        np.concatenate([a.thresholds for a in answers]).reshape(len(labels), -1), axis=0
    )
    return (
        float((classes == labels).mean()),
        float((routes == "teacher").mean()),
        float((routes == "student_fallback").mean()),
        len(labels) / seconds,
        applied,
    )


def main(argv: list[str] | None = None) -> int:
    return run_cli(run, argv)


def run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_arguments(parser)
    knob = parser.add_mutually_exclusive_group()
    knob.add_argument("--threshold", nargs="+", help="one or more thresholds (inf, -inf ok)")
    knob.add_argument("--teacher-fraction", type=float, nargs="+")
    knob.add_argument("--min-accuracy", type=float, nargs="+")
    knob.add_argument("--max-accuracy-drop", type=float, nargs="+")
    parser.add_argument("--confidence", type=float, help="of --max-accuracy-drop (default 0.9)")
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
                ("max_accuracy_drop", args.max_accuracy_drop),
            )
            if v
        ),
        ("default", [None]),
    )
    url = args.url or DEFAULT_URLS[args.protocol]
    info = describe_router(open_client(url, args.protocol, args.model, args.timeout), args.model)
    print(f"{args.model}: routing score {info.score!r}, default threshold {info.default_threshold}")
    print(
        f"{len(labels)} test images, {args.protocol} {url}, batch {args.batch_size}, "
        f"{args.workers} workers"
    )
    print(
        f"{name:>16} {'t applied':>10} {'accuracy':>9} {'teacher %':>10} {'fallback %':>10} "
        f"{'images/s':>9}"
    )
    for value in values:
        params = {} if value is None else {name: value}
        if args.confidence is not None:
            params["confidence"] = args.confidence
        accuracy, fraction, fallback, speed, applied = evaluate(
            url, args.protocol, args.model, images, labels, args.batch_size, args.workers, **params
        )
        shown = ",".join(f"{t:.3f}" for t in applied[0]) if len(applied) == 1 else "mixed"
        print(
            f"{str(value):>16} {shown:>10} {accuracy:>9.4f} {fraction:>10.2%} "
            f"{fallback:>10.2%} {speed:>9.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
