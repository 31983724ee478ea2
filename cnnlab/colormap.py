"""The one diverging colour map for signed values: negative blue, zero near-white,
positive red. The lab, the Filters tab, gradients, signed feature maps and the GIFs all
colour with it, so a kernel looks the same wherever it is drawn. No Qt here: `cnnlab.render`
uses it directly and `gui.colormap` adds the Qt colour bar.

>>> signed_rgb(-2.0, 2.0), signed_rgb(0.0, 2.0), signed_rgb(2.0, 2.0)
((33, 102, 172), (246, 246, 246), (178, 24, 43))
"""
from __future__ import annotations

import numpy as np

NEGATIVE = (33, 102, 172)   # blue, -scale
ZERO = (247, 247, 247)      # near-white
POSITIVE = (178, 24, 43)    # red, +scale
NEGATIVE_NAME, POSITIVE_NAME = "blue", "red"


def _ramp(*stops: tuple[float, tuple[int, int, int]]) -> np.ndarray:
    x = np.linspace(0, 1, 256)
    pos = [p for p, _ in stops]
    return np.stack([np.interp(x, pos, [c[i] for _, c in stops]) for i in range(3)], 1).astype(np.uint8)


# 256 colours, index 0 = -scale, 128 ~ 0, 255 = +scale
DIVERGING = _ramp((0, NEGATIVE), (0.5, ZERO), (1, POSITIVE))


def symmetric_scale(values: np.ndarray) -> float:
    """The scale a set of values is coloured by: its largest |value| (1 when all are 0 or none is finite)."""
    v = np.asarray(values, np.float64)
    finite = v[np.isfinite(v)]
    return float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0


def signed_index(values: np.ndarray | float, scale: float) -> np.ndarray:
    """Indices into DIVERGING: 0 at -scale, 255 at +scale (values beyond the scale clip)."""
    unit = 0.5 + 0.5 * np.nan_to_num(np.asarray(values, np.float64)) / (scale or 1.0)
    return (unit * 255).round().clip(0, 255).astype(np.intp)


def signed_image(values: np.ndarray, scale: float | None = None) -> np.ndarray:
    """(..., 3) uint8 colours of signed values (scale: their largest |value| unless given)."""
    return DIVERGING[signed_index(values, symmetric_scale(values) if scale is None else scale)]


def signed_rgb(value: float, scale: float) -> tuple[int, int, int]:
    """The colour of one value on a map spanning -scale..+scale."""
    return tuple(int(c) for c in DIVERGING[int(signed_index(value, scale))])  # type: ignore[return-value]


def ink_on(fill: tuple[int, int, int], dark: tuple[int, int, int] = (29, 39, 51),
           light: tuple[int, int, int] = (255, 255, 255)) -> tuple[int, int, int]:
    """Text colour readable on `fill`: dark on light fills, white on the deep ends of the map."""
    r, g, b = fill
    return dark if 0.299 * r + 0.587 * g + 0.114 * b >= 140 else light
