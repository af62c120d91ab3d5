"""The Teacher capacity guard and the load shedder on the real server: a flood of rows that want
the Teacher (noisy images, asked at a 90% Teacher share) is held at the configured Teacher
share, and every answer stays valid; an overloaded router sends only its share on."""

from __future__ import annotations

import numpy as np

from ebjr.ops.client import classify, connect, infer
from ebjr.training import data

GUARDED = "router_budget"  # teacher_budget_share 0.3 (tests/conftest.py)
CAP = 0.3
# The Student keeps about a third of these noisy images at its default threshold; asked for
# a 90% Teacher share (of clean validation images), nearly all of them want the Teacher.
FLOOD = {"teacher_fraction": "0.9"}


def noisy_images(n: int = 640, sigma: float = 0.2) -> np.ndarray:
    images = data.load_split("test")[0][:n]
    noise = np.random.default_rng(0).normal(0, sigma, images.shape).astype(np.float32)
    return np.clip(images + noise, 0, 1)


def test_guard_holds_the_teacher_share_at_its_cap_on_noisy_traffic(server):
    client = connect(server.grpc_url, "grpc")
    images = noisy_images()
    batches = [images[i : i + 64] for i in range(0, len(images), 64)]
    unguarded = np.concatenate([classify(client, b, **FLOOD).routes for b in batches])
    assert (unguarded == "teacher").mean() > 0.8  # the flood the guard is for

    answers = [classify(client, b, model=GUARDED, **FLOOD) for b in batches]
    routes = np.concatenate([a.routes for a in answers])
    assert (routes == "teacher").mean() <= CAP + 1e-9
    assert (routes == "student_budget").mean() > 0.4
    assert set(routes) <= {"student", "teacher", "student_budget"}

    # every answer is still a model's own: the Teacher's where it answered, else the Student's
    for batch, answer in zip(batches, answers, strict=True):
        student = infer(client, "student", {"image": batch}, ["logits"])["logits"]
        teacher = infer(client, "teacher", {"image": batch}, ["logits"])["logits"]
        to_teacher = answer.routes == "teacher"
        np.testing.assert_allclose(answer.logits[to_teacher], teacher[to_teacher], atol=1e-5)
        np.testing.assert_allclose(answer.logits[~to_teacher], student[~to_teacher], atol=1e-5)
        # held back rows are ones that wanted the Teacher, and those sent have lower scores
        held = answer.routes == "student_budget"
        assert (answer.scores[held] < answer.thresholds[held]).all()
        if held.any() and to_teacher.any():
            assert answer.scores[to_teacher].max() <= answer.scores[held].min()


def test_the_load_shedder_keeps_all_but_its_share_on_the_student_lowest_scores_first(server):
    """``router_shed`` counts every execution as overloaded (``shed_requests: 1``): of a batch
    of 8 rows that all want the Teacher, 2 (25%) reach it, the least familiar ones, and the
    other 6 keep the Student's answer, marked ``student_overload``."""
    client = connect(server.grpc_url, "grpc")
    batch = data.load_split("test")[0][:8]
    answer = classify(client, batch, model="router_shed", threshold="inf")
    shed = answer.routes == "student_overload"
    to_teacher = answer.routes == "teacher"
    assert (to_teacher.sum(), shed.sum()) == (2, 6)
    assert answer.scores[to_teacher].max() <= answer.scores[shed].min()
    student = infer(client, "student", {"image": batch}, ["logits"])["logits"]
    teacher = infer(client, "teacher", {"image": batch}, ["logits"])["logits"]
    np.testing.assert_allclose(answer.logits[to_teacher], teacher[to_teacher], atol=1e-5)
    np.testing.assert_allclose(answer.logits[shed], student[shed], atol=1e-5)
