"""A router whose stages take different resolutions (the paper's low-resolution Student, Fig.
5-left), against the real server over HTTP and gRPC: every row is its own stage model's
answer on the image resized to that model's input (``ebjr.core.resize``), pixels or PNG in."""

from __future__ import annotations

import numpy as np
from conftest import MIXED, MIXED_STUDENT

from ebjr.core.preprocess import encode_png
from ebjr.core.resize import resize_batch
from ebjr.core.scores import energy
from ebjr.ops.client import classify, encoded, infer


def direct(client, model: str, images: np.ndarray) -> np.ndarray:
    return infer(client, model, {"image": images}, ["logits"])["logits"]


def test_each_row_is_its_stage_models_answer_on_the_image_resized_for_it(client, test_images):
    images = test_images[0][:64]
    student = direct(client, MIXED_STUDENT, resize_batch(images, 14, 14))  # a 14x14 model
    teacher = direct(client, "teacher", images)  # at full size, 28x28
    threshold = float(np.median(energy(student)))
    answer = classify(client, images, model=MIXED, threshold=threshold)
    kept = energy(student) >= np.float32(threshold)
    assert 0 < kept.sum() < len(images)  # both stages answered
    assert answer.routes.tolist() == np.where(kept, "student", "teacher").tolist()
    np.testing.assert_allclose(answer.scores, energy(student), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(answer.logits[kept], student[kept], atol=1e-5)
    np.testing.assert_allclose(answer.logits[~kept], teacher[~kept], atol=1e-5)
    # PNG bytes are decoded at the router's (largest) size, then resized the same way
    payloads = [encode_png(image) for image in images]
    from_bytes = classify(client, encoded(payloads), model=MIXED, threshold=threshold)
    assert from_bytes.routes.tolist() == answer.routes.tolist()
    np.testing.assert_allclose(from_bytes.logits, answer.logits, atol=1e-5)
