"""How a grid's numbers fit their cells: one format per panel, the most precise one whose
every value (sign included) fits the width a renderer measures. The Qt lab measures with
QFontMetrics, the GIFs with Pillow; both ask `fit_format` with their own `fits`.

>>> f = fit_format([-0.04096, 0.1008], lambda s: len(s) <= 5)
>>> [f.text(v) for v in (-0.04096, 0.1008)], f.title_suffix()
(['-0.41', '1.01'], ' ×10⁻¹')
>>> fit_format([3.0, -2.0], lambda s: len(s) <= 2).text(-2.0)
'-2'
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
DIGITS = (4, 3, 2, 1)  # significant digits tried, most precise first
SUFFIX_ROOM = " ×10⁻⁰⁰"  # what a panel title may gain once its numbers are fitted (reserve room for it)


def positional(v: float, digits: int) -> str:
    """`v` to `digits` significant digits, never in e-notation, trailing zeros dropped:
    positional(-0.040963, 2) == '-0.041'."""
    if v == 0:
        return "0"
    return np.format_float_positional(float(v), precision=digits, unique=False, fractional=False, trim="-")


def exact(v: float) -> str:
    """The shortest digits that read back as the same float32 (what a hover shows)."""
    if math.isinf(v) or math.isnan(v):
        return str(v).replace("inf", "∞")
    return np.format_float_positional(np.float32(v), unique=True, trim="-")


@dataclass(frozen=True)
class CellFormat:
    """Cells show v / 10**exponent to `digits` significant digits; a non-zero exponent is
    written once, in the panel's title."""

    digits: int
    exponent: int = 0

    def text(self, v: float) -> str:
        v = float(v)
        if math.isinf(v):
            return "-∞" if v < 0 else "∞"
        return positional(v / 10.0 ** self.exponent, self.digits)

    def value(self, text: str) -> float:
        """What a cell's text stands for (the inverse of `text`, to its precision)."""
        return float(text) * 10.0 ** self.exponent

    def title_suffix(self) -> str:
        return f" ×10{str(self.exponent).translate(_SUPERSCRIPT)}" if self.exponent else ""


def note_text(s: str) -> str:
    """A window cell's multiplier as drawn small in its corner: '×2', '×(-0.5)'."""
    return "×" + (f"({s})" if s.startswith("-") else s)


def common_exponent(values: Iterable[float]) -> int:
    """The power of ten of the largest |finite value| (0 for none)."""
    finite = [abs(v) for v in values if math.isfinite(v) and v != 0]
    return int(math.floor(math.log10(max(finite)))) if finite else 0


def fit_format(values: Iterable[float], fits: Callable[[str], bool]) -> CellFormat | None:
    """The most precise format whose text of every value `fits` (None when none does).
    At each precision plain numbers are tried before a common power of ten."""
    vals = [float(v) for v in np.asarray(list(values), np.float64).ravel() if not math.isnan(v)]
    e = common_exponent(vals)
    for digits in DIGITS:
        for exponent in dict.fromkeys((0, e)):
            f = CellFormat(digits, exponent)
            if all(fits(f.text(v)) for v in vals):
                return f
    return None
