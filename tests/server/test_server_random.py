"""The random-routing baseline (``mode: "random"``, ``ebjr.core.policy.RandomPolicy``) served
by the real router: a share of about ``t`` of the rows goes to the Teacher, each row gets its
model's own answer, and the same image always takes the same route."""

import numpy as np

from ebjr.ops.client import classify, infer

ROUTER = "router_random"


def direct(client, model, images):
    return infer(client, model, {"image": images}, ["logits"])["logits"]


def test_a_share_t_goes_to_the_teacher_and_every_row_is_its_models_own_answer(client, test_images):
    images = test_images[0]
    answers = [
        classify(client, images[i : i + 64], model=ROUTER, threshold="0.3")
        for i in range(0, 256, 64)
    ]
    routes = np.concatenate([a.routes for a in answers])
    logits = np.concatenate([a.logits for a in answers])
    scores = np.concatenate([a.scores for a in answers])
    assert abs((routes == "teacher").mean() - 0.3) < 0.1
    assert set(routes) == {"student", "teacher"}
    assert ((scores >= 0) & (scores <= 1)).all()
    np.testing.assert_array_equal(routes == "teacher", scores < np.float32(0.3))
    student = np.concatenate(
        [direct(client, "student", images[i : i + 64]) for i in range(0, 256, 64)]
    )
    teacher = np.concatenate(
        [direct(client, "teacher", images[i : i + 64]) for i in range(0, 256, 64)]
    )
    expected = np.where((routes == "teacher")[:, None], teacher, student)
    np.testing.assert_allclose(logits, expected, atol=1e-5)


def test_the_same_image_takes_the_same_route_in_any_batch(client, test_images):
    images = test_images[0][:32]
    together = classify(client, images, model=ROUTER, threshold="0.5")
    reversed_ = classify(client, images[::-1].copy(), model=ROUTER, threshold="0.5")
    np.testing.assert_array_equal(together.scores, reversed_.scores[::-1])
    np.testing.assert_array_equal(together.routes, reversed_.routes[::-1])
    assert set(classify(client, images, model=ROUTER, threshold="-inf").routes) == {"student"}
