"""Fixtures every test may use. The unit tests (``tests/unit``) need no server; the server
tests (``tests/server``, marked ``server``) share one real ``tritonserver``."""

from __future__ import annotations

import numpy as np
import pytest

from ebjr.training import data


@pytest.fixture(scope="session")
def test_images() -> tuple[np.ndarray, np.ndarray]:
    """The first 256 Fashion-MNIST test images and labels."""
    images, labels = data.load_split("test")
    return images[:256], labels[:256]
