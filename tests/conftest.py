"""Fixtures every test may use. The unit tests (``tests/unit``) need no server; the server
tests (``tests/server``, marked ``server``) share one real ``tritonserver``."""

from __future__ import annotations

import os
import secrets

import numpy as np
import pytest

from ebjr.ops import restricted, shm
from ebjr.training import data


@pytest.fixture(scope="session", autouse=True)
def admin_token() -> str:
    """This session's admin token (``ebjr.ops.restricted``): every server the tests start,
    and every client call to a restricted endpoint, reads it from the environment."""
    token = secrets.token_urlsafe(24)
    os.environ[restricted.TOKEN_ENV] = token
    return token


@pytest.fixture(scope="session", autouse=True)
def dev_shm_left_as_found():
    """Fail the run if it leaves Python-backend shared memory behind in ``/dev/shm``: any
    region no live process maps that was not there (or not orphaned) when it began."""
    before = shm.orphans()
    yield
    left = shm.orphans() - before
    if left:
        pytest.fail(f"the tests left {len(left)} orphaned regions in /dev/shm: {sorted(left)[:3]}")


@pytest.fixture(scope="session")
def test_images() -> tuple[np.ndarray, np.ndarray]:
    """The first 256 Fashion-MNIST test images and labels."""
    images, labels = data.load_split("test")
    return images[:256], labels[:256]
