"""Train the regression Student and Teacher (``ebjr.tasks.regression.models``) on rotated
Fashion-MNIST (``ebjr.tasks.regression.data``), export them to ONNX and measure them (Torch for
training only).

    python -m ebjr.tasks.regression.train [--out regression_models]      # part of `make models`

Losses, summed: (a) cross-entropy of the bin logits against the true angle spread over its two
nearest bins; the direct head's smooth L1; (b) the pair head's importance-sampling
maximum-likelihood loss (Gustafsson et al. 2020, ML-IS): ``-S(x, y) + log (1/M) sum_m
exp(S(x, y_m)) / q(y_m)`` with ``y_m`` drawn around the true angle from a mixture of normals.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ebjr.build.onnx_info import count_flops
from ebjr.tasks.regression import models as rm
from ebjr.tasks.regression.data import Rotated, make_rotated
from ebjr.tasks.regression.repository import outputs
from ebjr.tasks.regression.scores import MAX_ANGLE, predictions
from ebjr.training.fit import fit
from ebjr.training.onnx_export import export_checked

SEED = 0
TRAINING_STDS = (1.0, 4.0, 16.0)  # degrees: the ML-IS training proposal's mixture
TRAINING_SAMPLES = 16
OUTPUTS = ["angle_logits", "direct", "candidates", "candidate_scores"]
log = logging.getLogger(__name__)


def binned_loss(logits: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the angle's two nearest bins, weighted by distance."""
    u = ((angles + MAX_ANGLE) / rm.BIN_WIDTH - 0.5).clamp(0, rm.BINS - 1 - 1e-4)
    left = u.floor().long()
    right_weight = u - left
    log_p = torch.log_softmax(logits, dim=1)
    return -(
        (1 - right_weight) * log_p.gather(1, left[:, None])[:, 0]
        + right_weight * log_p.gather(1, (left + 1)[:, None])[:, 0]
    ).mean()


def pair_loss(
    model: rm.Regressor, features: torch.Tensor, angles: torch.Tensor, generator
) -> torch.Tensor:
    """ML-IS: ``-S(x, y) + log (1/M) sum_m exp(S(x, y_m)) / q(y_m)``, ``y_m ~ q(.|y)``."""
    n, m = len(angles), TRAINING_SAMPLES
    stds = torch.tensor(TRAINING_STDS)
    which = torch.randint(len(stds), (n, m), generator=generator)
    samples = angles[:, None] + stds[which] * torch.randn(n, m, generator=generator)
    z = (samples[..., None] - angles[:, None, None]) / stds  # (N, M, K)
    log_q = torch.logsumexp(
        -0.5 * z**2 - torch.log(stds * math.sqrt(2 * math.pi)), dim=-1
    ) - math.log(len(stds))
    scores = model.pair_scores(features, samples)
    true = model.pair_scores(features, angles[:, None])[:, 0]
    return (torch.logsumexp(scores - log_q, dim=1) - math.log(m) - true).mean()


def train(name: str, data: Rotated, epochs: int, batch_size: int = 128, lr: float = 3e-3):
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    model = rm.build(name)
    images, angles = torch.from_numpy(data.images), torch.from_numpy(data.angles)

    def loss(rows: torch.Tensor) -> torch.Tensor:
        logits, direct, features = model(images[rows])
        y = angles[rows]
        return (
            binned_loss(logits, y)
            + nn.functional.smooth_l1_loss(direct / MAX_ANGLE, y / MAX_ANGLE, beta=0.02) * 10
            + pair_loss(model, features, y, generator)
        )

    return fit(model, len(images), epochs, batch_size, lr, loss, generator, name)


def export(model: rm.Regressor, path: Path, example: np.ndarray) -> None:
    """ONNX with a dynamic batch axis, checked against Torch."""
    export_checked(rm.RegressorExport(model).eval(), path, example, OUTPUTS, atol=1e-3)


def regressor_metrics(path: Path, name: str, epochs: int, seconds: float, val: Rotated) -> dict:
    """What ``metrics.json`` records of one trained regressor: validation MAE (degrees) of
    every prediction form, FLOPs per image."""
    found = outputs(path, val.images)
    return {
        "architecture": rm.ARCHITECTURES[name],
        "epochs": epochs,
        "train_seconds": round(seconds, 1),
        "flops": count_flops(onnx.load(str(path))),
        "val_mae": {
            form: float(np.abs(predict(found) - val.angles).mean())
            for form, predict in predictions().items()
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("regression_models"))
    parser.add_argument("--epochs", type=int, help="for every regressor (default: EPOCHS)")
    parser.add_argument("--images", type=int, help="training images (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    train_data, val = make_rotated("train", args.images), make_rotated("val")
    metrics = {}
    for name in rm.ARCHITECTURES:
        start, epochs = time.perf_counter(), args.epochs or rm.EPOCHS[name]
        model = train(name, train_data, epochs)
        path = args.out / f"{name}.onnx"
        export(model, path, val.images[:8])
        metrics[name] = regressor_metrics(path, name, epochs, time.perf_counter() - start, val)
        print(json.dumps({name: metrics[name]}))
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


if __name__ == "__main__":
    main()
