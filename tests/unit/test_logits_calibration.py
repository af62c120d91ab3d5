"""Calibration from the user's own logits (``--val-logits``): on the default pair it writes the
same ``calibration.json`` as running the models does, and bad files are one clear error. And
from a folder of images per class (``--val-data DIR``)."""

from __future__ import annotations

import numpy as np
import pytest

from ebjr.core.calibration import read_calibration
from ebjr.core.layout import DEFAULT_REPOSITORY, ROUTER, STUDENT, calibration_path, onnx_path
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
    """The committed calibration ran the models on fashion-mnist:val with the committed gate;
    the same logits saved to a file give the same bytes."""
    pair = run_pair(DEFAULT_REPOSITORY, STUDENT, *load_labelled("fashion-mnist:val"))
    logits = tmp_path / "val_logits.npz"
    np.savez(logits, student_logits=pair.student, teacher_logits=pair.teacher, labels=pair.labels)
    gate = DEFAULT_REPOSITORY / ROUTER / "gate.onnx"
    build([*pair_arguments(tmp_path / "repo"), "--val-logits", str(logits), "--gates", str(gate)])
    built = calibration_path(tmp_path / "repo", ROUTER).read_bytes()
    assert built == calibration_path(DEFAULT_REPOSITORY, ROUTER).read_bytes()


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
        ({"teacher_logits": np.zeros((20, 7), np.float32)}, "the models answer (N, 10)"),
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


def test_the_builder_says_what_logits_cannot_calibrate(tmp_path, capsys):
    logits = fake(tmp_path / "l.npz")
    middle = str(DEFAULT_REPOSITORY / "student" / "1" / "model.onnx")
    with pytest.raises(SystemExit) as err:
        build([*pair_arguments(tmp_path / "repo"), "--val-logits", str(logits), "--middle", middle])
    assert err.value.code == 2
    assert "logits files calibrate a two-stage router" in capsys.readouterr().err


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
