"""Encoded images to model inputs (``ebjr.core.preprocess``), without a server."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from ebjr.core.preprocess import MAX_PIXELS, Preprocessing
from ebjr.core.routing import RequestError


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def test_a_grey_png_decodes_to_its_own_pixels_raw_or_base64():
    pixels = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    payload = encode(Image.fromarray(pixels))
    p = Preprocessing.for_shape((1, 28, 28))
    for sent in (payload, base64.b64encode(payload)):
        row = p.decode(sent)
        assert row.shape == (1, 28, 28) and row.dtype == np.float32
        np.testing.assert_array_equal(row[0], pixels / np.float32(255))


def test_colour_alpha_size_and_normalisation_follow_the_declaration():
    rgba = Image.new("RGBA", (10, 20), (255, 0, 0, 0))  # fully transparent red
    p = Preprocessing(3, 8, 4, mean=(0.5,), std=(0.25,), background=255)
    row = p.decode(encode(rgba))
    assert row.shape == (3, 8, 4)
    np.testing.assert_allclose(row, (1.0 - 0.5) / 0.25)  # white background, normalised
    grey = Preprocessing.for_shape((1, 5, 5)).decode(encode(Image.new("RGB", (9, 9), (0, 255, 0))))
    np.testing.assert_allclose(grey, 0.587 * 255 // 1 / 255, atol=1 / 255)  # luminance


def test_the_declaration_round_trips_through_its_parameter_and_is_checked():
    p = Preprocessing(3, 224, 224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    assert Preprocessing.from_parameter(p.to_parameter()) == p
    for bad in (
        {"channels": 2, "height": 1, "width": 1},
        {"channels": 3, "height": 1, "width": 1, "mean": (0.1, 0.2)},
        {"channels": 1, "height": 1, "width": 1, "std": (0.0,)},
        {"channels": 1, "height": 1, "width": 1, "resize": "magic"},
    ):
        with pytest.raises(ValueError):
            Preprocessing(**bad)


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"", "empty image payload"),
        (b"%PDF-1.4 not an image", "not a PNG or JPEG"),
        (encode(Image.new("L", (28, 28)), "GIF"), "not a PNG or JPEG"),
        (encode(Image.new("L", (64, 64)), "JPEG")[:200], "corrupt image"),
        (encode(Image.new("CMYK", (8, 8)), "JPEG"), "grey or RGB"),
        (encode(Image.new("L", (5000, 5000))), f"over the limit of {MAX_PIXELS} pixels"),
    ],
)
def test_each_bad_payload_is_a_request_error_naming_its_row(payload, words):
    good = encode(Image.new("L", (28, 28)))
    p = Preprocessing.for_shape((1, 28, 28))
    with pytest.raises(RequestError, match=f"image_bytes row 1: .*{words}"):
        p.decode_batch(np.array([good, payload], dtype=np.object_))
