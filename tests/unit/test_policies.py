"""The routing-policy registry (``ebjr.core.policy.POLICIES``) and the random baseline."""

import json

import numpy as np
import pytest
from onnx_factory import builder_args, labelled_npz, tiny_classifier

from ebjr.build import model_config as mc
from ebjr.build.router_config import RouterConfig
from ebjr.core.calibration import read_calibration
from ebjr.core.policy import (
    POLICIES,
    GeneralPolicy,
    RandomPolicy,
    SpecializedPolicy,
    policy_from_parameters,
)
from ebjr.core.scores import energy
from ebjr.tasks.classification.repository import main

EXAMPLES = {
    "general": GeneralPolicy(energy),
    "random": RandomPolicy(energy),
    "specialized": SpecializedPolicy(energy, (7, 2), 2, 10),
}


def test_every_registered_policy_has_an_example_here():
    assert set(POLICIES) == set(EXAMPLES)


@pytest.mark.parametrize("mode", sorted(EXAMPLES))
def test_each_policy_reads_back_from_the_parameters_it_writes(mode):
    policy = EXAMPLES[mode]
    assert policy_from_parameters(policy.to_parameters(), energy, 10) == policy


def test_plain_ebjr_writes_no_mode_so_existing_configs_read_as_before():
    assert GeneralPolicy(energy).to_parameters() == {}
    assert policy_from_parameters({}, energy, 10) == GeneralPolicy(energy)


def test_an_unknown_mode_or_a_missing_setting_is_a_clear_error():
    with pytest.raises(ValueError, match="general, random, specialized, not 'oracle'"):
        policy_from_parameters({"mode": "oracle"}, energy, 10)
    with pytest.raises(ValueError, match="needs student_classes and other_index"):
        policy_from_parameters({"mode": "specialized"}, energy, 10)


def test_the_random_baseline_sends_a_share_t_to_the_teacher_blind_to_the_students_confidence():
    logits = np.random.default_rng(0).normal(size=(20000, 10)).astype(np.float32) * 3
    policy = RandomPolicy(energy)
    scores = policy.scores(logits)
    assert scores.dtype == np.float32 and 0 <= scores.min() and scores.max() <= 1
    for t in (0.1, 0.5, 0.9):
        _, keep, answers = policy.decide(logits, np.full(len(logits), t, np.float32))
        assert abs((~keep).mean() - t) < 0.015
        np.testing.assert_array_equal(answers, logits)  # kept rows answer with the Student's
    assert abs(np.corrcoef(scores, energy(logits))[0, 1]) < 0.03


def test_the_random_baseline_routes_the_same_row_the_same_way_whatever_its_batch():
    logits = np.random.default_rng(1).normal(size=(64, 10)).astype(np.float32)
    policy = RandomPolicy(energy)
    alone = np.concatenate([policy.scores(logits[i : i + 1]) for i in range(64)])
    np.testing.assert_array_equal(policy.scores(logits), alone)
    np.testing.assert_array_equal(policy.scores(logits[::-1]), alone[::-1])


def test_the_builder_serves_any_registered_policy_by_name_calibrated_under_it(tmp_path):
    model = tiny_classifier(tmp_path / "m.onnx", classes=5)
    val = labelled_npz(tmp_path / "val.npz", 400)
    out = tmp_path / "repo"
    main([*builder_args(model, model, out, val), "--policy", "random"])
    parameters = mc.parameters(mc.read(out / "ebjr_router" / "config.pbtxt"))
    assert parameters["mode"] == "random"
    calibration = read_calibration(out / "ebjr_router" / "calibration.json")
    config = RouterConfig.from_parameters(parameters, calibration, 5)
    assert isinstance(config.policies[0], RandomPolicy)
    # calibrated under the random policy: every threshold of its table is a score in [0, 1]
    table = json.loads((out / "ebjr_router" / "calibration.json").read_text())["table"]
    finite = [t for (t,) in table["thresholds"] if isinstance(t, float)]
    assert len(finite) > 10 and all(0 <= t <= 1 for t in finite)


def test_the_builder_refuses_a_policy_that_needs_settings_it_was_not_given(tmp_path, capsys):
    model = tiny_classifier(tmp_path / "m.onnx", classes=5)
    with pytest.raises(SystemExit):
        main(
            [
                "--student",
                str(model),
                "--teacher",
                str(model),
                "--out",
                str(tmp_path / "r"),
                "--default-threshold",
                "0",
                "--policy",
                "specialized",
            ]
        )
    assert "needs student_classes" in capsys.readouterr().err
