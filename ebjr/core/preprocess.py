"""Encoded images in: PNG or JPEG bytes decoded into a model's input tensor, as the model's
declared ``Preprocessing`` says (channels, size, resize filter, mean and std), with Pillow.

A payload is the file's bytes, or their base64 text (what a JSON request over HTTP can carry).
Each payload is checked before it is decoded: an empty one, a format other than PNG or JPEG,
an image over ``MAX_PIXELS`` (a decompression bomb: its size is read from the header, before any
pixel is), a colour mode that is neither grey nor RGB, and a truncated file are each a
``RequestError`` naming the row and the reason.

Shapes: ``decode_batch(payloads (N,) bytes) -> (N, C, H, W) float32``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from ebjr.core.routing import RequestError

FORMATS = ("PNG", "JPEG")
MAX_PIXELS = 4096 * 4096  # per image, checked from the header before decoding
MAX_BYTES = 8 * 2**20  # per image payload
MAGIC = (b"\x89PNG", b"\xff\xd8\xff")  # how a PNG and a JPEG file begin
MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA"}  # grey or colour, with or without alpha
RESIZE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}
PARAMETER = "preprocessing"  # the router's config.pbtxt parameter that holds it (JSON)
IMAGE, IMAGE_BYTES = "image", "image_bytes"  # a router's two inputs: pixels, or encoded images


def encode_png(image: np.ndarray) -> bytes:
    """``image: (C, H, W)`` in [0, 1] (C 1 or 3) as a PNG file's bytes (8 bits a channel)."""
    pixels = (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8).transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buffer, "PNG")
    return buffer.getvalue()


def file_bytes(payload: bytes) -> bytes:
    """``payload`` itself when it begins as a PNG or JPEG file does, else its base64 decoding
    (``RequestError`` when it is neither)."""
    if payload.startswith(MAGIC):
        return payload
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("not a PNG or JPEG image, raw or base64") from None


@dataclass(frozen=True)
class Preprocessing:
    """How an encoded image becomes one model input row ``(channels, height, width)``: to grey
    (``channels`` 1, luminance) or RGB (3), transparent pixels on ``background`` (0-255),
    resized to ``height`` x ``width`` with the ``resize`` filter, then ``(pixel / 255 - mean) /
    std`` per channel."""

    channels: int
    height: int
    width: int
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    resize: str = "bilinear"
    background: int = 0

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(
                f"preprocessing takes 1 (grey) or 3 (RGB) channels, not {self.channels}"
            )
        if self.height < 1 or self.width < 1:
            raise ValueError(f"preprocessing size must be positive, not {self.height}x{self.width}")
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, self.channels):
                raise ValueError(f"{name} needs 1 or {self.channels} values, not {len(values)}")
        if not all(s > 0 for s in self.std):
            raise ValueError(f"std must be positive, not {self.std}")
        if self.resize not in RESIZE:
            raise ValueError(f"resize must be one of {', '.join(RESIZE)}, not {self.resize!r}")

    @classmethod
    def for_shape(cls, shape: tuple[int, ...], **kwargs) -> Preprocessing:
        """Plain ``[0, 1]`` pixels for a model input of per-row ``shape`` ``(C, H, W)``."""
        if len(shape) != 3:
            raise ValueError(f"an image input is (channels, height, width), not {shape}")
        return cls(shape[0], shape[1], shape[2], **kwargs)

    def to_parameter(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_parameter(cls, text: str) -> Preprocessing:
        body = json.loads(text)
        return cls(**{**body, "mean": tuple(body["mean"]), "std": tuple(body["std"])})

    def decode(self, payload: bytes) -> np.ndarray:
        """One PNG or JPEG payload as ``(C, H, W) float32``; ``RequestError`` if it is not
        one this accepts."""
        if not payload:
            raise RequestError("empty image payload")
        if len(payload) > MAX_BYTES:
            raise RequestError(f"image payload of {len(payload)} bytes is over {MAX_BYTES}")
        payload = file_bytes(payload)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(payload), formats=FORMATS)
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise RequestError(
                        f"image of {width}x{height} pixels is over the limit of {MAX_PIXELS} pixels"
                    )
                if image.mode not in MODES:
                    raise RequestError(
                        f"image mode {image.mode}: send a grey or RGB image (alpha allowed)"
                    )
                image.load()
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise RequestError(f"image is over the limit of {MAX_PIXELS} pixels") from None
        except UnidentifiedImageError:
            raise RequestError("not a PNG or JPEG image") from None
        except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
            raise RequestError(f"corrupt image ({err})") from None
        return self.tensor(image)

    def tensor(self, image: Image.Image) -> np.ndarray:
        """A decoded ``image`` as ``(C, H, W) float32`` (see the class docstring)."""
        if "A" in image.getbands() or "transparency" in image.info:
            fill = (self.background,) * 3 + (255,)
            image = Image.alpha_composite(
                Image.new("RGBA", image.size, fill), image.convert("RGBA")
            )
        image = image.convert("L" if self.channels == 1 else "RGB")
        image = image.resize((self.width, self.height), RESIZE[self.resize])
        pixels = np.asarray(image, dtype=np.float32).reshape(self.height, self.width, -1) / 255.0
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        return ((pixels - mean) / std).transpose(2, 0, 1).astype(np.float32)

    def decode_batch(self, payloads: np.ndarray) -> np.ndarray:
        """``payloads (N,) or (N, 1)`` of bytes as ``(N, C, H, W) float32``; the first bad one
        is a ``RequestError`` naming its row."""
        rows = []
        for i, payload in enumerate(np.ravel(payloads)):
            try:
                rows.append(self.decode(bytes(payload)))
            except RequestError as err:
                raise RequestError(f"image_bytes row {i}: {err}") from None
        if not rows:
            raise RequestError("empty batch: send at least one row")
        return np.stack(rows)
