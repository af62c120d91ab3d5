"""Student and Teacher angle regressors with energy-based outputs in two forms (paper eqs.
8-11), PyTorch, for training and export only.

A ResNet backbone (``ebjr.training.models``) turns ``images: (N, 1, 28, 28)`` into features
``f(x)``; three heads read them:

- (a) a **distributional head**: logits over ``BINS`` bins of ``BIN_WIDTH`` degrees covering
  ``[-MAX_ANGLE, MAX_ANGLE]``, so ``log integral exp S(x, y) dy`` is exact: ``logsumexp`` of the
  bin logits plus ``log BIN_WIDTH``;
- a **direct head**: one angle, the centre of the proposal below;
- (b) a **pair head** ``S(x, y)`` scoring (image, candidate angle) pairs, whose free energy
  is estimated by importance sampling (eq. 9): ``SAMPLES`` candidates ``y_m = direct(x) +
  PROPOSAL_STD * eps_m`` with ``eps`` fixed by ``PROPOSAL_SEED`` (the same for every request).

``RegressorExport`` is the ONNX graph: ``angle_logits (N, BINS)``, ``direct (N, 1)``,
``candidates (N, SAMPLES)`` and ``candidate_scores (N, SAMPLES)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ebjr.tasks.regression.scores import (
    BIN_WIDTH,
    BINS,
    MAX_ANGLE,
    PROPOSAL_SEED,
    PROPOSAL_STD,
    SAMPLES,
)
from ebjr.training.models import FASHION_MNIST_MEAN, FASHION_MNIST_STD, backbone

FOURIER = 4  # frequencies of the candidate angle's embedding in the pair head
ARCHITECTURES = {
    "regressor_student": dict(widths=(8, 16), blocks=1),
    "regressor_teacher": dict(widths=(32, 64, 128), blocks=2),
}
EPOCHS = {"regressor_student": 12, "regressor_teacher": 8}  # about 1 and 4 minutes


def proposal_noise() -> np.ndarray:
    """``(SAMPLES,) float32`` standard normal draws, fixed by ``PROPOSAL_SEED``."""
    return np.random.default_rng(PROPOSAL_SEED).standard_normal(SAMPLES).astype(np.float32)


def bin_centres() -> torch.Tensor:
    return -MAX_ANGLE + (torch.arange(BINS, dtype=torch.float32) + 0.5) * BIN_WIDTH


class Regressor(nn.Module):
    """``images -> (angle logits (N, BINS), direct angle (N,), features (N, C))``; ``pair(f,
    y)`` scores candidates ``y: (N, M)`` degrees -> ``(N, M)``."""

    def __init__(self, widths: tuple[int, ...], blocks: int) -> None:
        super().__init__()
        self.features = backbone(widths, blocks, stem_stride=2)
        c_in = widths[-1]
        self.bins = nn.Linear(c_in, BINS)
        self.direct = nn.Linear(c_in, 1)
        self.pair = nn.Sequential(
            nn.Linear(c_in + 1 + 2 * FOURIER, 64), nn.ReLU(inplace=True), nn.Linear(64, 1)
        )

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.features((images - FASHION_MNIST_MEAN) / FASHION_MNIST_STD)
        f = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.bins(f), self.direct(f)[:, 0] * MAX_ANGLE, f

    def pair_scores(self, features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        u = (y / MAX_ANGLE)[..., None]  # (N, M, 1)
        k = torch.arange(1, FOURIER + 1, dtype=torch.float32) * torch.pi / 2
        embedded = torch.cat([u, torch.sin(k * u), torch.cos(k * u)], dim=-1)
        f = features[:, None, :].expand(-1, y.shape[1], -1)
        return self.pair(torch.cat([f, embedded], dim=-1))[..., 0]


def build(name: str) -> Regressor:
    return Regressor(**ARCHITECTURES[name])


class RegressorExport(nn.Module):
    """The ONNX graph (module docstring)."""

    def __init__(self, model: Regressor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("noise", torch.from_numpy(proposal_noise()))

    def forward(self, images: torch.Tensor):
        logits, direct, features = self.model(images)
        candidates = direct[:, None] + PROPOSAL_STD * self.noise[None, :]
        return logits, direct[:, None], candidates, self.model.pair_scores(features, candidates)
