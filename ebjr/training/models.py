"""Student and Teacher network definitions (PyTorch, used for training and export only).

Both are ResNets in the spirit of the paper's small/large pairs. They take
``images: (N, 1, 28, 28) float32`` in [0, 1] (normalisation is part of the network, so it is
inside the exported ONNX file) and return ``logits: (N, 10) float32``.
"""

from __future__ import annotations

import torch
from torch import nn

FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (projected when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def backbone(widths: tuple[int, ...], blocks: int, stem_stride: int = 1) -> nn.Sequential:
    """A 3x3 stem, then one stage per entry of ``widths`` (each after the first halves the
    resolution) of ``blocks`` BasicBlocks: ``(N, 1, H, W) -> (N, widths[-1], h, w)``."""
    layers: list[nn.Module] = [
        nn.Conv2d(1, widths[0], 3, stem_stride, 1, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(inplace=True),
    ]
    c_in = widths[0]
    for stage, width in enumerate(widths):
        for block in range(blocks):
            layers.append(BasicBlock(c_in, width, 2 if stage > 0 and block == 0 else 1))
            c_in = width
    return nn.Sequential(*layers)


class ResNet(nn.Module):
    """A small ResNet: a 3x3 stem, one stage per entry of ``widths`` (each after the first
    halves the resolution), ``blocks`` BasicBlocks per stage, global average pooling, a linear
    classifier."""

    def __init__(
        self, widths: tuple[int, ...], blocks: int, stem_stride: int = 1, num_classes: int = 10
    ) -> None:
        super().__init__()
        self.features = backbone(widths, blocks, stem_stride)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - FASHION_MNIST_MEAN) / FASHION_MNIST_STD
        x = self.features(x)
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Ensemble(nn.Module):
    """The mean of several classifiers' logits (members trained from different seeds: the
    classic accurate-but-slow model). ``images: (N, 1, H, W) -> (N, C)``."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.train(members[0].training)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(images) for member in self.members]).mean(0)


class FlipAverage(nn.Module):
    """A classifier with test-time augmentation: the mean of its logits on the image and on
    the image flipped left to right (twice the FLOPs). ``images: (N, 1, H, W) -> (N, C)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.train(model.training)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (self.model(images) + self.model(images.flip(3))) / 2


ARCHITECTURES = {
    "student": dict(widths=(8, 16), blocks=1, stem_stride=2),
    "student_wide": dict(widths=(16, 32), blocks=1, stem_stride=2),  # 4x the Student's FLOPs
    "student_mid": dict(widths=(32, 64), blocks=1, stem_stride=2),  # 13 MFLOPs
    "student_large": dict(widths=(32, 64, 128), blocks=2, stem_stride=2),  # 44 MFLOPs
    "teacher": dict(widths=(32, 64, 128), blocks=2, stem_stride=1),  # 161 MFLOPs
}


def build(name: str, num_classes: int = 10) -> ResNet:
    """Build the architecture called ``name`` (a key of ``ARCHITECTURES``)."""
    return ResNet(**ARCHITECTURES[name], num_classes=num_classes)
