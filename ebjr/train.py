"""Train the default Student and Teacher on Fashion-MNIST, export them to ONNX and build the
default model repository with their measured metrics.

    python -m ebjr.train [--out model_repository] [--epochs-student 6] [--epochs-teacher 8]

Reproducible: fixed seed, deterministic CPU kernels, fixed data split (``ebjr.data``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ebjr import data, models
from ebjr.onnx_info import describe
from ebjr.onnx_runner import OnnxClassifier
from ebjr.repository import build_repository

SEED = 0


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and a random shift of up to 2 pixels, per image."""
    flip = torch.rand(len(images), generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(3), images)
    padded = nn.functional.pad(images, (2, 2, 2, 2))
    dx, dy = torch.randint(0, 5, (2,), generator=generator).tolist()
    return padded[:, :, dy : dy + 28, dx : dx + 28]


def train(name: str, epochs: int, batch_size: int = 128, lr: float = 0.05) -> nn.Module:
    """Train architecture ``name`` on the ``train`` split with SGD and a one-cycle schedule."""
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    images, labels = (torch.from_numpy(a) for a in data.load_split("train"))
    model = models.build(name)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    steps = epochs * (len(labels) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        batches = range(len(labels) // batch_size)
        progress = tqdm(batches, desc=f"{name} epoch {epoch + 1}/{epochs}", unit="batch")
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("model_repository"))
    parser.add_argument("--work", type=Path, default=Path("build/models"))
    parser.add_argument("--epochs-student", type=int, default=6)
    parser.add_argument("--epochs-teacher", type=int, default=8)
    args = parser.parse_args(argv)
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

    record = build_repository(
        args.work / "student.onnx",
        args.work / "teacher.onnx",
        args.out,
        validation=data.load_split("val"),
    )
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(
        f"Wrote {args.out} and {args.out / 'metrics.json'}; calibrated on val: score "
        f"{record['score']}, default threshold {record['default_threshold']}"
    )


if __name__ == "__main__":
    main()
