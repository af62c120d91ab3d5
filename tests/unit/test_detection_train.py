import numpy as np
import pytest
import torch

from ebjr.tasks.detection import models as dm
from ebjr.tasks.detection.train import box_loss, targets


def test_the_cell_holding_a_box_centre_is_its_positive_and_the_smaller_box_wins_a_cell():
    boxes = np.array([[10, 20, 40, 44], [12, 22, 36, 42]], dtype=np.float32)  # same centre cell
    classes, distances, positive = targets(boxes, np.array([3, 7]))
    ((i, j),) = np.argwhere(positive)
    assert (i, j) == (32 // dm.STRIDE, 24 // dm.STRIDE)
    assert classes[:, i, j].tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 0, 0]  # the smaller box's class
    cx, cy = (j + 0.5) * dm.STRIDE, (i + 0.5) * dm.STRIDE
    np.testing.assert_allclose(distances[:, i, j], [cx - 12, cy - 22, 36 - cx, 42 - cy])
    assert positive.sum() == 1 and classes.sum() == 1


def test_box_loss_is_lowest_when_the_bins_put_their_mass_on_the_true_distance():
    distance = torch.tensor([[10.0, 10.0, 10.0, 10.0]])  # 10 px: between bin centres 6 and 10
    centres = (torch.arange(dm.BINS) + 0.5) * dm.BIN_WIDTH
    right = -((centres - 10.0) ** 2)[None, None].expand(1, 4, dm.BINS) * 5
    wrong = -((centres - 40.0) ** 2)[None, None].expand(1, 4, dm.BINS) * 5
    assert box_loss(right, distance) < box_loss(wrong, distance)
    assert float(dm.expected_distances(right)[0, 0]) == pytest.approx(10.0, abs=0.5)
