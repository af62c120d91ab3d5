"""Anchor-free one-stage detectors for the Fashion-MNIST scenes (``ebjr.tasks.detection.data``),
PyTorch, for training and export only.

A small ResNet backbone brings ``images: (N, 1, 96, 96)`` to a ``GRID`` x ``GRID`` feature map
(stride ``STRIDE``). At every location a classification head gives ``C`` class logits (a box
centred in that cell, per class) and a **distributional box head** gives, for each of the four
distances from the cell centre to the box sides (left, top, right, bottom), logits over ``BINS``
bins of ``BIN_WIDTH`` pixels (as in Generalized Focal Loss / DFL heads). The free energy of the
box regressor is then exact: ``log integral exp S(y) dy = logsumexp(bin logits) + log(width)``.

``DetectorExport`` is what goes to ONNX: fixed-size outputs per image, the ``TOP_K`` peak
locations (a location whose best class score is the maximum of its 3x3 neighbourhood, so no
NMS is needed): ``boxes (N, K, 4)`` xyxy pixels, ``scores (N, K)``, ``class_logits (N, K, C)``,
``box_logits (N, K, 4, BINS)`` and ``valid (N, K)`` (score at least ``MIN_SCORE``).
"""

from __future__ import annotations

import torch
from torch import nn

from ebjr.tasks.detection.data import CANVAS
from ebjr.training.models import FASHION_MNIST_MEAN, FASHION_MNIST_STD, backbone

STRIDE = 8
GRID = CANVAS // STRIDE
BINS = 16
BIN_WIDTH = 4.0  # pixels: distances 0-64 px, enough for 40-pixel items from any cell of theirs
TOP_K = 10
MIN_SCORE = 0.05
ARCHITECTURES = {
    "detector_student": dict(widths=(16, 32, 48), blocks=1),
    "detector_teacher": dict(widths=(32, 64, 128), blocks=2),
}
EPOCHS = {"detector_student": 8, "detector_teacher": 6}  # about 3 and 14 minutes on 2 cores


class Detector(nn.Module):
    """``images (N, 1, 96, 96) -> (class logits (N, C, G, G), box logits (N, 4, BINS, G, G))``."""

    def __init__(self, widths: tuple[int, ...], blocks: int, num_classes: int = 10) -> None:
        super().__init__()
        self.features = backbone(widths, blocks, stem_stride=2)
        c_in = widths[-1]
        self.head = nn.Sequential(nn.Conv2d(c_in, c_in, 3, 1, 1), nn.ReLU(inplace=True))
        self.classes = nn.Conv2d(c_in, num_classes, 1)
        self.box = nn.Conv2d(c_in, 4 * BINS, 1)
        nn.init.constant_(self.classes.bias, -4.6)  # a prior of 1% per class (focal loss)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.head(self.features((images - FASHION_MNIST_MEAN) / FASHION_MNIST_STD))
        box = self.box(x)
        return self.classes(x), box.unflatten(1, (4, BINS))


def build(name: str) -> Detector:
    return Detector(**ARCHITECTURES[name])


def cell_centres() -> torch.Tensor:
    """``(G*G, 2)`` pixel centres (x, y) of the grid cells, row-major."""
    coords = (torch.arange(GRID, dtype=torch.float32) + 0.5) * STRIDE
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


def expected_distances(box_logits: torch.Tensor) -> torch.Tensor:
    """``(..., 4, BINS)`` logits -> ``(..., 4)`` expected distances in pixels (bin centres)."""
    centres = (torch.arange(BINS, dtype=torch.float32) + 0.5) * BIN_WIDTH
    return (torch.softmax(box_logits, dim=-1) * centres).sum(-1)


class DetectorExport(nn.Module):
    """The ONNX graph: ``Detector`` plus peak selection and decoding (module docstring)."""

    def __init__(self, detector: Detector) -> None:
        super().__init__()
        self.detector = detector
        self.register_buffer("centres", cell_centres())

    def forward(self, images: torch.Tensor):
        class_logits, box_logits = self.detector(images)
        c = class_logits.shape[1]
        probs = torch.sigmoid(class_logits)
        peaks = probs == nn.functional.max_pool2d(probs, 3, 1, 1)
        best = torch.where(peaks, probs, torch.zeros_like(probs)).amax(dim=1).flatten(1)
        scores, cells = best.topk(TOP_K, dim=1)  # (N, K)
        flat_classes = class_logits.flatten(2).transpose(1, 2)  # (N, G*G, C)
        flat_boxes = box_logits.flatten(3).permute(0, 3, 1, 2)  # (N, G*G, 4, BINS)
        classes = torch.gather(flat_classes, 1, cells[..., None].expand(-1, -1, c))
        bins = torch.gather(
            flat_boxes, 1, cells[..., None, None].expand(-1, -1, 4, BINS)
        )  # (N, K, 4, BINS)
        d = expected_distances(bins)
        centre = self.centres[cells]  # (N, K, 2)
        boxes = torch.cat([centre - d[..., :2], centre + d[..., 2:]], dim=-1).clamp(0, CANVAS)
        return boxes, scores, classes, bins, scores >= MIN_SCORE
