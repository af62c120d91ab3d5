"""Train the default Student and Teacher on Fashion-MNIST, export them to ONNX and build the
default model repository with their measured metrics.

    python -m ebjr.train [--out model_repository] [--epochs-student 6] [--epochs-teacher 8]

Reproducible: fixed seed, deterministic CPU kernels, fixed data split (``ebjr.data``).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ebjr import data, models
from ebjr import specialized as spec
from ebjr.calibration import calibrate_scores
from ebjr.onnx_info import describe
from ebjr.onnx_runner import OnnxClassifier
from ebjr.policy import SpecializedPolicy
from ebjr.repository import Specialized, build_repository
from ebjr.scores import energy

SEED = 0
log = logging.getLogger(__name__)


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random horizontal flip per image, and one random shift of up to 2 pixels shared by
    the whole batch (one draw per batch keeps the committed models' training reproducible)."""
    flip = torch.rand(len(images), generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(3), images)
    padded = nn.functional.pad(images, (2, 2, 2, 2))
    dx, dy = torch.randint(0, 5, (2,), generator=generator).tolist()
    return padded[:, :, dy : dy + 28, dx : dx + 28]


def train(
    name: str,
    epochs: int,
    batch_size: int = 128,
    lr: float = 0.05,
    popular: tuple[int, ...] | None = None,
) -> nn.Module:
    """Train architecture ``name`` on the ``train`` split with SGD and a one-cycle schedule.

    With ``popular``, train a specialized model: those classes plus one "other" class holding
    every remaining class (paper section 2.4).
    """
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    images, labels = data.load_split("train")
    if popular is not None:
        labels = spec.relabel(labels, popular)
    images, labels = torch.from_numpy(images), torch.from_numpy(labels)
    model = models.build(name, num_classes=int(labels.max()) + 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    steps = epochs * (len(labels) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        batches = range(len(labels) // batch_size)
        label = name if popular is None else f"{name} specialized on {popular}"
        progress = tqdm(batches, desc=f"{label} epoch {epoch + 1}/{epochs}", unit="batch")
        for step in progress:
            rows = order[step * batch_size : (step + 1) * batch_size]
            loss = loss_fn(model(augment(images[rows], generator)), labels[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            if step % 50 == 0:
                progress.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()


def export(model: nn.Module, path: Path) -> None:
    """Export ``model`` to ONNX with a dynamic batch axis and check it against Torch."""
    example = torch.from_numpy(data.load_split("val")[0][:64])
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    with torch.no_grad():
        expected = model(example).numpy()
    got = OnnxClassifier(path)(example.numpy())
    if not np.allclose(got, expected, atol=1e-4, rtol=1e-4):
        raise RuntimeError(f"{path}: ONNX differs from Torch by {np.abs(got - expected).max()}")


def accuracy(path: Path, split: str) -> float:
    images, labels = data.load_split(split)
    return float((OnnxClassifier(path, threads=2).predict(images).argmax(1) == labels).mean())


def train_specialized(args: argparse.Namespace, metrics: dict) -> Specialized:
    """Train a specialized Student for every candidate C and keep the one that reaches the
    Teacher's accuracy cheapest on a validation stream with ``args.share`` popular rows."""
    order = tuple(int(c) for c in args.popular_order.split(","))
    images, labels = data.load_split("val")
    teacher = OnnxClassifier(args.work / "teacher.onnx", threads=2).predict(images)
    teacher_flops = describe(args.work / "teacher.onnx").flops
    candidates = {}
    for c in args.candidate_c:
        popular = order[:c]
        start = time.perf_counter()
        model = train("student", args.epochs_student, popular=popular)
        path = args.work / f"student_specialized_c{c}.onnx"
        export(model, path)
        logits = OnnxClassifier(path, threads=2).predict(images)
        rows = spec.skewed_stream(labels, popular, args.share, len(labels), seed=SEED)
        policy = SpecializedPolicy(energy, popular, c, num_classes=teacher.shape[1])
        record = calibrate_scores(
            logits[rows], teacher[rows], labels[rows], describe(path).flops, teacher_flops, policy
        )
        on_popular = np.isin(labels, popular)
        candidates[c] = {
            "popular": list(popular),
            "train_seconds": round(time.perf_counter() - start, 1),
            "val_accuracy_popular_rows": float(
                policy.student_correct(logits[on_popular], labels[on_popular]).mean()
            ),
            "val_other_recall": float((logits[~on_popular].argmax(1) == c).mean()),
            "stream_share": args.share,
            "stream_score": record.score,
            "stream_parity_teacher_fraction": record.parity_teacher_fraction,
            "flops": describe(path).flops,
        }
        log.info(json.dumps({f"specialized C={c}": candidates[c]}))
    chosen = min(candidates, key=lambda c: candidates[c]["stream_parity_teacher_fraction"])
    metrics["specialized"] = {"chosen_c": chosen, "candidates": candidates}
    return Specialized(
        args.work / f"student_specialized_c{chosen}.onnx", order[:chosen], args.share
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("model_repository"))
    parser.add_argument("--work", type=Path, default=Path("build/models"))
    parser.add_argument("--epochs-student", type=int, default=6)
    parser.add_argument("--epochs-teacher", type=int, default=8)
    parser.add_argument(
        "--popular-order",
        default="0,1,2,3,4,5,6,7,8,9",
        help="classes, most popular first; top-C = the first C",
    )
    parser.add_argument(
        "--candidate-c",
        type=int,
        nargs="+",
        default=[2, 3, 5],
        help="a specialized Student per C; the cheapest is kept",
    )
    parser.add_argument(
        "--share",
        type=float,
        default=0.75,
        help="popular share of the validation stream that picks C",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    args.work.mkdir(parents=True, exist_ok=True)

    metrics: dict = {
        "dataset": "Fashion-MNIST",
        "seed": SEED,
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "models": {},
    }
    epochs = {"student": args.epochs_student, "teacher": args.epochs_teacher}
    for name in ("student", "teacher"):
        start = time.perf_counter()
        model = train(name, epochs[name])
        path = args.work / f"{name}.onnx"
        export(model, path)
        info = describe(path)
        metrics["models"][name] = {
            "architecture": models.ARCHITECTURES[name],
            "epochs": epochs[name],
            "train_seconds": round(time.perf_counter() - start, 1),
            "val_accuracy": accuracy(path, "val"),
            "test_accuracy": accuracy(path, "test"),
            "parameters": sum(p.numel() for p in model.parameters()),
            **info.to_dict(),
        }
        print(json.dumps({name: metrics["models"][name]}, indent=2))

    specialized = train_specialized(args, metrics)
    record = build_repository(
        args.work / "student.onnx",
        args.work / "teacher.onnx",
        args.out,
        validation=data.load_split("val"),
        specialized=specialized,
        gate_data=data.load_split("train"),  # never the validation split it is calibrated on
    )
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(
        f"Wrote {args.out} and {args.out / 'metrics.json'}; calibrated on val: score "
        f"{record.score}, default (parity) threshold {record.parity_threshold}"
    )


if __name__ == "__main__":
    main()
