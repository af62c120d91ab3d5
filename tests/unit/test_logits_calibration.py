"""Calibration from the user's own logits (``--val-logits``): on the default pair it writes the
same ``calibration.json`` as running the models does, and bad files are one clear error. And
from a folder of images per class (``--val-data DIR``)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_factory import labelled_npz, tiny_classifier

from ebjr.core.calibration import read_calibration
from ebjr.core.layout import (
    DEFAULT_REPOSITORY,
    ROUTER,
    SPECIALIZED_ROUTER,
    SPECIALIZED_STUDENT,
    STUDENT,
    calibration_path,
    onnx_path,
)
from ebjr.core.onnx_runner import OnnxClassifier
from ebjr.core.preprocess import Preprocessing, encode_png
from ebjr.tasks.classification.logits import load_logits, run_pair
from ebjr.tasks.classification.repository import main as build
from ebjr.training.data import load_labelled


def pair_arguments(out) -> list[str]:
    return [
        "--student",
        str(onnx_path(DEFAULT_REPOSITORY, STUDENT)),
        "--teacher",
        str(onnx_path(DEFAULT_REPOSITORY, "teacher")),
        "--out",
        str(out),
        "--teacher-timeout-ms",
        "400",
    ]


def test_logits_from_your_own_pipeline_calibrate_bit_for_bit_as_running_the_models(tmp_path):
    """The committed calibrations ran the models on fashion-mnist:val with the committed gate
    (the specialized router on its skewed stream of those rows); the same logits saved to a
    file give the same bytes, for the general router and the specialized one."""
    images, labels = load_labelled("fashion-mnist:val")
    pair = run_pair(DEFAULT_REPOSITORY, STUDENT, images, labels)
    special = OnnxClassifier(onnx_path(DEFAULT_REPOSITORY, SPECIALIZED_STUDENT), threads=2)
    logits = tmp_path / "val_logits.npz"
    np.savez(
        logits,
        student_logits=pair.student,
        teacher_logits=pair.teacher,
        labels=pair.labels,
        specialized_logits=special.predict(images),
    )
    committed = read_calibration(calibration_path(DEFAULT_REPOSITORY, SPECIALIZED_ROUTER))
    build(
        [
            *pair_arguments(tmp_path / "repo"),
            "--val-logits",
            str(logits),
            "--gates",
            str(DEFAULT_REPOSITORY / ROUTER / "gate.onnx"),
            "--specialized-student",
            str(onnx_path(DEFAULT_REPOSITORY, SPECIALIZED_STUDENT)),
            "--popular",
            ",".join(str(c) for c in committed.popular),
            "--share",
            str(committed.share),
        ]
    )
    for router in (ROUTER, SPECIALIZED_ROUTER):
        built = calibration_path(tmp_path / "repo", router).read_bytes()
        assert built == calibration_path(DEFAULT_REPOSITORY, router).read_bytes(), router


def test_an_n_stage_cascade_calibrates_from_logits_as_from_running_its_stages(tmp_path):
    """Student, one middle stage, Teacher (tiny models): the logits of every stage in a file
    give the calibration (and gates) that running the stages on the images gives."""
    stages = [
        tiny_classifier(tmp_path / f"{n}.onnx", classes=10, seed=k)
        for k, n in enumerate(("s", "m", "t"))
    ]
    val, gate = (
        labelled_npz(tmp_path / f"{n}.npz", 300, classes=10, seed=k)
        for k, n in enumerate(("val", "gate"), 1)
    )
    files = {}
    for name, path in (("val", val), ("gate", gate)):
        with np.load(path) as data:
            logits = [OnnxClassifier(p).predict(data["images"]) for p in stages]
            files[name] = tmp_path / f"{name}_logits.npz"
            np.savez(
                files[name],
                student_logits=logits[0],
                middle_1_logits=logits[1],
                teacher_logits=logits[2],
                labels=data["labels"],
            )
    pair = ["--student", str(stages[0]), "--middle", str(stages[1]), "--teacher", str(stages[2])]
    common = [*pair, "--teacher-timeout-ms", "400"]
    build([*common, "--out", str(tmp_path / "a"), "--val-data", str(val), "--gate-data", str(gate)])
    build(
        [
            *common,
            "--out",
            str(tmp_path / "b"),
            "--val-logits",
            str(files["val"]),
            "--gate-logits",
            str(files["gate"]),
        ]
    )
    for name in ("calibration.json", "gate.onnx", "gate_1.onnx"):
        a, b = (tmp_path / r / ROUTER / name for r in ("a", "b"))
        assert a.exists() and a.read_bytes() == b.read_bytes(), name


def fake(path, n=20, c=10, **overrides):
    rng = np.random.default_rng(0)
    arrays = {
        "student_logits": rng.normal(size=(n, c)).astype(np.float32),
        "teacher_logits": rng.normal(size=(n, c)).astype(np.float32),
        "labels": rng.integers(0, c, n),
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"labels": None}, "lacks labels"),
        ({"teacher_logits": np.zeros((20, 7), np.float32)}, "the model answers (N, 10)"),
        ({"student_logits": np.full((20, 10), np.nan, np.float32)}, "NaN or Inf"),
        ({"labels": np.arange(19)}, "one row each"),
        ({"labels": np.full(20, 12)}, "labels must be integers in [0, 10)"),
    ],
)
def test_a_bad_logits_file_is_a_clear_error(tmp_path, overrides, words):
    with pytest.raises(
        ValueError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        load_logits(fake(tmp_path / "l.npz", **overrides), num_classes=10)


@pytest.mark.parametrize(
    ("overrides", "middle", "words"),
    [
        ({}, 1, "lacks middle_1_logits"),
        ({"middle_1_logits": np.zeros((20, 10), np.float32)}, 0, "holds middle_1_logits"),
        ({"specialized_logits": np.zeros((20, 10), np.float32)}, 0, "holds specialized_logits"),
    ],
)
def test_a_logits_file_must_hold_one_array_per_stage_of_the_cascade(
    tmp_path, overrides, middle, words
):
    with pytest.raises(ValueError, match=words):
        load_logits(fake(tmp_path / "l.npz", **overrides), num_classes=10, middle=middle)
    specialized = fake(tmp_path / "s.npz", specialized_logits=np.zeros((20, 4), np.float32))
    with pytest.raises(ValueError, match=r"specialized_logits is \(20, 4\), the model answers"):
        load_logits(specialized, num_classes=10, specialized_outputs=3)


def test_an_image_folder_is_labelled_data_decoded_as_the_router_serves_it(tmp_path):
    """torchvision's ImageFolder layout: one folder per class, labels in sorted folder order;
    the files decode to the very pixels the .npz would hold."""
    images, labels = load_labelled("fashion-mnist:val")
    images, labels = images[:300], labels[:300]
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = tmp_path / "val" / f"class_{label:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:05d}.png").write_bytes(encode_png(image))
    (tmp_path / "val" / "class_00" / "notes.txt").write_text("ignored: not an image file")
    got, got_labels = load_labelled(str(tmp_path / "val"), Preprocessing.for_shape((1, 28, 28)))
    order = np.lexsort((np.arange(len(labels)), labels))  # by class, then file name
    np.testing.assert_array_equal(got_labels, labels[order])
    np.testing.assert_array_equal(got, images[order])
    build([*pair_arguments(tmp_path / "repo"), "--val-data", str(tmp_path / "val")])
    assert read_calibration(calibration_path(tmp_path / "repo", ROUTER)).rows == 300
    (tmp_path / "val" / "class_03" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    with pytest.raises(ValueError, match="broken.jpg: not a PNG or JPEG image"):
        load_labelled(str(tmp_path / "val"), Preprocessing.for_shape((1, 28, 28)))
