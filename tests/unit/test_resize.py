"""Image rows resized to a stage's input size (``ebjr.core.resize``), without a server."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ebjr.core.resize import fit_to, resize_batch, weights


@pytest.mark.parametrize(
    "size, target",
    [((28, 28), (14, 14)), ((28, 28), (20, 17)), ((14, 14), (28, 28)), ((7, 5), (13, 3))],
)
def test_resizing_gives_pillows_bilinear_pixels_shrinking_or_growing(size, target):
    images = np.random.default_rng(0).random((3, 2, *size), dtype=np.float32)
    got = resize_batch(images, *target)
    assert got.shape == (3, 2, *target) and got.dtype == np.float32
    for row, channel in np.ndindex(3, 2):
        pillow = Image.fromarray(images[row, channel], "F").resize(
            target[::-1], Image.Resampling.BILINEAR
        )
        np.testing.assert_allclose(got[row, channel], np.asarray(pillow), atol=1e-6)


def test_halving_averages_every_pixel_a_constant_image_stays_constant():
    w = weights(28, 14)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)
    assert (w.sum(axis=0) > 0).all()  # no input pixel is skipped (a plain subsample would)
    flat = np.full((1, 1, 28, 28), 0.3, dtype=np.float32)
    np.testing.assert_allclose(resize_batch(flat, 14, 14), 0.3, rtol=1e-6)


def test_a_row_of_the_target_size_is_passed_through_and_channels_must_match():
    images = np.zeros((2, 1, 14, 14), dtype=np.float32)
    assert fit_to(images, (1, 14, 14)) is images
    assert fit_to(np.zeros((2, 1, 28, 28), dtype=np.float32), (1, 14, 14)).shape == (2, 1, 14, 14)
    with pytest.raises(ValueError, match="cannot be resized"):
        fit_to(images, (3, 14, 14))


def test_the_pixels_do_not_depend_on_the_blas_kernel_the_cpu_gets():
    """Resizing gives the same bits under OpenBLAS's SSE3, AVX and AVX2 kernels (a matrix
    product gave different bits under each, and under this machine's AVX-512 one), so a
    low-resolution Student retrains bit for bit on another machine."""
    script = (
        "import hashlib, numpy as np; from ebjr.core.resize import resize_batch; "
        "x = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32); "
        "print(hashlib.sha1(resize_batch(x, 14, 14).tobytes()).hexdigest(), "
        "hashlib.sha1(resize_batch(x, 20, 40).tobytes()).hexdigest())"
    )
    found = {
        core: subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "OPENBLAS_CORETYPE": core},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for core in ("Prescott", "Sandybridge", "Haswell")  # every x86-64 CPU with AVX2 runs them
    }
    assert len(set(found.values())) == 1, found
