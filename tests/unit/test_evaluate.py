import numpy as np
import pytest
from onnx_factory import builder_args, tiny_classifier

from ebjr.core.calibration import read_calibration
from ebjr.core.layout import DEFAULT_REPOSITORY, calibration_path
from ebjr.core.onnx_runner import OnnxClassifier
from ebjr.core.scores import get_score
from ebjr.tasks.classification.drift_study import SHARES
from ebjr.tasks.classification.evaluate import evaluate
from ebjr.tasks.classification.report import render
from ebjr.tasks.classification.repository import main as build
from ebjr.tasks.classification.risk_study import ALLOWANCE, TARGETS


def test_eval_runs_on_a_users_own_pair_and_npz_data(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("val", 300), ("test", 400)):
        np.savez(
            tmp_path / f"{name}.npz",
            images=rng.random((n, 1, 4, 4), dtype=np.float32),
            labels=rng.integers(0, 5, n),
        )
    student = tiny_classifier(tmp_path / "s.onnx", classes=5)
    teacher = tiny_classifier(tmp_path / "t.onnx", classes=5, side=4)
    build(builder_args(student, teacher, tmp_path / "repo", tmp_path / "val.npz"))
    result = evaluate(tmp_path / "repo", 2.0, str(tmp_path / "val.npz"), str(tmp_path / "test.npz"))
    text = render(result, tmp_path / "out")

    # Numbers recomputed here from the test data, not taken from the evaluation code.
    with np.load(tmp_path / "test.npz") as test:
        images, labels = test["images"], test["labels"]
    s_logits, t_logits = OnnxClassifier(student)(images), OnnxClassifier(teacher)(images)
    calibration = read_calibration(calibration_path(tmp_path / "repo"))
    scores = get_score(calibration.scores[0], calibration.temperature)(s_logits)
    to_teacher = scores < calibration.parity_thresholds[0]
    routed = np.where(to_teacher, t_logits.argmax(1), s_logits.argmax(1))
    assert result.student_accuracy == (s_logits.argmax(1) == labels).mean()
    assert result.teacher_accuracy == (t_logits.argmax(1) == labels).mean()
    assert result.served.teacher_fraction == to_teacher.mean()
    assert result.served.accuracy == (routed == labels).mean()
    assert result.oracle.teacher_fraction == (s_logits.argmax(1) != labels).mean()
    gap = (t_logits.argmax(1) == labels).mean() - (s_logits.argmax(1) == labels).mean()
    assert result.parity_oracle.teacher_fraction == pytest.approx(max(gap, 0.0))
    assert result.parity_oracle.accuracy == result.teacher_accuracy
    assert "(300 images)" in text and "(400 images)" in text
    assert f"| Student | {result.student_accuracy:.2%} |" in text
    assert f"| {result.served.accuracy:.2%} |" in text
    assert (tmp_path / "out" / "EVALUATION.md").read_text() == text
    assert (tmp_path / "out" / "accuracy_vs_cost.png").stat().st_size > 10_000
    assert "## The risk-controlled knob (`max_accuracy_drop`)" in text
    assert (tmp_path / "out" / "risk_control.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def default():
    return evaluate(DEFAULT_REPOSITORY)


def test_default_repository_meets_its_calibrated_promise_on_the_test_split(default):
    """Calibrated on validation only: on the test split the default threshold reaches the
    Teacher's accuracy within the parity rule's own noise, at about the calibrated Teacher
    share. That noise is measured on validation alone (the 90th percentile of the shortfall
    when the threshold is taken on one half and measured on the other: 0.48 pt on the
    default pair), so the bound comes from validation, never from the test split."""
    result = default
    assert abs(result.served.teacher_fraction - result.calibration.parity_teacher_fraction) < 0.03
    assert 0 < result.held_out["p90"] < 0.01
    assert result.served.accuracy >= result.teacher_accuracy - result.held_out["p90"]
    assert result.served.flops < result.teacher_flops


def test_the_certified_knob_keeps_its_promise_where_the_point_estimate_does_not(default):
    """The violation study on the default pair (issue 23's targets): over 200 random halves,
    ``max_accuracy_drop`` breaks its promise at most ``1 - confidence + 0.03`` of the time, and
    ``min_accuracy = Teacher - drop``, chosen at the edge, about half of the time."""
    study = {(v.drop, v.confidence): v for v in default.risk}
    for target in TARGETS:
        v = study[target]
        assert v.certified <= 1 - v.confidence + ALLOWANCE, v
        assert 0.3 < v.min_accuracy < 0.7, v
        assert v.certified_share > v.min_accuracy_share  # the guarantee's cost


def test_tracking_serves_the_asked_teacher_share_on_noisy_traffic(default):
    """The drift study (issue 23's target): on the sigma=0.2 stream the calibrated quantile
    sends far more than asked, the tracked one within 0.05 of it."""
    noisy = [d for d in default.drift if d.stream != "clean"]
    assert len(noisy) == len(SHARES)
    for d in noisy:
        assert d.met, d
        assert d.calibrated_share > d.asked + 0.2, d  # what tracking is for
    for d in default.drift:
        if d.stream == "clean":
            assert abs(d.tracked_share - d.asked) <= 0.05, d
