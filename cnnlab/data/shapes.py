"""`shapes`: ten classes of simple drawn shapes, generated from a seed in a blink.

Every image is one shape at a random position, size, angle (a little tilt) and stroke
thickness, with a random brightness (or colours) and pixel noise. The classes differ in
what a small CNN's first layers can see: stroke orientation, curvature, corners and
crossings. It needs no download, so training works on a fresh machine offline.

>>> ds = shapes(train=True, n=100, seed=0)
>>> len(ds), ds[0][0].shape, ds.classes[:3]
(100, (1, 28, 28), ['horizontal line', 'vertical line', 'diagonal /'])
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .dataset import ArrayDataset

SHAPE_CLASSES = [
    "horizontal line",
    "vertical line",
    "diagonal /",
    "diagonal \\",
    "circle",
    "disk",
    "square",
    "triangle",
    "plus",
    "cross",
]

_TILT = np.deg2rad(12.0)  # orientation jitter; classes stay >= 20 degrees apart


def shapes(
    train: bool = True,
    n: int | None = None,
    seed: int = 0,
    rgb: bool = False,
    size: int | None = None,
    transform: Callable | None = None,
) -> ArrayDataset:
    """The shapes dataset: `n` images (10,000 for training, 2,000 for validation).

    Args:
        train: training or validation split; they are drawn from different streams of
            the same seed, so they never share an image.
        n: number of images, balanced over the ten classes.
        seed: the same seed gives the same images, on every machine.
        rgb: 3 channels with random colours (`shapes-rgb`), else grey.
        size: image side in pixels, default 28 grey and 32 colour.
        transform: applied to each float32 image on the way out.
    """
    n = (10_000 if train else 2_000) if n is None else int(n)
    size = (32 if rgb else 28) if size is None else int(size)
    if n < 0 or size < 8:
        raise ValueError(f"shapes: need n >= 0 and size >= 8, got n={n}, size={size}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(not train), int(rgb), size]))
    labels = rng.permutation(np.arange(n) % len(SHAPE_CLASSES))
    images = render_shapes(labels, size, rgb, rng)
    return ArrayDataset(images, labels, SHAPE_CLASSES, transform)


def render_shapes(
    labels: np.ndarray, size: int, rgb: bool, rng: np.random.Generator
) -> np.ndarray:
    """Draw one shape per label; uint8 N x C x size x size."""
    channels = 3 if rgb else 1
    out = np.empty((len(labels), channels, size, size), np.uint8)
    centre = np.arange(size, dtype=np.float32) + 0.5
    # One class at a time keeps the float32 work arrays small enough to stay in cache.
    for k, distance in enumerate(_DISTANCE):
        (idx,) = np.nonzero(labels == k)
        m = len(idx)
        if m == 0:
            continue
        uniform = lambda lo, hi, shape=(m,): rng.uniform(lo, hi, shape).astype(np.float32)
        r = uniform(0.22, 0.4) * size  # half-extent of the shape
        cx = rng.uniform(r + 1, size - r - 1).astype(np.float32)
        cy = rng.uniform(r + 1, size - r - 1).astype(np.float32)
        thick = uniform(1.0, 2.5) * (size / 28)
        tilt = uniform(-_TILT, _TILT)
        px = centre[None, None, :] - cx[:, None, None]
        py = centre[None, :, None] - cy[:, None, None]
        dist = distance(px, py, r[:, None, None], tilt[:, None, None])
        # Anti-aliased stroke: full ink within thick/2 of the shape, fading over 1 px.
        ink = np.clip(thick[:, None, None] / 2 + 0.5 - dist, 0, 1)[:, None]

        if rgb:
            background = uniform(0.0, 0.35, (m, 3, 1, 1))
            foreground = uniform(0.5, 1.0, (m, 3, 1, 1))
        else:
            background = uniform(0.0, 0.2, (m, 1, 1, 1))
            foreground = uniform(0.7, 1.0, (m, 1, 1, 1))
        # Uniform noise (cheaper to draw than Gaussian), std up to 0.1, same in all channels.
        spread = uniform(0.0, 0.1 * np.sqrt(12), (m, 1, 1, 1))
        picture = ink * (foreground - background)
        picture += background
        picture += (rng.random((m, 1, size, size), dtype=np.float32) - 0.5) * spread
        picture *= 255
        picture += 0.5
        out[idx] = np.clip(picture, 0, 255, out=picture)
    return out


def _segment(px, py, ax, ay, bx, by):
    """Distance from each pixel to the segment a-b."""
    ex, ey = bx - ax, by - ay
    qx, qy = px - ax, py - ay
    t = np.clip((qx * ex + qy * ey) / (ex * ex + ey * ey), 0, 1)
    return np.hypot(qx - t * ex, qy - t * ey)


def _line(angle):
    """A centred segment of half-length r at `angle` (radians, y pointing down)."""

    def distance(px, py, r, tilt):
        a = angle + tilt
        ux, uy = r * np.cos(a), -r * np.sin(a)
        return _segment(px, py, -ux, -uy, ux, uy)

    return distance


def _two_lines(angle):
    first, second = _line(angle), _line(angle + np.pi / 2)
    return lambda px, py, r, tilt: np.minimum(first(px, py, r, tilt), second(px, py, r, tilt))


def _circle(px, py, r, tilt):
    return np.abs(np.hypot(px, py) - r)


def _disk(px, py, r, tilt):
    return np.maximum(np.hypot(px, py) - 0.8 * r, 0)


def _square(px, py, r, tilt):
    c, s = np.cos(tilt), np.sin(tilt)
    half = 0.8 * r
    qx = np.abs(px * c + py * s) - half
    qy = np.abs(py * c - px * s) - half
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    inside = np.minimum(np.maximum(qx, qy), 0)
    return np.abs(outside + inside)


def _triangle(px, py, r, tilt):
    # Equilateral, apex up: corners at -90, 30 and 150 degrees on a circle of radius r.
    corners = [(-np.pi / 2 + tilt + k * 2 * np.pi / 3) for k in range(3)]
    xs = [r * np.cos(a) for a in corners]
    ys = [r * np.sin(a) for a in corners]
    sides = [_segment(px, py, xs[i], ys[i], xs[i - 1], ys[i - 1]) for i in range(3)]
    return np.minimum(np.minimum(sides[0], sides[1]), sides[2])


_DISTANCE = [
    _line(0.0),
    _line(np.pi / 2),
    _line(np.pi / 4),
    _line(-np.pi / 4),
    _circle,
    _disk,
    _square,
    _triangle,
    _two_lines(0.0),
    _two_lines(np.pi / 4),
]
