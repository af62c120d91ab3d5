"""The three-stage router (Student -> larger Student -> Teacher) on the real server: each row
equals the answer of the stage its thresholds dictate, and each later stage runs once per batch
on only the rows the stages before it did not keep."""

from __future__ import annotations

import numpy as np
import pytest
from server_stats import settled_stage_counts
from tritonclient.utils import InferenceServerException

from ebjr.bench.bench_repository import THREE_STAGE, THREE_STAGE_MODELS
from ebjr.core.calibration import Calibration, read_calibration
from ebjr.core.gate import routing_score
from ebjr.core.layout import STUDENT, calibration_path, middle_stage
from ebjr.core.scores import ScoreContext
from ebjr.ops.client import classify, infer

ROUTER = THREE_STAGE
STAGES = (THREE_STAGE_MODELS[STUDENT], THREE_STAGE_MODELS[middle_stage(1)], "teacher")


@pytest.fixture(scope="module")
def calibration(server) -> Calibration:
    return read_calibration(calibration_path(server.model_repository, ROUTER))


def stage_outputs(client, images, calibration, server):
    """Each stage's own logits, and each boundary's score as the router computes it."""
    logits = [infer(client, m, {"image": images}, ["logits"])["logits"] for m in STAGES]
    router_dir = server.model_repository / ROUTER
    scores = [
        routing_score(name, ScoreContext(1.0, router_dir, k))(logits[k])
        for k, name in enumerate(calibration.scores)
    ]
    return logits, scores


def assert_three_stage_rows(answer, logits, scores, t1, t2):
    first = scores[0] >= np.float32(t1)
    second = ~first & (scores[1] >= np.float32(t2))
    last = ~first & ~second
    expected = np.where(first, "student", np.where(second, "middle", "teacher"))
    assert answer.routes.tolist() == expected.tolist()
    for rows, stage in ((first, 0), (second, 1), (last, 2)):
        np.testing.assert_allclose(answer.logits[rows], logits[stage][rows], atol=1e-5)
    np.testing.assert_allclose(
        answer.scores, np.where(first, scores[0], scores[1]), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(answer.thresholds, np.tile(np.float32([t1, t2]), (len(first), 1)))


def test_rows_equal_the_stage_their_thresholds_dictate(client, server, test_images, calibration):
    images = test_images[0][:64]
    logits, scores = stage_outputs(client, images, calibration, server)
    t1, t2 = float(np.median(scores[0])), float(np.median(scores[1]))
    answer = classify(client, images, model=ROUTER, threshold=f"{t1!r},{t2!r}")
    assert {"student", "middle", "teacher"} <= set(answer.routes)  # every stage exercised
    assert_three_stage_rows(answer, logits, scores, t1, t2)


def test_calibrated_default_min_accuracy_and_max_accuracy_drop_give_threshold_pairs(
    client, server, test_images, calibration
):
    images = test_images[0][:32]
    logits, scores = stage_outputs(client, images, calibration, server)
    assert_three_stage_rows(
        classify(client, images, model=ROUTER), logits, scores, *calibration.parity_thresholds
    )
    target = float(calibration.table.accuracy[len(calibration.table.accuracy) // 2])
    answer = classify(client, images, model=ROUTER, min_accuracy=str(target))
    assert_three_stage_rows(
        answer, logits, scores, *calibration.thresholds_for("min_accuracy", target)
    )
    certified = classify(client, images, model=ROUTER, max_accuracy_drop="0.01")
    pair = calibration.certified_thresholds(0.01, 0.9)
    assert calibration.risk.procedure.startswith("split fixed sequence")
    assert_three_stage_rows(certified, logits, scores, *pair)


def test_each_later_stage_runs_once_on_only_the_rows_not_kept(
    client, server, test_images, calibration
):
    images = test_images[0][:64]
    _, scores = stage_outputs(client, images, calibration, server)
    t1, t2 = float(np.median(scores[0])), float(np.quantile(scores[1], 0.7))
    before = [settled_stage_counts(server, ROUTER, stage) for stage in (1, 2)]
    answer = classify(client, images, model=ROUTER, threshold=f"{t1!r},{t2!r}")
    after = [settled_stage_counts(server, ROUTER, stage) for stage in (1, 2)]
    reached = [(answer.routes != "student").sum(), (answer.routes == "teacher").sum()]
    for stage in (0, 1):
        assert after[stage][0] - before[stage][0] == reached[stage]  # rows it ran on
        assert after[stage][1] - before[stage][1] == 1  # one call for the batch


@pytest.mark.parametrize("threshold", ["1.0", "1,2,3", "1,abc"])
def test_a_threshold_per_boundary_is_required(client, test_images, threshold):
    with pytest.raises(InferenceServerException, match="threshold"):
        classify(client, test_images[0][:2], model=ROUTER, threshold=threshold)
    assert classify(client, test_images[0][:2], model=ROUTER).routes.shape == (2,)
