"""The regression task's data, and both energy forms (eq. 10) against independent numerical
integrals."""

import numpy as np
import pytest
from scipy import integrate

from ebjr.tasks.regression import energy as rs
from ebjr.tasks.regression.data import SEEDS, make_rotated, rotate
from ebjr.tasks.regression.scores import MAX_ANGLE
from ebjr.training.data import load_split


def test_rotated_images_are_reproducible_and_come_from_their_own_split():
    first, again = make_rotated("val", 50), make_rotated("val", 50)
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.angles, again.angles)
    assert np.all(np.abs(first.angles) <= MAX_ANGLE) and first.angles.std() > 20
    source = load_split("val")[0]
    for i in (0, 17):
        expected = rotate(source[first.sources[i], 0], float(first.angles[i]))
        np.testing.assert_allclose(first.images[i, 0], expected, atol=1e-6)
    assert len(set(SEEDS.values())) == 3  # every split draws its own angles
    assert not np.allclose(make_rotated("test", 50).angles, first.angles)


def test_binned_energy_is_the_integral_of_the_piecewise_constant_density():
    rng = np.random.default_rng(0)
    logits, width, low = rng.normal(size=(1, 7)), 2.5, -8.75
    integral = sum(
        integrate.quad(lambda y, k=k: np.exp(logits[0, k]), low + k * width, low + (k + 1) * width)[
            0
        ]
        for k in range(7)
    )
    assert rs.binned_energy(logits, width)[0] == pytest.approx(np.log(integral), rel=1e-6)


def test_sampled_energy_estimates_the_integral_of_the_pair_head():
    def s(y):  # a pair head whose exp is an unnormalised normal density: known integral
        return 1.5 - (y - 3.0) ** 2 / (2 * 2.0**2)

    exact = np.log(integrate.quad(lambda y: np.exp(s(y)), -60, 60)[0])
    centre, std = np.array([2.0]), 4.0
    candidates = centre[:, None] + std * np.random.default_rng(0).standard_normal((1, 20_000))
    got = rs.sampled_energy(s(candidates), candidates, centre, std)
    assert got[0] == pytest.approx(exact, abs=0.01)
    assert rs.sampled_mean(s(candidates), candidates, centre, std)[0] == pytest.approx(
        3.0, abs=0.05
    )


def test_binned_predictions_and_baselines():
    centres = rs.bin_centres(4, -2.0, 1.0)  # -1.5, -0.5, 0.5, 1.5
    logits = np.log(np.array([[0.1, 0.2, 0.6, 0.1]]))
    mean = float(np.dot([0.1, 0.2, 0.6, 0.1], centres))
    assert rs.binned_mean(logits, centres)[0] == pytest.approx(mean, rel=1e-6)
    assert rs.binned_mode(logits, centres)[0] == 0.5
    variance = float(np.dot([0.1, 0.2, 0.6, 0.1], (centres - mean) ** 2))
    assert rs.negative_variance(logits, centres)[0] == pytest.approx(-variance, rel=1e-6)
    entropy = -sum(p * np.log(p) for p in (0.1, 0.2, 0.6, 0.1))
    assert rs.negative_entropy(logits)[0] == pytest.approx(-entropy, rel=1e-6)


def test_the_binned_loss_is_lowest_when_the_mass_sits_on_the_true_angle():
    import torch

    from ebjr.tasks.regression.scores import BIN_WIDTH, BINS
    from ebjr.tasks.regression.train import binned_loss

    angle = torch.tensor([12.3])
    centres = -MAX_ANGLE + (torch.arange(BINS) + 0.5) * BIN_WIDTH
    on_target = -((centres - angle) ** 2)[None] / 4
    elsewhere = -((centres + 30.0) ** 2)[None] / 4
    assert binned_loss(on_target, angle) < binned_loss(elsewhere, angle)
