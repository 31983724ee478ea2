"""Tile many small arrays into one RGB picture (NumPy only): the feature maps of a layer,
the kernels of a conv layer. One picture per layer keeps drawing cheap however many
channels a layer has.

>>> mosaic(np.random.rand(16, 28, 28)).shape   # 4 x 4 tiles, 1-pixel gaps
(115, 115, 3)
"""
from __future__ import annotations

import math

import numpy as np

from cnnlab.colormap import DIVERGING  # noqa: F401 - the one map for signed values, re-exported

GAP_COLOUR = np.array([52, 73, 94], np.uint8)  # between tiles and around a picture: never a data colour
PAD_COLOUR = np.array([243, 156, 18], np.uint8)  # cells that hold no value (a vector's tail): not grey either


def _ramp(*stops: tuple[float, tuple[int, int, int]]) -> np.ndarray:
    x = np.linspace(0, 1, 256)
    pos = [p for p, _ in stops]
    return np.stack([np.interp(x, pos, [c[i] for _, c in stops]) for i in range(3)], 1).astype(np.uint8)


GREY = _ramp((0, (0, 0, 0)), (1, (255, 255, 255)))
# few to many, for counts (confusion matrix)
BLUES = _ramp((0, (247, 251, 255)), (0.5, (107, 174, 214)), (1, (8, 48, 107)))


def grid(n: int, aspect: float = 1.0) -> tuple[int, int]:
    """(rows, cols) for n tiles, roughly `aspect` (width / height) overall."""
    cols = max(1, min(n, math.ceil(math.sqrt(n * aspect))))
    return math.ceil(n / cols), cols


def normalise(tiles: np.ndarray, mode: str = "tile") -> np.ndarray:
    """Map values to 0..1: 'tile' stretches each tile to its own range (a flat tile is
    grey), 'all' uses one range for all, 'symmetric' puts 0 at 0.5 with one scale."""
    t = np.nan_to_num(np.asarray(tiles, np.float32))
    if mode == "symmetric":
        scale = float(np.abs(t).max()) or 1.0
        return 0.5 + 0.5 * t / scale
    axes = tuple(range(1, t.ndim)) if mode == "tile" else None
    lo, hi = t.min(axis=axes, keepdims=True), t.max(axis=axes, keepdims=True)
    span = hi - lo
    return np.where(span > 0, (t - lo) / np.where(span > 0, span, 1), 0.5)


def mosaic(tiles: np.ndarray, cols: int | None = None, gap: int = 1, mode: str = "tile",
           lut: np.ndarray = GREY) -> np.ndarray:
    """(N, h, w) values, or (N, 3, h, w) colour tiles, as one (H, W, 3) uint8 picture."""
    tiles = np.asarray(tiles)
    colour = tiles.ndim == 4
    n, h, w = tiles.shape[0], tiles.shape[-2], tiles.shape[-1]
    rows, cols = grid(n) if cols is None else (math.ceil(n / cols), cols)
    out = np.empty((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), np.uint8)
    out[:] = GAP_COLOUR
    pad = np.isnan(tiles) if tiles.dtype.kind == "f" else None
    if pad is not None and pad.any():  # NaN marks cells with no value: out of the range, drawn apart
        fill = np.nanmin(np.where(pad.all(axis=tuple(range(1, tiles.ndim)), keepdims=True), 0, tiles))
        tiles = np.where(pad, fill, tiles)
    unit = normalise(tiles, mode)
    if colour:
        pixels = (unit.transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)
    else:
        pixels = lut[(unit * 255).round().astype(np.intp).clip(0, 255)]
    # lay the tiles out with whole-array moves: (rows, cols, h+gap, w+gap, 3) -> picture
    cells = np.empty((rows * cols, h + gap, w + gap, 3), np.uint8)
    cells[:] = GAP_COLOUR
    cells[:n, :h, :w] = pixels
    if pad is not None and not colour and pad.any():
        cells[:n, :h, :w][pad] = PAD_COLOUR
    cells = cells.reshape(rows, cols, h + gap, w + gap, 3).transpose(0, 2, 1, 3, 4)
    out[:] = cells.reshape(rows * (h + gap), cols * (w + gap), 3)[:out.shape[0], :out.shape[1]]
    return out


def vector_tiles(v: np.ndarray, side: int | None = None) -> np.ndarray:
    """A flat vector as a single tile, row by row, `side` cells wide (near-square by
    default); the cells past its end are NaN, which `mosaic` draws in PAD_COLOUR."""
    v = np.asarray(v, np.float32).ravel()
    side = side or max(1, math.ceil(math.sqrt(v.size)))
    rows = max(1, math.ceil(v.size / side))
    out = np.full(rows * side, np.nan, np.float32)
    out[:v.size] = v
    return out.reshape(1, rows, side)


def framed(picture: np.ndarray, width: int = 1) -> np.ndarray:
    """The picture inside a GAP_COLOUR frame: a white cell at its edge stays apart from a white background."""
    out = np.empty((picture.shape[0] + 2 * width, picture.shape[1] + 2 * width, 3), np.uint8)
    out[:] = GAP_COLOUR
    out[width:-width, width:-width] = picture
    return out
