import json
import math
from dataclasses import replace

import numpy as np
import pytest

from ebjr.build.router_config import (
    RouterConfig,
    RouterSettings,
    parse_stages,
    published_parameters,
    shapes_parameter,
    stages_parameter,
)
from ebjr.core.calibration import calibrate
from ebjr.core.policy import GeneralPolicy, SpecializedPolicy
from ebjr.core.scores import energy, negative_entropy

BASE = {
    "student_model": "student",
    "student_input": "image",
    "student_output": "logits",
    "teacher_model": "teacher",
    "teacher_input": "image",
    "teacher_output": "logits",
    "default_threshold": "calibrated",
    "score": "calibrated",
}
CALIBRATION = replace(
    calibrate(np.array([-1.0, 0.0]), np.array([True, False]), np.array([True, True]), 1, 2),
    scores=("entropy",),
    parity_thresholds=(-0.25,),
)


def test_calibrated_settings_come_from_the_calibration_file():
    config = RouterConfig.from_parameters(BASE, CALIBRATION, 10)
    assert config.default_thresholds == (-0.25,)
    assert config.policies == (GeneralPolicy(negative_entropy),)
    # A config without a (measured) deadline still has one, never an unbounded wait.
    assert (config.settings.on_teacher_error, config.teacher_timeout_s) == ("fallback", 1.0)
    # Missing parameters take RouterSettings' defaults, the same ones the builder writes.
    assert config.student_in_process and config.metrics
    assert (config.settings.breaker_failures, config.settings.breaker_open_s) == (3, 5.0)


def test_settings_round_trip_through_parameters_and_missing_keys_take_one_default():
    settings = RouterSettings(
        default_threshold="-1.5",
        score="energy",
        temperature=2.0,
        student_execution="bls",
        metrics="off",
        teacher_timeout_ms=250,
        breaker_failures=0,
        breaker_open_s=1.5,
        shed_requests=48,
        shed_teacher_share=0.1,
        lone_request_threads=1,
    )
    assert RouterSettings.from_parameters(settings.parameters()) == settings
    assert RouterSettings.from_parameters({}) == RouterSettings()
    with pytest.raises(ValueError, match="teacher_timeout_ms must be a int"):
        RouterSettings.from_parameters({"teacher_timeout_ms": "soon"})


def test_explicit_settings_and_specialized_mode():
    p = {
        **BASE,
        "default_threshold": "-inf",
        "score": "energy",
        "teacher_timeout_ms": "250",
        "student_execution": "in_process",
        "mode": "specialized",
        "student_classes": "7,2",
        "other_index": "2",
        "on_teacher_error": "fail",
        "lone_request_threads": "3",
    }
    config = RouterConfig.from_parameters(p, None, 10)
    assert config.default_thresholds == (-math.inf,) and config.teacher_timeout_s == 0.25
    assert config.settings.lone_request_threads == 3
    assert config.student_in_process and config.settings.on_teacher_error == "fail"
    assert config.policies == (SpecializedPolicy(energy, (7, 2), 2, 10),)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({}, "calibration.json is missing"),
        ({"default_threshold": "1", "score": "margin"}, "unknown routing score"),
        ({"default_threshold": "x", "score": "energy"}, "default_threshold must be a number"),
        (
            {"default_threshold": "1", "score": "energy", "on_teacher_error": "retry"},
            "on_teacher_error",
        ),
        (
            {"default_threshold": "1", "score": "energy", "student_execution": "gpu"},
            "student_execution",
        ),
        (
            {"default_threshold": "1", "score": "energy", "teacher_timeout_ms": "-5"},
            "teacher_timeout_ms must be >= 0",
        ),
        (
            {"default_threshold": "1", "score": "energy", "breaker_failures": "-1"},
            "breaker_failures must be >= 0",
        ),
        (
            {"default_threshold": "1", "score": "energy", "breaker_open_s": "0"},
            "breaker_open_s must be > 0",
        ),
        (
            {"default_threshold": "1", "score": "energy", "shed_teacher_share": "2"},
            "shed_teacher_share must be in",
        ),
        (
            {"default_threshold": "1", "score": "energy", "lone_request_threads": "0"},
            "lone_request_threads must be >= 1",
        ),
        (
            {"default_threshold": "1", "score": "energy", "stage_batch_size": "0"},
            "1 <= stage_batch_size <= admission_window",
        ),
    ],
)
def test_bad_settings_are_clear_errors(change, message):
    with pytest.raises(ValueError, match=message):
        RouterConfig.from_parameters({**BASE, **change}, None, 10)


def test_a_config_whose_published_calibration_is_stale_is_refused():
    p = {**BASE, **published_parameters(CALIBRATION)}
    assert RouterConfig.from_parameters(p, CALIBRATION, 10).default_thresholds == (-0.25,)
    points = json.loads(p["operating_points"])
    assert points["parity"]["threshold"] == "-0.25" and p["served_score"] == "entropy"
    with pytest.raises(
        ValueError, match="served_score, served_default_threshold, operating_points disagree"
    ):
        RouterConfig.from_parameters(
            p, replace(CALIBRATION, scores=("softmax",), parity_thresholds=(1.0,)), 10
        )


def test_router_config_reads_middle_stages_and_one_score_per_boundary():
    p = {
        **BASE,
        "middle_stages": stages_parameter([("student_2", "image", "logits")]),
        "default_threshold": "1.5,-inf",
        "score": "energy,entropy",
    }
    config = RouterConfig.from_parameters(p, None, 10)
    assert [stage[0] for stage in config.stages] == ["student", "student_2", "teacher"]
    assert config.default_thresholds == (1.5, -math.inf)
    assert config.policies == (GeneralPolicy(energy), GeneralPolicy(negative_entropy))
    with pytest.raises(ValueError, match="default_threshold needs 1 or 2"):
        RouterConfig.from_parameters({**p, "default_threshold": "1,2,3"}, None, 10)
    with pytest.raises(ValueError, match="model:input:output"):
        parse_stages("student_2:image")


def test_router_config_reads_each_stages_input_shape_when_they_differ():
    p = {**BASE, "default_threshold": "1.5", "score": "energy"}
    assert RouterConfig.from_parameters(p, None, 10).stage_shapes is None
    shaped = {**p, "stage_shapes": shapes_parameter([(1, 14, 14), (1, 28, 28)])}
    assert shaped["stage_shapes"] == "1x14x14,1x28x28"
    assert RouterConfig.from_parameters(shaped, None, 10).stage_shapes == ((1, 14, 14), (1, 28, 28))
    with pytest.raises(ValueError, match="one shape per stage"):
        RouterConfig.from_parameters({**p, "stage_shapes": "1x14x14"}, None, 10)
    for bad in ("1x14", "1x14x0,1x28x28", "1xAx14,1x28x28"):
        with pytest.raises(ValueError, match="CxHxW"):
            RouterConfig.from_parameters({**p, "stage_shapes": bad}, None, 10)
