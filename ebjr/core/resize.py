"""Each stage at its own resolution: image rows resized to a stage's input size, the way
Pillow's bilinear filter resizes (a triangle filter widened by the scale when shrinking, so a
downscale averages every pixel it covers; half-pixel centres; weights renormalised at the
borders). Training a low-resolution model, calibrating it and serving it all call
``resize_batch``, so every one of them sees the same pixels.

Shapes: ``resize_batch(images (N, C, H, W) float32, height, width) -> (N, C, height, width)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def weights(size_in: int, size_out: int) -> np.ndarray:
    """``(size_out, size_in) float32``: row ``i`` holds the weights of the input pixels that
    make output pixel ``i`` along one axis; each row sums to 1."""
    if size_in < 1 or size_out < 1:
        raise ValueError(f"sizes must be positive, not {size_in} -> {size_out}")
    scale = size_in / size_out
    stretch = max(scale, 1.0)  # shrinking widens the filter to cover every input pixel
    centres = (np.arange(size_out) + 0.5) * scale
    pixels = np.arange(size_in) + 0.5
    taps = np.clip(1.0 - np.abs(pixels[None, :] - centres[:, None]) / stretch, 0.0, None)
    return (taps / taps.sum(axis=1, keepdims=True)).astype(np.float32)


def resize_batch(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """``images: (N, C, H, W)`` float as ``(N, C, height, width) float32``; the same array
    when it has that size already. The same bits on every CPU (``along``)."""
    if images.ndim != 4:
        raise ValueError(f"images are (N, C, H, W), not {images.shape}")
    if images.shape[2:] == (height, width):
        return images
    rows = along(images.astype(np.float32, copy=False), height, 2)
    return np.ascontiguousarray(along(rows, width, 3))


@lru_cache(maxsize=64)
def taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray]:
    """``weights`` as each output pixel's nonzero taps, in input order: ``(size_out, T)``
    input indices and ``(size_out, T) float32`` weights, padded with zero weights."""
    full = weights(size_in, size_out)
    width = int((full > 0).sum(axis=1).max())
    index = np.zeros((size_out, width), dtype=np.intp)
    weight = np.zeros((size_out, width), dtype=np.float32)
    for i, row in enumerate(full):
        found = np.flatnonzero(row)
        index[i, : len(found)], index[i, len(found) :] = found, found[-1]
        weight[i, : len(found)] = row[found]
    return index, weight


def along(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """``x`` float32 resized to ``size`` along ``axis``: each output pixel sums its taps one
    by one, in input order, with elementwise float32 operations, so every CPU gets the same
    bits. A matrix product does these sums in an order that depends on the BLAS kernel the CPU
    gets (OpenBLAS's SSE3, AVX, AVX2 and AVX-512 kernels each gave other pixels), and a
    low-resolution Student trained on one machine could not be retrained bit for bit on
    another."""
    index, weight = taps(x.shape[axis], size)
    gathered = np.moveaxis(x, axis, -1)[..., index]  # (..., size, T)
    out = gathered[..., 0] * weight[:, 0]
    for t in range(1, weight.shape[1]):
        out += gathered[..., t] * weight[:, t]
    return np.moveaxis(out, -1, axis)


def fit_to(images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``images: (N, C, H, W)`` as a model whose rows are ``shape`` ``(C, h, w)`` takes them:
    resized when the size differs; ``ValueError`` when the channels do."""
    if len(shape) != 3 or images.ndim != 4 or images.shape[1] != shape[0]:
        raise ValueError(f"rows of {images.shape[1:]} cannot be resized to {tuple(shape)}")
    return resize_batch(images, shape[1], shape[2])
