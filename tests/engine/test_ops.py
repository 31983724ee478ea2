"""Every Tensor op: forward against NumPy, gradients against finite differences (float64);
and the tape's rules (no_grad, detach, accumulation, retain_graph, dtypes)."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab as torch

from helpers import check_grad, distinct

rng = np.random.default_rng(0)


def r(*shape):
    return rng.standard_normal(shape)


def pos(*shape):
    return rng.uniform(0.5, 2.0, shape)


# ----------------------------------------------------------------- arithmetic
BINARY = [
    ("add", lambda a, b: a + b, np.add),
    ("sub", lambda a, b: a - b, np.subtract),
    ("mul", lambda a, b: a * b, np.multiply),
    ("div", lambda a, b: a / b, np.divide),
]
SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 4), (3, 1)), ((1, 4), (3, 1)), ((1,), (2, 3)),
          ((2, 1, 4), (1, 3, 1))]


@pytest.mark.parametrize("name, op, ref", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("sa, sb", SHAPES)
def test_binary_ops_with_broadcasting(name, op, ref, sa, sb):
    """The gradient of a broadcast operand is summed back down to its own shape."""
    a, b = r(*sa), pos(*sb)  # positive b keeps division away from 0
    check_grad(op, a, b, ref=ref)


@pytest.mark.parametrize("op, ref", [
    (lambda a: a + 2.5, lambda a: a + 2.5),
    (lambda a: 2.5 + a, lambda a: 2.5 + a),
    (lambda a: a - 1.5, lambda a: a - 1.5),
    (lambda a: 1.5 - a, lambda a: 1.5 - a),
    (lambda a: a * 3.0, lambda a: a * 3.0),
    (lambda a: 3.0 * a, lambda a: 3.0 * a),
    (lambda a: a / 4.0, lambda a: a / 4.0),
    (lambda a: 4.0 / a, lambda a: 4.0 / a),
    (lambda a: -a, np.negative),
    (lambda a: a ** 3, lambda a: a ** 3),
    (lambda a: a ** 2.5, lambda a: a ** 2.5),
    (lambda a: a ** -1.5, lambda a: a ** -1.5),
    (lambda a: a.pow(0.5), np.sqrt),
    (lambda a: a.sqrt(), np.sqrt),
    (lambda a: 2.0 ** a, lambda a: 2.0 ** a),
    (lambda a: a.exp(), np.exp),
    (lambda a: a.log(), np.log),
    (lambda a: torch.exp(a), np.exp),
])
def test_unary_and_scalar_ops(op, ref):
    check_grad(op, pos(3, 4), ref=ref)


def test_tensor_power_tensor():
    check_grad(lambda a, b: a ** b, pos(3, 4), r(3, 4), ref=np.power)


def test_abs_and_clamp():
    x = distinct((4, 5), spread=2.0)  # no value at 0 or on a clamp bound
    check_grad(lambda a: a.abs(), x, ref=np.abs)
    check_grad(lambda a: a.clamp(-0.51, 0.73), x, ref=lambda a: np.clip(a, -0.51, 0.73))
    check_grad(lambda a: a.clamp(min=0.13), x, ref=lambda a: np.maximum(a, 0.13))
    check_grad(lambda a: a.clamp(max=-0.27), x, ref=lambda a: np.minimum(a, -0.27))
    check_grad(lambda a: torch.clamp(a, -1.01, 1.01), x, ref=lambda a: np.clip(a, -1.01, 1.01))


# -------------------------------------------------------------------- matmul
@pytest.mark.parametrize("sa, sb", [
    ((4,), (4,)),              # dot product
    ((3, 4), (4, 5)),
    ((4,), (4, 5)),            # vector @ matrix
    ((3, 4), (4,)),            # matrix @ vector
    ((2, 3, 4), (4, 5)),       # batch @ matrix: b's gradient sums over the batch
    ((3, 4), (2, 4, 5)),       # matrix @ batch
    ((2, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (3, 4, 5)),  # broadcast batch dimensions
    ((2, 3, 4), (4,)),
    ((4,), (2, 4, 5)),
])
def test_matmul(sa, sb):
    check_grad(lambda a, b: a @ b, r(*sa), r(*sb), ref=np.matmul)


def test_matmul_spellings():
    a, b = r(3, 4), r(4, 2)
    check_grad(lambda a, b: a.matmul(b), a, b, ref=np.matmul)
    check_grad(lambda a, b: torch.mm(a, b), a, b, ref=np.matmul)
    check_grad(lambda a: a.t(), a, ref=np.transpose)


# -------------------------------------------------------------- reductions
@pytest.mark.parametrize("dim", [None, 0, 1, -1, (0, 2), (1, -1)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_and_mean(dim, keepdim):
    x = r(2, 3, 4)
    axis = dim if not isinstance(dim, list) else tuple(dim)
    if dim is None:
        check_grad(lambda a: a.sum(), x, ref=np.sum)
        check_grad(lambda a: a.mean(), x, ref=np.mean)
        return
    check_grad(lambda a: a.sum(dim, keepdim=keepdim), x, ref=lambda a: a.sum(axis=axis, keepdims=keepdim))
    check_grad(lambda a: a.mean(dim, keepdim=keepdim), x, ref=lambda a: a.mean(axis=axis, keepdims=keepdim))


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_and_min_along_a_dim(dim, keepdim):
    x = distinct((2, 3, 4))
    check_grad(lambda a: a.max(dim, keepdim=keepdim).values, x,
               ref=lambda a: a.max(axis=dim, keepdims=keepdim))
    check_grad(lambda a: a.min(dim, keepdim=keepdim)[0], x,
               ref=lambda a: a.min(axis=dim, keepdims=keepdim))
    t = torch.tensor(x)
    np.testing.assert_array_equal(t.max(dim, keepdim=keepdim).indices.numpy(), x.argmax(axis=dim).reshape(
        t.max(dim, keepdim=keepdim).values.shape))
    np.testing.assert_array_equal(t.argmax(dim).numpy(), x.argmax(axis=dim))


def test_max_of_everything():
    x = distinct((3, 4))
    check_grad(lambda a: a.max(), x, ref=np.max)
    check_grad(lambda a: a.min(), x, ref=np.min)
    assert torch.tensor(x).argmax().item() == int(x.argmax())


def test_var_and_std():
    x = r(3, 5)
    check_grad(lambda a: a.var(), x, ref=lambda a: a.var(ddof=1))
    check_grad(lambda a: a.var(1, unbiased=False), x, ref=lambda a: a.var(axis=1))
    check_grad(lambda a: a.std(0, keepdim=True), x, ref=lambda a: a.std(axis=0, ddof=1, keepdims=True))


# ------------------------------------------------------------------- shapes
@pytest.mark.parametrize("op, ref", [
    (lambda a: a.view(4, 6), lambda a: a.reshape(4, 6)),
    (lambda a: a.view(-1, 3), lambda a: a.reshape(-1, 3)),
    (lambda a: a.view((2, 12)), lambda a: a.reshape(2, 12)),
    (lambda a: a.reshape(3, 2, 4), lambda a: a.reshape(3, 2, 4)),
    (lambda a: a.flatten(), lambda a: a.reshape(-1)),
    (lambda a: a.flatten(1), lambda a: a.reshape(2, 12)),
    (lambda a: torch.flatten(a, 0, 1), lambda a: a.reshape(6, 4)),
    (lambda a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
    (lambda a: a.permute((1, 2, 0)), lambda a: a.transpose(1, 2, 0)),
    (lambda a: a.transpose(0, 2), lambda a: a.swapaxes(0, 2)),
    (lambda a: a.transpose(-1, -2), lambda a: a.swapaxes(-1, -2)),
    (lambda a: a.unsqueeze(1), lambda a: a[:, None]),
    (lambda a: a.unsqueeze(-1), lambda a: a[..., None]),
    (lambda a: a.view(2, 1, 3, 1, 4).squeeze(), lambda a: a),
    (lambda a: a.view(2, 1, 3, 4).squeeze(1), lambda a: a),
    (lambda a: a.view(2, 1, 3, 4).squeeze(0), lambda a: a.reshape(2, 1, 3, 4)),  # size 2: unchanged
    (lambda a: a.T, lambda a: a.T),
    (lambda a: a.expand(5, 2, 3, 4), lambda a: np.broadcast_to(a, (5, 2, 3, 4))),
])
def test_shape_ops(op, ref):
    check_grad(op, r(2, 3, 4), ref=ref)


def test_permute_then_view_reads_in_the_new_order():
    # a transposed tensor's view must follow its logical (row-major) order, as PyTorch's reshape
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(torch.tensor(x).t().reshape(6).numpy(), x.T.reshape(6))


# ----------------------------------------------------------------- indexing
@pytest.mark.parametrize("index", [
    1, -1, (0, 2), slice(1, 3), (slice(None), 1), (Ellipsis, 0), (slice(None, None, 2), slice(1, None)),
    (1, slice(0, 3), -2), (None, 1), [2, 0], ([0, 2], [1, 3]), [1, 1, 3, 1],   # repeated rows accumulate
    (slice(None), [3, 0, 3]),
], ids=str)
def test_indexing(index):
    check_grad(lambda a: a[index], r(4, 5, 2), ref=lambda a: a[index])


def test_indexing_with_tensors_and_masks():
    x = r(4, 5)
    idx = np.array([3, 3, 0])
    check_grad(lambda a: a[torch.tensor(idx)], x, ref=lambda a: a[idx])
    mask = x > 0
    check_grad(lambda a: a[torch.tensor(mask)], x, ref=lambda a: a[mask])


def test_repeated_index_gradient_counts_every_use():
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    x[[0, 2, 2, 2]].sum().backward()
    assert x.grad.numpy().tolist() == [1, 0, 3]


# ------------------------------------------------------------- cat / stack / where
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_and_stack(dim):
    a, b, c = r(2, 3), r(2, 3), r(2, 3)
    check_grad(lambda a, b, c: torch.cat([a, b, c], dim), a, b, c, ref=lambda *t: np.concatenate(t, dim))
    check_grad(lambda a, b, c: torch.stack([a, b, c], dim), a, b, c, ref=lambda *t: np.stack(t, dim))


def test_cat_of_different_sizes():
    a, b = r(2, 3), r(2, 1)
    check_grad(lambda a, b: torch.cat((a, b), 1), a, b, ref=lambda a, b: np.concatenate((a, b), 1))


def test_where():
    a, b = r(3, 4), r(3, 4)
    cond = a > b
    check_grad(lambda a, b: torch.where(torch.tensor(cond), a, b), a, b, ref=lambda a, b: np.where(cond, a, b))
    # broadcast operand and a scalar
    c = r(4)
    check_grad(lambda a, c: torch.where(torch.tensor(cond), a, c), a, c, ref=lambda a, c: np.where(cond, a, c))
    check_grad(lambda a: torch.where(torch.tensor(cond), a, 0.0), a, ref=lambda a: np.where(cond, a, 0.0))


def test_a_long_expression():
    """The tape through many ops at once, as micrograd's tests do."""
    def expr(a, b, c):
        h = ((a @ b) * 0.5).exp() + c.unsqueeze(0)
        z = (h / (1.0 + h.abs())).view(-1)[[0, 3, 3, 5]]
        return (z * z).sum() - h.mean(0).max()

    def ref(a, b, c):
        h = np.exp((a @ b) * 0.5) + c[None]
        z = (h / (1.0 + np.abs(h))).reshape(-1)[[0, 3, 3, 5]]
        return (z * z).sum() - h.mean(0).max()

    check_grad(expr, r(2, 3), r(3, 4), r(4), ref=ref)


# ------------------------------------------------------------------ the tape
def test_no_grad_stops_recording():
    x = torch.ones(3, requires_grad=True)
    with torch.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert (x * 2).requires_grad  # recording resumes after the block

    @torch.no_grad()
    def double(t):
        return t * 2

    assert not double(x).requires_grad
    assert torch.is_grad_enabled()


def test_detach_cuts_the_graph():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    z = y.detach()
    assert not z.requires_grad and z.is_leaf
    np.testing.assert_array_equal(z.numpy(), [3, 6])
    (y * z).sum().backward()   # z is a constant: d/dx (3x * 3x_const) = 3 * z
    np.testing.assert_array_equal(x.grad.numpy(), [9, 18])


def test_gradients_accumulate_across_backward_calls():
    x = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, -4])
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5, -1])


def test_a_tensor_used_twice_gets_both_contributions():
    x = torch.tensor([3.0], requires_grad=True)
    y = x * x + x   # dy/dx = 2x + 1 = 7
    y.backward()
    assert x.grad.item() == 7


def test_each_leaf_gets_its_own_gradient_storage():
    a = torch.ones(3, requires_grad=True)
    b = torch.ones(3, requires_grad=True)
    (a + b).sum().backward()
    with torch.no_grad():
        a.grad.mul_(10)   # e.g. gradient clipping scales grads in place
    np.testing.assert_array_equal(b.grad.numpy(), [1, 1, 1])


def test_backward_twice_without_retain_graph_raises():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-6)
    np.testing.assert_allclose(first, np.exp([1, 2]) * (1 + np.array([1, 2])), rtol=1e-6)


def test_backward_needs_a_scalar_or_a_gradient():
    x = torch.ones(2, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()
    with pytest.raises(RuntimeError):
        torch.ones(2).sum().backward()   # nothing requires grad


def test_retain_grad_on_an_intermediate():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_array_equal(h.grad.numpy(), [6, 12])
    np.testing.assert_array_equal(x.grad.numpy(), [18, 36])


def test_in_place_change_of_a_recorded_leaf_is_refused():
    x = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        x += 1
    with torch.no_grad():
        x -= 1
    np.testing.assert_array_equal(x.numpy(), [0, 0])


def test_cast_carries_the_gradient_back_in_the_original_dtype():
    x = torch.tensor([1.0, 2.0], requires_grad=True)       # float32
    (x.double() * torch.tensor([3.0, 4.0], dtype=torch.float64)).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3, 4])


# -------------------------------------------------------------------- dtypes
def test_float32_is_the_default():
    assert torch.tensor([1.0, 2.0]).dtype == np.float32
    assert torch.tensor(1.5).dtype == np.float32
    assert torch.zeros(2).dtype == torch.ones(2).dtype == torch.randn(2).dtype == np.float32
    assert torch.arange(9.0).dtype == np.float32
    assert torch.arange(9).dtype == np.int64 and torch.tensor([1, 2]).dtype == np.int64
    x = torch.tensor([1.0], requires_grad=True)
    assert (x * 2.5 + 1).dtype == np.float32
    assert (x / 3).exp().dtype == np.float32


def test_float64_is_preserved():
    a = np.array([1.0, 2.0])
    x = torch.tensor(a, requires_grad=True)
    assert x.dtype == np.float64 and torch.from_numpy(a).dtype == np.float64
    assert torch.zeros(2, dtype=torch.float64).dtype == np.float64
    y = ((x * 2.5 + 1) / 3).exp().log() ** 2
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float64
    assert torch.tensor([1.0]).double().dtype == np.float64


def test_from_numpy_shares_memory():
    a = np.zeros(3, np.float32)
    t = torch.from_numpy(a)
    a[1] = 5
    assert t.numpy().tolist() == [0, 5, 0]


def test_item_shape_and_size():
    t = torch.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and t.size(1) == 3 and t.size() == (2, 3, 4)
    assert t.numel() == 24 and t.ndim == t.dim() == 3
    assert torch.tensor([[2.5]]).item() == 2.5
    with pytest.raises(ValueError):
        t.item()


def test_zero_dim_tensors():
    assert torch.tensor(2.0).shape == ()
    assert torch.tensor(np.float64(2.0)).shape == ()
    assert torch.from_numpy(np.array(2.0)).shape == ()
    assert torch.tensor([1.0, 2.0]).sum().shape == ()
