"""Output sizes of a sliding window, with the arithmetic written out.

The one formula behind every convolution and pooling layer (PyTorch's, per axis)::

    out = floor((n + 2p - d(k-1) - 1) / s) + 1

`explain_output_size` fills in the user's numbers and, instead of raising, says
what is wrong with settings that have no answer, so a view can show the reason.

>>> output_size(5, 3, s=2, p=1)
3
>>> explain_output_size(5, 3, s=2, p=1).derivation
'floor((5 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 3'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..nn.geometry import IntOrPair, formula_and_size, pair, window_span

__all__ = ["IntOrPair", "pair", "SizeCheck", "explain_output_size", "output_size", "Check",
           "check_conv2d", "check_pool2d"]
AXES = ("height", "width")


@dataclass(frozen=True)
class SizeCheck:
    """One axis's output size, its derivation and any problems with the settings.

    `size` is None when the settings have no valid output; `problems` then says why.
    """

    axis: str
    size: int | None
    derivation: str
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def explain_output_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1,
                        ceil_mode: bool = False, axis: str = "") -> SizeCheck:
    """Derive the output size along one axis and explain settings that cannot work.

    Never raises for bad numbers: they come back as `problems`.

    >>> explain_output_size(3, 5).problems[0]
    'the kernel spans 5 cells (1*(5-1) + 1) but the input is only 3 cells (3 + 2*0)'
    """
    where = f"{axis} " if axis else ""
    problems: list[str] = []
    if n < 1:
        problems.append(f"the input {where}must be at least 1 (got {n})")
    if k < 1:
        problems.append(f"the kernel {where}must be at least 1 (got {k})")
    if s < 1:
        problems.append(f"the stride {where}must be at least 1 (got {s}): "
                        "the window has to move forward by a whole cell or more")
    if p < 0:
        problems.append(f"the padding {where}cannot be negative (got {p})")
    if d < 1:
        problems.append(f"the dilation {where}must be at least 1 (got {d}); "
                        "1 means the kernel taps touch, 2 leaves one-cell gaps")
    if problems:
        return SizeCheck(axis, None, "", tuple(problems))

    span = window_span(k, d)
    padded = n + 2 * p
    formula, size = formula_and_size(n, k, s, p, d, ceil_mode)
    inner = f"{n} + 2*{p} - {d}*({k}-1) - 1"
    text = f"{'ceil' if ceil_mode else 'floor'}(({inner}) / {s}) + 1 = {formula}"
    if 1 <= size < formula:  # PyTorch drops a last window that would start entirely in the right padding
        text += f", minus the last window (it would start in the padding) = {size}"
    if span > padded:
        problems.append(f"the kernel spans {span} cells ({d}*({k}-1) + 1) but the input {where}"
                        f"is only {padded} cells ({n} + 2*{p})")
    return SizeCheck(axis, size if not problems else None, text, tuple(problems))


def output_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1,
                ceil_mode: bool = False) -> int:
    """The output length of a sliding window: floor((n + 2p - d(k-1) - 1) / s) + 1.

    Raises ValueError with the explanation when the settings have no valid output.

    >>> output_size(28, 3, p=1), output_size(7, 2, s=2, ceil_mode=True)
    (28, 4)
    """
    check = explain_output_size(n, k, s, p, d, ceil_mode)
    if check.problems:
        raise ValueError("; ".join(check.problems))
    return check.size  # type: ignore[return-value]


@dataclass(frozen=True)
class Check:
    """The verdict on a whole conv/pool setting: output shape, derivations, problems.

    >>> c = check_conv2d((1, 5, 5), (3, 3), stride=2, padding=1)
    >>> c.ok, c.out_shape
    (True, (3, 3))
    """

    out_shape: tuple[int, int] | None
    derivations: tuple[str, str]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self) -> str:
        """All problems as one readable paragraph (empty when the settings are fine)."""
        return "\n".join(f"• {p}" for p in self.problems)

    def summary(self) -> str:
        """The two derivations (rows, then columns) on two lines."""
        return "\n".join(f"{axis}: {text}" for axis, text in zip(("rows", "cols"), self.derivations) if text)


def _check(in_hw: tuple[int, int], k: tuple[int, int], s: tuple[int, int], p: tuple[int, int],
           d: tuple[int, int], ceil_mode: bool, extra: list[str]) -> Check:
    axes = [explain_output_size(in_hw[i], k[i], s[i], p[i], d[i], ceil_mode, AXES[i]) for i in (0, 1)]
    problems = list(extra)
    for a in axes:
        problems += [q for q in a.problems if q not in problems]
    shape = (axes[0].size, axes[1].size) if not problems else None
    return Check(shape, (axes[0].derivation, axes[1].derivation), tuple(problems))  # type: ignore[arg-type]


def _safe_pairs(**kwargs: IntOrPair) -> tuple[dict[str, tuple[int, int]], list[str]]:
    out, problems = {}, []
    for name, value in kwargs.items():
        try:
            out[name] = pair(value, name)
        except ValueError as e:
            problems.append(str(e))
            out[name] = (1, 1)
    return out, problems


def check_conv2d(input_shape: Sequence[int], kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1,
                 kernel_channels: int | None = None) -> Check:
    """Check a conv setting for one (C, H, W) input without raising.

    `kernel_size` is (kh, kw) or an int; `kernel_channels`, if given, must equal C.

    >>> check_conv2d((3, 4, 4), 3, kernel_channels=1).problems[0]
    'the kernel has 1 channel(s) but the input has 3: a filter needs one slice per input channel'
    """
    c, h, w = (1, *input_shape) if len(input_shape) == 2 else tuple(input_shape)
    pairs, problems = _safe_pairs(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
    if kernel_channels is not None and kernel_channels != c:
        problems.insert(0, f"the kernel has {kernel_channels} channel(s) but the input has {c}: "
                           "a filter needs one slice per input channel")
    return _check((h, w), pairs["kernel_size"], pairs["stride"], pairs["padding"], pairs["dilation"],
                  False, problems)


def check_pool2d(input_shape: Sequence[int], kernel_size: IntOrPair, stride: IntOrPair | None = None,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
                 mode: str = "max") -> Check:
    """Check a pooling setting for one (C, H, W) or (H, W) input without raising.

    Besides the size rules, PyTorch requires padding <= kernel_size // 2, so that no
    window can lie wholly in the padding; only max pooling has a dilation.

    >>> check_pool2d((4, 4), 2, padding=2).problems[0][:40]
    'the padding height (2) is more than half'
    """
    h, w = tuple(input_shape)[-2:]
    pairs, problems = _safe_pairs(kernel_size=kernel_size, stride=kernel_size if stride is None else stride,
                                  padding=padding, dilation=dilation)
    k, p = pairs["kernel_size"], pairs["padding"]
    for i in (0, 1):
        if k[i] >= 1 and p[i] > k[i] // 2:
            problems.append(f"the padding {AXES[i]} ({p[i]}) is more than half the pooling window "
                            f"({k[i]} // 2 = {k[i] // 2}): a window could then hold only padding")
    if mode != "max" and pairs["dilation"] != (1, 1):
        problems.append(f"dilation applies only to max pooling; {mode} pooling has none (use 1)")
    return _check((h, w), k, pairs["stride"], p, pairs["dilation"], ceil_mode, problems)
