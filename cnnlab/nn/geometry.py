"""The geometry of a sliding window, in one place: int-or-pair arguments and the
output-size rule. `nn` layers, `nn.functional`, `explain` and `data.transforms` all use it.

Along one axis a window of `kernel` taps, `dilation` apart, slides over an input of
`n` cells padded by `padding` on each side, `stride` cells at a time::

    out = floor((n + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1

A transposed convolution runs that map backwards: each of the n input cells scatters a
window onto an output laid out `stride` apart, then `padding` is cropped from each side
and `output_padding` extra cells are kept at the end (to pick one of the `stride` sizes
that the convolution would map back to n)::

    out = (n - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1

>>> pair(3), pair((2, 1))
((3, 3), (2, 1))
>>> conv_output_size(28, 3, p=1), conv_output_size(7, 2, s=2, ceil_mode=True)
(28, 4)
>>> conv_transpose_output_size(3, 3, s=2), conv_transpose_output_size(3, 3, s=2, p=1, output_padding=1)
(7, 6)
"""
from __future__ import annotations

import numbers
from typing import Callable, Sequence

IntOrPair = int | Sequence[int]


def pair(value: IntOrPair, what: str = "value", minimum: int | None = None,
         error: Callable[[str], Exception] = ValueError) -> tuple[int, int]:
    """(value, value) for an int, the two ints of a pair; anything else, or a number below
    `minimum`, raises `error(message)` naming `what` (layers pass a LayerError factory)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        result = (int(value), int(value))
    else:
        try:
            items = tuple(value)  # type: ignore[arg-type]
        except TypeError:
            raise error(f"{what} must be an int or a pair of ints, got {value!r}") from None
        if len(items) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                      for v in items):
            raise error(f"{what} must be an int or a pair of ints, got {value!r}")
        result = (int(items[0]), int(items[1]))
    if minimum is not None and min(result) < minimum:
        kind = "positive" if minimum > 0 else "non-negative"
        raise error(f"{what} must be {kind}, got {value!r}")
    return result


def window_span(k: int, d: int = 1) -> int:
    """How many input cells one window covers: d*(k-1) + 1."""
    return d * (k - 1) + 1


def conv_output_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1, ceil_mode: bool = False) -> int:
    """floor((n + 2p - d(k-1) - 1) / s) + 1, or with ceil as pooling's ceil_mode (PyTorch's
    rule: a last window that would start in the right padding is dropped). 0 when the
    window does not fit."""
    return formula_and_size(n, k, s, p, d, ceil_mode)[1]


def formula_and_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1,
                     ceil_mode: bool = False) -> tuple[int, int]:
    """(the formula's value as written, the output size). They differ only when the window
    does not fit (the formula gives 0 or less, the size is 0) or when ceil_mode drops a last
    window; `explain` shows the first and uses the second.

    >>> formula_and_size(3, 5), formula_and_size(4, 1, s=2, ceil_mode=True)
    ((-1, 0), (3, 2))
    """
    room = n + 2 * p - window_span(k, d)  # how far the window can move
    formula = (-(-room // s) if ceil_mode else room // s) + 1
    if room < 0:
        return formula, 0
    if ceil_mode and (formula - 1) * s >= n + p:  # the last window must start inside the input or left padding
        return formula, formula - 1
    return formula, formula


def conv_transpose_output_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1,
                               output_padding: int = 0) -> int:
    """(n-1)s - 2p + d(k-1) + output_padding + 1: a transposed convolution's output length
    (PyTorch's rule; 0 or less means the padding crops away everything)."""
    return (n - 1) * s - 2 * p + window_span(k, d) + output_padding
