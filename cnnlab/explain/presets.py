"""Kernels, small inputs and image loading for the convolution lab and `cnnlab animate`.

>>> make_kernel("sobel-x").tolist()
[[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]
>>> parse_numbers("0 1 2\\n3 4 5").shape
(1, 2, 3)
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

# The classic 3x3 filters of image processing (seed 001); box, Gaussian and identity
# are defined for any size, the others are embedded in the centre of a larger kernel.
_FIXED: dict[str, list[list[float]]] = {
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "edge": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],            # the Laplacian
    "sobel-x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel-y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}
KERNEL_PRESETS = ("identity", "box blur", "gaussian", "sharpen", "edge", "sobel-x", "sobel-y", "emboss",
                  "pattern")


def _binomial(n: int) -> np.ndarray:
    row = np.array([1.0])
    for _ in range(n - 1):
        row = np.convolve(row, [1.0, 1.0])
    return row


def make_kernel(name: str, kh: int = 3, kw: int | None = None) -> np.ndarray:
    """A (kh, kw) float32 kernel by preset name (see KERNEL_PRESETS).

    'pattern' is small integers, handy for reading the arithmetic. Fixed 3x3 presets
    need kh, kw >= 3 and sit in the centre of a bigger kernel.

    >>> make_kernel("gaussian").tolist()
    [[0.0625, 0.125, 0.0625], [0.125, 0.25, 0.125], [0.0625, 0.125, 0.0625]]
    """
    kw = kh if kw is None else kw
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel sizes must be at least 1, got {kh}x{kw}")
    key = name.lower().replace("_", "-")
    if key == "identity":
        k = np.zeros((kh, kw))
        k[(kh - 1) // 2, (kw - 1) // 2] = 1
    elif key in ("box", "box blur", "box-blur", "blur"):
        k = np.full((kh, kw), 1.0 / (kh * kw))
    elif key in ("gaussian", "gaussian blur"):
        k = np.outer(_binomial(kh), _binomial(kw))
        k /= k.sum()
    elif key == "pattern":
        m, n = np.mgrid[0:kh, 0:kw]
        k = ((m + 2 * n) % 3).astype(float)
    elif key in _FIXED:
        if kh < 3 or kw < 3:
            raise ValueError(f"the {name} kernel is 3x3; choose a kernel of at least 3x3")
        k = np.zeros((kh, kw))
        r, c = (kh - 3) // 2, (kw - 3) // 2
        k[r:r + 3, c:c + 3] = _FIXED[key]
    else:
        raise ValueError(f"unknown kernel preset {name!r}; choose from {', '.join(KERNEL_PRESETS)}")
    return k.astype(np.float32)


def parse_numbers(text: str) -> np.ndarray:
    """Typed numbers to a (C, H, W) float32 array: one row per line, numbers separated
    by spaces or commas, channels separated by a blank line (or ';' lines).

    >>> parse_numbers("1 2\\n3 4\\n\\n5 6\\n7 8").shape
    (2, 2, 2)
    """
    channels: list[list[list[float]]] = [[]]
    for raw in text.replace(";", "\n").splitlines():
        line = raw.replace(",", " ").split()
        if not line:
            if channels[-1]:
                channels.append([])
            continue
        try:
            channels[-1].append([float(v) for v in line])
        except ValueError:
            raise ValueError(f"not a number in the line {raw.strip()!r}") from None
    channels = [c for c in channels if c]
    if not channels:
        raise ValueError("type at least one row of numbers")
    widths = {len(r) for c in channels for r in c}
    heights = {len(c) for c in channels}
    if len(widths) != 1 or len(heights) != 1:
        raise ValueError("every row needs the same count of numbers and every channel the same count of rows")
    return np.array(channels, dtype=np.float32)


def format_numbers(x: np.ndarray) -> str:
    """The inverse of `parse_numbers` (a blank line between channels)."""
    from ._common import num
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]
    return "\n\n".join("\n".join(" ".join(num(v) for v in row) for row in ch) for ch in x)


# ---------------------------------------------------------------- inputs

def small_integers(h: int, w: int, channels: int = 1, seed: int = 0, high: int = 4) -> np.ndarray:
    """Random integers 0..high-1 as (C, H, W) float32: easy to add up by eye, like
    the figures of conv_arithmetic."""
    return np.random.default_rng(seed).integers(0, high, (channels, h, w)).astype(np.float32)


def _disk(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    r = min(h, w) * 0.32
    return ((y - (h - 1) / 2) ** 2 + (x - (w - 1) / 2) ** 2 <= r * r).astype(np.float32)


def _square(h: int, w: int) -> np.ndarray:
    a = np.zeros((h, w), np.float32)
    a[h // 4: h - h // 4, w // 4: w - w // 4] = 1
    return a


def _checker(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    cell = max(1, min(h, w) // 4)
    return (((y // cell) + (x // cell)) % 2).astype(np.float32)


def _ramp(h: int, w: int) -> np.ndarray:
    return np.tile(np.linspace(0, 1, w, dtype=np.float32), (h, 1))


def _step_edge(h: int, w: int) -> np.ndarray:
    a = np.zeros((h, w), np.float32)
    a[:, w // 2:] = 1
    return a


SYNTHETIC: dict[str, Callable[[int, int], np.ndarray]] = {
    "square": _square, "disk": _disk, "checkerboard": _checker, "ramp": _ramp, "edge": _step_edge,
}


def synthetic_image(name: str, h: int, w: int, channels: int = 1) -> np.ndarray:
    """A simple picture drawn in code at any size, (C, H, W) in 0..1; three channels
    tint it so the colour slices differ."""
    base = SYNTHETIC[name](h, w)
    if channels == 1:
        return base[None]
    tints = np.array([1.0, 0.6, 0.2], np.float32)[:channels, None, None]
    return (base[None] * tints).astype(np.float32)


def load_image(path: str | Path, h: int, w: int, channels: int = 1, decimals: int | None = 2) -> np.ndarray:
    """An image file as (C, H, W) float32 in 0..1, resized to h x w (area averaging).

    Rounded to `decimals` so the numbers fit in a cell; None keeps them all.
    """
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("L" if channels == 1 else "RGB").resize((w, h), Image.Resampling.BOX)
        a = np.asarray(im, dtype=np.float32) / 255.0
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return (np.round(a, decimals) if decimals is not None else a).astype(np.float32)


def upstream_gradient(shape: tuple[int, ...], kind: str = "pattern") -> np.ndarray:
    """A readable dL/dY for the backward views: 'ones' (L = sum of outputs) or
    'pattern' (small integers -1..2, so each entry's route is visible)."""
    if kind == "ones":
        return np.ones(shape, np.float32)
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    return ((idx * 7 + 3) % 4 - 1).astype(np.float32)
