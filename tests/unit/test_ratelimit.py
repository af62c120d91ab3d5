"""Rate-limited messages (``ebjr.core.ratelimit``): one message per interval, with the count
of what was held back."""

import pytest

from ebjr.core import ratelimit
from ebjr.core.ratelimit import RateLimited


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    return now


def test_the_first_call_speaks_then_calls_within_the_interval_are_held_and_counted(clock):
    limited = RateLimited(interval_s=10.0)
    assert limited.take() == 0
    clock[0] += 4.0
    assert limited.take() is None
    clock[0] += 5.9
    assert limited.take() is None
    clock[0] += 0.1  # 10 s after the message
    assert limited.take() == 2  # the two held back since
    assert limited.take() is None


def test_a_quiet_period_starts_a_fresh_count(clock):
    limited = RateLimited(interval_s=1.0)
    assert limited.take() == 0
    clock[0] += 60.0
    assert limited.take() == 0
