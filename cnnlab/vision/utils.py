"""torchvision.utils under cnnlab: `make_grid` and `save_image`, torchvision's algorithm.

>>> import cnnlab
>>> tuple(make_grid(cnnlab.zeros(10, 1, 28, 28), nrow=5).shape)
(3, 62, 152)
"""
from __future__ import annotations

import math
import os
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from ..data.collate import to_tensor


def _stacked(tensor: Any) -> np.ndarray:
    if isinstance(tensor, (list, tuple)):
        return np.stack([np.asarray(t.detach().numpy() if hasattr(t, "detach") else t) for t in tensor])
    if not hasattr(tensor, "numpy"):
        raise TypeError(f"tensor or list of tensors expected, got {type(tensor).__name__}")
    return tensor.detach().numpy()


def _scale_into_unit(images: np.ndarray, value_range: tuple[float, float] | None) -> None:
    """Clamp to the range (given, else the images' own min..max) and map it onto 0..1,
    in place and in the images' dtype, as torchvision's `norm_ip`."""
    low, high = value_range if value_range is not None else (float(images.min()), float(images.max()))
    np.clip(images, low, high, out=images)
    images -= images.dtype.type(low)
    images /= images.dtype.type(max(high - low, 1e-5))


def make_grid(
    tensor: Any,
    nrow: int = 8,
    padding: int = 2,
    normalize: bool = False,
    value_range: tuple[float, float] | None = None,
    scale_each: bool = False,
    pad_value: float = 0.0,
):
    """Tile a batch of images (N x C x H x W, or a list of C x H x W) into one C x H' x W'
    image, `nrow` images per row with `padding` pixels of `pad_value` around each.

    One-channel images are repeated into three (RGB), as torchvision does. With
    `normalize`, values are shifted and scaled into 0..1 by `value_range` (default the
    min and max over all images, or over each image with `scale_each`).
    """
    x = _stacked(tensor)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 3:
        x = (np.concatenate([x] * 3) if x.shape[0] == 1 else x)[None]
    if x.ndim != 4:
        raise ValueError(f"make_grid expects 2 to 4 dimensions, got shape {x.shape}")
    if x.shape[1] == 1:
        x = np.concatenate([x] * 3, axis=1)
    if normalize:
        if value_range is not None and not isinstance(value_range, tuple):
            raise TypeError("value_range has to be a tuple (min, max) if specified. min and max are numbers")
        x = x.copy()
        for part in (x if scale_each else [x]):
            _scale_into_unit(part, value_range)
    if x.shape[0] == 1:
        return to_tensor(x[0].copy())
    n, channels, h, w = x.shape
    columns = min(nrow, n)
    rows = int(math.ceil(n / columns))
    cell_h, cell_w = h + padding, w + padding
    grid = np.full((channels, cell_h * rows + padding, cell_w * columns + padding), pad_value, dtype=x.dtype)
    for k in range(n):
        top, left = (k // columns) * cell_h + padding, (k % columns) * cell_w + padding
        grid[:, top : top + h, left : left + w] = x[k]
    return to_tensor(grid)


def save_image(tensor: Any, fp: str | os.PathLike | BinaryIO, format: str | None = None, **kwargs: Any) -> None:
    """Save a tensor (or a batch, tiled by `make_grid(**kwargs)`) as an image file.

    Values 0..1 become 0..255 rounded to the nearest, as torchvision does.
    """
    grid = make_grid(tensor, **kwargs).numpy()
    pixels = np.clip(grid * np.float32(255) + np.float32(0.5), 0, 255).astype(np.uint8)
    Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0))).save(fp, format=format)


__all__ = ["make_grid", "save_image"]
