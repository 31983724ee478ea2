"""What the traces share: array coercion, number formatting, the fields every trace
holds about its window, and the sum-of-products step of conv forward and backward."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable

import numpy as np

from .sizes import Check


def as_array(a: Any, dtype: Any = None) -> np.ndarray:
    """A NumPy copy of a list, array, cnnlab Tensor or torch tensor (float32 unless float64)."""
    if hasattr(a, "detach"):
        a = a.detach()
    if hasattr(a, "numpy") and not isinstance(a, np.ndarray):
        a = a.numpy()
    arr = np.asarray(a)
    if dtype is None:
        dtype = np.float64 if arr.dtype == np.float64 else np.float32
    return np.array(arr, dtype=dtype)


def as_image(a: Any) -> np.ndarray:
    """One image as (C, H, W); a (H, W) array becomes one channel."""
    x = as_array(a)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3:
        raise ValueError(f"expected one image shaped (C, H, W) or (H, W), got shape {tuple(x.shape)}")
    return x


def num(v: float) -> str:
    """A number as a person would write it: 3, -0.25, 0.3333, -inf.

    >>> num(8.0), num(-0.25), num(1/3), num(float('-inf'))
    ('8', '-0.25', '0.3333', '-inf')
    """
    v = float(v)
    if math.isinf(v):
        return "-inf" if v < 0 else "inf"
    if math.isnan(v):
        return "nan"
    if v.is_integer() and abs(v) < 1e7:
        return str(int(v))
    return f"{v:.4g}"


def paren(v: float) -> str:
    """`num`, in parentheses when negative, for use after a multiplication sign."""
    s = num(v)
    return f"({s})" if s.startswith("-") else s


def join_terms(terms: Iterable[str], max_terms: int | None, sep: str = " + ") -> str:
    """Join terms; past `max_terms`, keep the first ones and say how many were left out."""
    terms = list(terms)
    if max_terms is not None and len(terms) > max_terms:
        left = len(terms) - max_terms
        return sep.join(terms[:max_terms]) + f"{sep}… ({left} more)"
    return sep.join(terms)


def cell(pos: tuple[int, ...]) -> str:
    """An index tuple as [a,b,c]."""
    return "[" + ",".join(str(i) for i in pos) + "]"


class Displayed:
    """Rich display in Jupyter: the finished trace as a picture and its steps as a table
    (cnnlab.notebook.rich, which needs no widget library)."""

    def _repr_html_(self) -> str:
        from ..notebook.rich import trace_html
        return trace_html(self)

    def _repr_png_(self) -> bytes:
        from ..notebook.rich import trace_png
        return trace_png(self)


@dataclass(frozen=True)
class WindowTrace(Displayed):
    """A window sliding over one image: the image (C, H, W), its padded copy, the
    (height, width) settings and the size check that passed. Conv forward and backward
    traces and the pooling trace hold these first, then their own fields."""

    input: np.ndarray
    padded: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    check: Check


@dataclass(frozen=True)
class ProductSum:
    """One number worked out as a sum of products (a conv output or gradient entry);
    `products` are exact (float32 x float32 fits a double), `value` is the engine's."""

    index: int
    products: tuple[float, ...]
    value: float

    @staticmethod
    def product_terms(left: Iterable[float], right: Iterable[float]) -> list[str]:
        """'a×b' for each pair, negative factors in parentheses."""
        return [f"{paren(a)}×{paren(b)}" for a, b in zip(left, right)]


class WindowLookup:
    """Which cells a forward trace's output cell reads, and which outputs an input cell
    feeds; shared by ConvTrace and PoolTrace (both have `steps` in raster order and
    `output`)."""

    def step_at(self, row: int, col: int):
        """The step that computes output cell (row, col)."""
        return self.steps[row * self.output.shape[1] + col]

    def receptive_field(self, row: int, col: int):
        """The padded-input cells (channel, row, col) that output cell (row, col) reads."""
        return self.step_at(row, col).positions

    def feeds(self, row: int, col: int) -> list[tuple[int, int]]:
        """The output cells whose window reads padded-input cell (row, col), any channel."""
        return self._feeds.get((row, col), [])

    @cached_property
    def _feeds(self) -> dict[tuple[int, int], list[tuple[int, int]]]:
        table: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for step in self.steps:
            for r, c in {p[1:] for p in step.positions}:
                table.setdefault((r, c), []).append(step.out_pos)
        return table
