"""The edge client: the Student runs here, only the rows that need the Teacher go to a remote
Triton server (gRPC or HTTP), batched. Classifies Fashion-MNIST test images.

    python clients/edge.py --teacher-url 127.0.0.1:8001 --count 256 --batch-size 64
    python clients/edge.py --teacher-url cloud:8000 --protocol http --teacher-fraction 0.2
    python clients/edge.py --teacher-url cloud:8001 --tls-ca ca.pem --tls-key k.pem --tls-cert c.pem
    python clients/edge.py --teacher-url 127.0.0.1:8001 --png   # PNG bytes to the cloud

Prints, per batch, how many rows and bytes went to the cloud and how many fell back to the
Student (cloud unreachable or slower than --timeout), then the accuracy. Problems (no
repository, a bad knob, a bad URL) end with one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ebjr.core.layout import DEFAULT_REPOSITORY, TEACHER
from ebjr.core.preprocess import encode_png
from ebjr.core.remote import TLS
from ebjr.core.routing import RequestError
from ebjr.ops.client import add_knob_arguments, cli_args, encoded, knob_parameters
from ebjr.ops.edge import EdgeClient
from ebjr.training.data import load_split


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except (RequestError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPOSITORY, help="local Student")
    parser.add_argument("--teacher-url", required=True, help="the cloud's host:port")
    parser.add_argument("--teacher-model", default=TEACHER)
    parser.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the cloud")
    tls = parser.add_argument_group("TLS to the cloud (gRPC; key and cert for mutual TLS)")
    tls.add_argument("--tls-ca", default="", help="PEM CA bundle that signed the server")
    tls.add_argument("--tls-key", default="", help="PEM private key of this client")
    tls.add_argument("--tls-cert", default="", help="PEM certificate chain of this client")
    add_knob_arguments(parser, min_accuracy="cheapest calibrated threshold for it")
    parser.add_argument("--index", type=int, default=0, help="first test image")
    parser.add_argument("--count", type=int, default=256, help="number of test images")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--png",
        action="store_true",
        help="send each image as PNG bytes: decoded here for the Student, sent as they are to "
        "the cloud's teacher_bytes ensemble",
    )
    args = parser.parse_args(cli_args(argv))

    images, labels = load_split("test")
    rows = slice(args.index, args.index + args.count)
    images, labels = images[rows], labels[rows]
    if args.png:
        images = encoded([encode_png(image) for image in images])
    edge = EdgeClient.from_repository(
        args.repo,
        args.teacher_url,
        teacher_model=args.teacher_model,
        protocol=args.protocol,
        timeout_s=args.timeout,
        tls=TLS(args.tls_ca, args.tls_key, args.tls_cert)
        if args.tls_ca or args.tls_key or args.tls_cert
        else None,
    )
    knobs = knob_parameters(args)
    print(f"Student local ({args.repo}), Teacher at {args.teacher_url} over {args.protocol}")
    print(f"{'batch':>5} {'rows':>5} {'sent':>5} {'bytes sent':>11} {'fallback':>8} {'t':>8}")
    correct = 0
    try:
        for k, start in enumerate(range(0, len(labels), args.batch_size)):
            batch = slice(start, start + args.batch_size)
            answer = edge.classify(images[batch], **knobs)
            correct += int((answer.classes == labels[batch]).sum())
            fallback = int((answer.routes == "student_fallback").sum())
            print(
                f"{k:>5} {len(answer.classes):>5} {answer.sent_rows:>5} "
                f"{answer.sent_bytes:>11} {fallback:>8} {answer.threshold:>8.3f}"
            )
    finally:
        edge.close()
    s = edge.stats
    print(
        f"{s.rows} rows in {s.batches} batches: {s.sent_rows} sent ({s.sent_bytes} bytes), "
        f"{s.fallbacks} fell back, accuracy {correct / max(s.rows, 1):.4f}"
    )
    if s.last_error:
        print(f"cloud: {s.last_error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
