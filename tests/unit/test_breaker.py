"""The circuit breaker's state machine, on a fake clock."""

import pytest

from ebjr.core.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_it_opens_after_the_consecutive_failures_and_refuses_at_once():
    breaker = CircuitBreaker(failures=3, open_s=5.0, clock=Clock())
    assert breaker.failed() is None and breaker.failed() is None
    assert breaker.allow() == (True, None)  # two failures: still closed
    assert breaker.failed() == OPEN and breaker.state == OPEN and breaker.opens == 1
    assert breaker.allow() == (False, None)


def test_a_success_ends_the_streak():
    breaker = CircuitBreaker(failures=2, clock=Clock())
    breaker.failed()
    assert breaker.succeeded() is None  # it was closed: no change
    assert breaker.failed() is None and breaker.state == CLOSED


def test_after_open_s_one_probe_goes_and_its_answer_closes_the_breaker():
    clock = Clock()
    breaker = CircuitBreaker(failures=1, open_s=5.0, clock=clock)
    breaker.failed()
    clock.now = 4.9
    assert breaker.allow() == (False, None)
    clock.now = 5.0
    assert breaker.allow() == (True, HALF_OPEN)
    assert breaker.allow() == (False, None)  # only one probe at a time
    assert breaker.succeeded() == CLOSED
    assert breaker.allow() == (True, None) and breaker.opens == 1


def test_a_failed_probe_opens_it_for_another_open_s():
    clock = Clock()
    breaker = CircuitBreaker(failures=3, open_s=5.0, clock=clock)
    for _ in range(3):
        breaker.failed()
    clock.now = 6.0
    assert breaker.allow() == (True, HALF_OPEN)
    assert breaker.failed() == OPEN and breaker.opens == 2  # one failure is enough
    clock.now = 10.9
    assert breaker.allow() == (False, None)
    clock.now = 11.0
    assert breaker.allow() == (True, HALF_OPEN)


def test_a_late_failure_while_open_changes_nothing():
    breaker = CircuitBreaker(failures=1, clock=Clock())
    assert breaker.failed() == OPEN
    assert breaker.failed() is None and breaker.opens == 1


@pytest.mark.parametrize("kwargs", [{"failures": 0}, {"open_s": 0.0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        CircuitBreaker(**kwargs)
