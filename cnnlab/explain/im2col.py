"""Convolution as one matrix product (im2col), and the transposed convolution as the
transposed matrix.

conv2d: unroll the input into a matrix X with one row per kernel tap (channel, i, j) and
one column per output cell (raster order): column n holds the window output cell n reads,
padding zeros included. The kernel flattened the same way is a row w, and w @ X (+ bias)
is the output as a row, which reshaped is the (Ho, Wo) map. cnnlab's CPU backend
computes the general convolution exactly so (im2col + one sgemm, rows in this order).

conv_transpose2d: the conv2d from the big grid to the small one has a matrix C with one
row per small cell (its window, holding the kernel's weights). The transposed
convolution multiplies by C transposed: output = Cᵀx, written as rows xᵀC. Row k of C is
input cell k's kernel stamp, so xᵀC adds up the stamps, each scaled by its input value
(col2im): the scatter reading, as a matrix.

The matrices come from the engine: X is `F.conv2d` with one-hot kernels (each copies one
tap), C is `F.conv_transpose2d` of one-hot inputs. The products are plain matrix
products, which the tests compare with `F.conv2d` and `F.conv_transpose2d`.

>>> m = conv2d_matrix([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])
>>> m.matrix.astype(int).tolist()
[[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]]
>>> m.output().tolist()
[[19.0, 25.0], [37.0, 43.0]]
>>> conv_transpose2d_matrix([[1, 2]], [[1, 1, 1]], stride=2).matrix.astype(int).tolist()
[[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..creation import tensor
from ..nn import functional as F
from ._common import as_image, cell, join_terms, num, paren
from .conv import ConvTrace, _filter_bank
from .conv_transpose import ConvTransposeTrace, _kernel_bank
from .scene import Panel, Scene
from .sizes import IntOrPair, check_conv2d, pair

Triple = tuple[int, int, int]
# Past this many matrix entries the picture has no readable cells (a 28x28 input unrolls
# to 9 x 784); the lab says so instead of drawing specks.
MAX_ENTRIES = 4_000


@dataclass(frozen=True)
class MatrixProduct:
    """`left` (K,) @ `matrix` (K, N) (+ `bias`) = the output as a row of N = Ho*Wo cells.

    kind 'conv': left is the kernel row, matrix the unrolled input X, `rows` the kernel
    tap (c, i, j) of each row; one step per column (output cell). kind 'transpose': left
    is the input as a row, matrix is C (row k = input cell k's kernel stamp), `rows` the
    input cell (c, i, j) of each row; one step per row (input cell), as the scatter.
    `support` (K, N) says where the matrix has an entry by position (zero values included):
    X's padding zeros and C's entries outside every stamp are not.
    """

    kind: str
    left: np.ndarray
    matrix: np.ndarray
    bias: float
    out_shape: tuple[int, int]
    rows: tuple[Triple, ...]
    support: np.ndarray

    @property
    def steps(self) -> int:
        return self.matrix.shape[1] if self.kind == "conv" else self.matrix.shape[0]

    def product(self, rows: int | None = None) -> np.ndarray:
        """left[:rows] @ matrix[:rows] without the bias, (N,) in float64 (each float32
        product is exact there): the running sums after `rows` rows."""
        k = len(self.rows) if rows is None else rows
        return self.left[:k].astype(np.float64) @ self.matrix[:k].astype(np.float64)

    def output(self) -> np.ndarray:
        """The whole product plus the bias, reshaped to the output grid, in float32."""
        return (self.product() + self.bias).astype(np.float32).reshape(self.out_shape)

    def reached(self, rows: int) -> np.ndarray:
        """(N,) bool: the output cells one of the first `rows` rows reaches."""
        return self.support[:rows].any(axis=0)


def _one_hot(n: int, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """n arrays of `shape`, array k holding a single 1 at flat position k."""
    return np.eye(n, dtype=dtype).reshape(n, *shape)


def unfold(input: Any, kernel_size: IntOrPair, stride: IntOrPair = 1, padding: IntOrPair = 0,
           dilation: IntOrPair = 1) -> np.ndarray:
    """The im2col matrix of one image (C, H, W): (C*kh*kw, Ho*Wo), row (c*kh + i)*kw + j
    holding what tap (i, j) of channel c meets at each output cell. Same as PyTorch's
    `F.unfold(x[None], ...)[0]`. Built by `F.conv2d` with one one-hot kernel per tap.

    >>> unfold([[1, 2, 3]], (1, 2)).tolist()
    [[1.0, 2.0], [2.0, 3.0]]
    """
    x = as_image(input)
    k, s, p, d = (pair(v, name) for v, name in ((kernel_size, "kernel_size"), (stride, "stride"),
                                                 (padding, "padding"), (dilation, "dilation")))
    check = check_conv2d(x.shape, k, s, p, d)
    if not check.ok:
        raise ValueError(check.message())
    taps = x.shape[0] * k[0] * k[1]
    picks = _one_hot(taps, (x.shape[0], *k), x.dtype)
    cols = F.conv2d(tensor(x[None]), tensor(picks), None, s, p, d).numpy()[0]
    return cols.reshape(taps, -1)


def conv2d_matrix(input: Any, weight: Any, bias: float | None = None, stride: IntOrPair = 1,
                  padding: IntOrPair = 0, dilation: IntOrPair = 1) -> MatrixProduct:
    """One filter's convolution as kernel_row @ unfold(input): `weight` (C, kh, kw) or (kh, kw)."""
    x = as_image(input)
    w = _filter_bank(weight, x.dtype)[0]
    if w.shape[0] != x.shape[0]:
        raise ValueError(f"the kernel has {w.shape[0]} channel slice(s) but the input has {x.shape[0]}")
    cols = unfold(x, w.shape[1:], stride, padding, dilation)
    out = check_conv2d(x.shape, w.shape[1:], stride, padding, dilation).out_shape
    rows = tuple(np.ndindex(*w.shape))
    real = unfold(np.ones_like(x), w.shape[1:], stride, padding, dilation) != 0  # False: a padding zero
    return MatrixProduct("conv", w.reshape(-1), cols, float(bias or 0.0), out, rows, real)  # type: ignore[arg-type]


def conv_transpose2d_matrix(input: Any, weight: Any, bias: float | None = None, stride: IntOrPair = 1,
                            padding: IntOrPair = 0, output_padding: IntOrPair = 0, dilation: IntOrPair = 1,
                            out_channel: int = 0) -> MatrixProduct:
    """The transposed convolution as input_row @ C: `weight` as `conv_transpose2d_trace`
    takes it; C's row k is `F.conv_transpose2d` of a one-hot input at cell k (its stamp)."""
    x = as_image(input)
    w = _kernel_bank(weight, x.dtype)
    n = x.size
    hot = tensor(_one_hot(n, x.shape, x.dtype))

    def stamps(kernel: np.ndarray) -> np.ndarray:
        y = F.conv_transpose2d(hot, tensor(np.ascontiguousarray(kernel)), None, stride, padding, output_padding,
                               1, dilation)
        return y.numpy()[:, out_channel]

    c = stamps(w)
    reach = stamps(np.ones_like(w)) != 0  # where each stamp lands, zero weights included
    return MatrixProduct("transpose", x.reshape(-1), c.reshape(n, -1), float(bias or 0.0),
                         c.shape[1:], tuple(np.ndindex(*x.shape)), reach.reshape(n, -1))  # type: ignore[arg-type]


def matrix_of(trace: Any) -> MatrixProduct:
    """The matrix reading of a forward conv trace or a transposed-conv trace."""
    if isinstance(trace, ConvTrace):
        return conv2d_matrix(trace.input, trace.kernel, trace.bias, trace.stride, trace.padding, trace.dilation)
    if isinstance(trace, ConvTransposeTrace):
        return conv_transpose2d_matrix(trace.input, trace.kernel, trace.bias, trace.stride, trace.padding,
                                       trace.output_padding, trace.dilation)
    raise TypeError("the matrix reading covers the forward convolution and the transposed convolution, "
                    f"not {type(trace).__name__}")


# ------------------------------------------------------------------ the picture

def _label(pos: Triple, channels: int) -> str:
    return cell(pos[1:] if channels == 1 else pos)


def matrix_scene(mp: MatrixProduct, done: int, max_terms: int | None = 12) -> Scene:
    """The matrix reading after `done` steps, one column of panels: the row vector, the
    matrix, their product as a row and that row reshaped to the output grid.

    conv: step n computes output cell n = kernel row · column n of X (the column is
    outlined, each entry noted with the weight it meets). transpose: step n adds row n of
    C (input cell n's stamp, noted ×x) times x[n] onto the product: the running sums.
    """
    total = mp.steps
    done = max(0, min(done, total))
    n_out = mp.matrix.shape[1]
    channels = len({r[0] for r in mp.rows})
    k, j = mp.matrix.shape[0], done - 1
    b = f" + bias {num(mp.bias)}" if mp.bias else ""
    if mp.kind == "conv":
        left = Panel("left", f"kernel as a row w (1×{k})", "matrix", mp.left[None].astype(np.float64))
        matrix = Panel("matrix", f"unrolled input X ({k}×{n_out}): a row per kernel tap, a column per output cell",
                       "matrix", mp.matrix.astype(np.float64))
        shown = np.arange(n_out) < done
        row = np.where(shown, mp.product() + mp.bias, np.nan)
        prod = Panel("product", f"w·X{b} = the output as a row (1×{n_out})", "matrix", row[None])
        left.mark("tap", [(0, t) for t in range(k)])
    else:
        left = Panel("left", f"input as a row xᵀ (1×{k})", "matrix", mp.left[None].astype(np.float64))
        matrix = Panel("matrix", f"C ({k}×{n_out}): row k = input cell k's kernel stamp on the output",
                       "matrix", mp.matrix.astype(np.float64))
        finished = done == total
        row = np.where(mp.reached(done) | finished, mp.product(done) + (mp.bias if finished else 0.0), np.nan)
        prod = Panel("product", f"xᵀC{b if finished else ''} = the output as a row "
                     f"({'running sums' if not finished else f'1×{n_out}'})", "matrix", row[None])
    # the grid beside a squarish matrix, below a wide one (which needs the whole width)
    out = Panel("output", f"reshaped to the output grid ({mp.out_shape[0]}×{mp.out_shape[1]})",
                "output" if n_out <= 2 * k else "matrix", row.reshape(mp.out_shape))
    # zeros by position: padding (X), off every stamp (C)
    matrix.mark("gap", [(int(r), int(c)) for r, c in np.argwhere(~mp.support)])
    caption, status = "", f"step {done} of {total}"
    if done:
        if mp.kind == "conv":
            matrix.mark("window", [(t, j) for t in range(k)])
            matrix.notes.update({(t, j): float(w) for t, w in enumerate(mp.left)})
            hit = [j]
            terms = [f"{paren(w)}×{paren(v)}" for w, v in zip(mp.left, mp.matrix[:, j])]
            oc = divmod(j, mp.out_shape[1])
            caption = f"y{cell(oc)} = w · X[:,{j}] = {join_terms(terms, max_terms)}{b} = {num(row[j])}"
            status += f": output{cell(oc)} = column {j}"
            prod.mark("current", [(0, j)])
        else:
            hit = [int(q) for q in np.flatnonzero(mp.support[j])]
            matrix.mark("window", [(j, q) for q in hit])
            matrix.notes.update({(j, q): float(mp.left[j]) for q in hit})
            left.mark("current", [(0, j)])
            prod.mark("target", [(0, q) for q in hit])
            xs = f"x{_label(mp.rows[j], channels)}"
            caption = (f"row {j} of C is {xs}'s stamp: xᵀC adds {paren(mp.left[j])} × row {j} onto "
                       f"{len(hit)} output cell(s)" if hit else f"{xs}'s stamp lies wholly in the cropped border")
            status += f": input{_label(mp.rows[j], channels)} = row {j}"
        out.mark("current" if mp.kind == "conv" else "target", [divmod(q, mp.out_shape[1]) for q in hit])
    return Scene([left, matrix, prod, out], caption, status, "", done, total)
