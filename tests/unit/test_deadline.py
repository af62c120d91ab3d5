import pytest

from ebjr.core.deadline import CEILING, MULTIPLE, WINDOW, StageDeadline


def test_a_stage_as_fast_as_the_build_machine_keeps_its_configured_deadline():
    deadline = StageDeadline(0.4)
    for _ in range(WINDOW):
        deadline.answered(0.05)  # 4 x 50 ms is under the 400 ms built in
    assert deadline.seconds == 0.4


def test_a_slower_serving_machine_raises_the_deadline_to_the_multiple_of_its_median_call():
    deadline = StageDeadline(0.4)
    for seconds in [0.2] * 20 + [0.9] * 3:  # a few slow calls move the median not at all
        deadline.answered(seconds)
    assert deadline.seconds == pytest.approx(MULTIPLE * 0.2)


def test_the_deadline_follows_the_recent_calls_only_and_never_passes_its_ceiling():
    deadline = StageDeadline(0.1)
    for _ in range(WINDOW):
        deadline.answered(10.0)
    assert deadline.seconds == pytest.approx(CEILING * 0.1)
    for _ in range(WINDOW // 2 + 1):  # the stage is fast again: the old calls age out
        deadline.answered(0.001)
    assert deadline.seconds == 0.1


def test_no_deadline_stays_none_and_a_negative_one_is_refused():
    deadline = StageDeadline(0.0)
    deadline.answered(5.0)
    assert deadline.seconds == 0.0
    with pytest.raises(ValueError, match=">= 0"):
        StageDeadline(-1.0)
