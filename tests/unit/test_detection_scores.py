import numpy as np
import pytest
from scipy import integrate

from ebjr.tasks.detection.energy import detection_energy


def test_box_term_equals_a_numerical_integral_of_the_binned_density():
    rng = np.random.default_rng(0)
    bins, width = 6, 4.0
    w = rng.normal(size=(1, 1, 4, bins))
    # exp S(y) is piecewise constant: exp(w_k) on bin k, [k*width, (k+1)*width)
    integrals = [
        sum(
            integrate.quad(lambda y, k=k, j=j: np.exp(w[0, 0, j, k]), k * width, (k + 1) * width)[0]
            for k in range(bins)
        )
        for j in range(4)
    ]
    expected = np.mean(np.log(integrals))
    got = detection_energy(np.zeros((1, 1, 3)), w, np.ones((1, 1), bool), width, ("box",))
    assert got[0] == pytest.approx(expected, rel=1e-5)


def test_class_term_averages_logsumexp_over_the_kept_boxes_only():
    z = np.array([[[0.0, 0.0], [5.0, 1.0], [100.0, 100.0]]])  # (1, 3, 2)
    valid = np.array([[True, True, False]])
    got = detection_energy(z, np.zeros((1, 3, 4, 2)), valid, 1.0, ("class",))
    expected = np.mean([np.log(2.0), np.log(np.exp(5.0) + np.exp(1.0))])
    assert got[0] == pytest.approx(expected, rel=1e-5)


def test_both_terms_add_and_an_empty_detection_scores_minus_inf():
    rng = np.random.default_rng(1)
    z, w = rng.normal(size=(2, 3, 5)), rng.normal(size=(2, 3, 4, 8))
    valid = np.array([[True, False, True], [False, False, False]])
    both = detection_energy(z, w, valid, 2.0)
    parts = sum(detection_energy(z, w, valid, 2.0, (t,)) for t in ("class", "box"))
    assert both[0] == pytest.approx(parts[0], rel=1e-5)
    assert both[1] == -np.inf
    with pytest.raises(ValueError, match="terms"):
        detection_energy(z, w, valid, 2.0, ("nope",))


def test_joined_detections_take_each_images_answer_from_one_model():
    from ebjr.tasks.detection.calibration import join

    student = {"boxes": np.zeros((3, 2, 4)), "valid": np.ones((3, 2), bool)}
    teacher = {"boxes": np.ones((3, 2, 4)), "valid": np.zeros((3, 2), bool)}
    joined = join(student, teacher, np.array([True, False, True]))
    assert joined["boxes"][:, 0, 0].tolist() == [0, 1, 0]
    assert joined["valid"].tolist() == [[True, True], [False, False], [True, True]]


def test_per_image_f1_counts_a_detection_right_only_with_its_class_and_overlap():
    from ebjr.tasks.detection.data import Scenes
    from ebjr.tasks.detection.evaluate import f1_per_image

    truth = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)] * 3
    scenes = Scenes("val", np.zeros((3, 1, 4, 4)), truth, [np.array([1, 2])] * 3, [None] * 3)
    logits = np.zeros((3, 2, 4))
    logits[:, 0, 1] = logits[:, 1, 2] = 5  # classes 1 and 2
    logits[1, 1] = [0, 0, 0, 9]  # image 1: the second box names the wrong class
    found = {
        "boxes": np.array([[[0, 0, 10, 10], [20, 20, 30, 30]]] * 3, np.float32),
        "scores": np.ones((3, 2)),
        "class_logits": logits,
        "valid": np.array([[True, True], [True, True], [True, False]]),
    }
    assert f1_per_image(scenes, found).tolist() == pytest.approx([1.0, 0.5, 2 / 3])
