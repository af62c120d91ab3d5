"""Train and export the learned deferral gate (``ebjr.core.gate``); Torch is used here only.

    python -m ebjr.tasks.classification.gate_training --repo model_repository \
        [--data fashion-mnist:train]

The gate is a two-layer MLP on the Student's logits, their log-softmax and a one-hot of the
predicted class. Its target is "the Student is wrong and the Teacher is right" on labelled data
that must not be the calibration split (for the default pair: the training images outside
validation). It is exported with the negated defer logit as its output, so that higher means
"keep on the Student", and then calibrated like any other score.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ebjr.core.layout import ROUTER, STUDENT, gate_path
from ebjr.tasks.classification.logits import PairLogits, run_pair
from ebjr.training import data

SEED = 0
log = logging.getLogger(__name__)


class GateNet(nn.Module):
    """``logits: (N, C) -> (N, 1)`` routing score: the negated logit of "defer to the Teacher"."""

    def __init__(self, num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(3 * num_classes, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        predicted = (logits == logits.max(dim=1, keepdim=True).values).float()
        features = torch.cat([logits, predicted, torch.log_softmax(logits, dim=1)], dim=1)
        return -self.mlp(features)


def train_gate(
    student_logits: np.ndarray,
    teacher_logits: np.ndarray,
    labels: np.ndarray,
    epochs: int = 30,
    seed: int = SEED,
) -> GateNet:
    """Fit a ``GateNet`` to "Student wrong and Teacher right". Logits: (N, C); labels: (N,)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(student_logits, dtype=np.float32))
    defer = (student_logits.argmax(1) != labels) & (teacher_logits.argmax(1) == labels)
    y = torch.from_numpy(defer.astype(np.float32))
    net = GateNet(x.shape[1])
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in tqdm(range(epochs), desc="deferral gate", unit="epoch"):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 256):
            rows = order[start : start + 256]
            # the net outputs -defer logit: its negation is the defer logit
            loss = nn.functional.binary_cross_entropy_with_logits(-net(x[rows])[:, 0], y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net.eval()


def export_gate(net: GateNet, num_classes: int, path: Path) -> Path:
    """Write ``net`` as ONNX: input ``logits (N, C)``, output ``score (N, 1)``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (torch.zeros(2, num_classes),),
            str(path),
            input_names=["logits"],
            output_names=["score"],
            dynamic_axes={"logits": {0: "batch"}, "score": {0: "batch"}},
            dynamo=False,
        )
    return path


def fit_gate(repository: Path, pair: PairLogits, router: str = ROUTER, boundary: int = 0) -> Path:
    """Train a gate on ``pair`` (a stage's and the Teacher's logits on labelled rows, never the
    calibration split) and write it next to ``router`` for stage boundary ``boundary``;
    return its path."""
    log.info("training a gate on %d rows", len(pair.labels))
    net = train_gate(pair.student, pair.teacher, pair.labels)
    return export_gate(net, pair.student.shape[1], gate_path(repository, router, boundary))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the router's learned deferral gate.")
    parser.add_argument("--repo", type=Path, default=Path("model_repository"))
    data.add_labelled_argument(
        parser, "--data", "to train the gate on, not the calibration split", "fashion-mnist:train"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pair = run_pair(args.repo, STUDENT, *data.load_labelled(args.data))
    print(f"Wrote {fit_gate(args.repo, pair)}")


if __name__ == "__main__":
    main()
