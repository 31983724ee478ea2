"""The last PyTorch-API gaps the tutorial corpus found (issue 13): normal / bmm / baddbmm /
einsum / sin ... meshgrid, Tensor.__format__, the graph's next_functions, Generator,
BatchNorm on an empty batch, optimizer steps as in-place changes, fill_ on leaves, prod's
gradient and full's dtype. Each is checked against hand-worked values or float64 finite
differences, and against PyTorch where it is installed."""
from __future__ import annotations

import re

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as nn
from cnnlab.utils.data import DataLoader, TensorDataset, random_split

from helpers import check_grad

try:
    import torch
except ImportError:  # CI has no torch: the hand-worked halves still run
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
RNG = np.random.default_rng(13)


# ------------------------------------------------------------------------------ normal
def test_normal_has_pytorchs_four_call_forms():
    assert cnnlab.normal(0, 1, (3, 3, 3)).shape == (3, 3, 3)                   # d2l's channels.md
    assert cnnlab.normal(0.0, 1.0, size=(2,)).dtype == cnnlab.float32
    t = cnnlab.normal(2.0, 0.5, (2, 2), dtype=cnnlab.float64, requires_grad=True)
    assert t.dtype == cnnlab.float64 and t.requires_grad and t.is_leaf
    assert cnnlab.normal(cnnlab.zeros(2, 1), cnnlab.ones(3)).shape == (2, 3)    # broadcast
    assert cnnlab.normal(cnnlab.zeros(4, dtype=cnnlab.float64), 2.0).dtype == cnnlab.float64
    assert cnnlab.normal(1.0, cnnlab.ones(4)).shape == (4,)
    assert cnnlab.normal(mean=cnnlab.zeros(2), std=1.0).shape == (2,)
    with pytest.raises(RuntimeError, match="std >= 0.0"):
        cnnlab.normal(0.0, -1.0, (2,))
    with pytest.raises(RuntimeError, match="std >= 0.0"):
        cnnlab.normal(cnnlab.zeros(2), cnnlab.tensor([1.0, -1.0]))
    with pytest.raises(TypeError, match="needs a size"):
        cnnlab.normal(0.0, 1.0)


def test_normal_draws_mean_plus_std_times_the_generators_standard_normals():
    g = cnnlab.Generator().manual_seed(7)
    mean, std = np.array([1.0, -2.0, 3.0], np.float32), np.array([0.5, 2.0, 0.0], np.float32)
    got = cnnlab.normal(cnnlab.tensor(mean), cnnlab.tensor(std), generator=g).numpy()
    z = np.random.default_rng(7).normal(0.0, 1.0, 3).astype(np.float32)
    np.testing.assert_allclose(got, std * z + mean, rtol=1e-6)
    assert got[2] == 3.0                                                        # std 0: the mean itself
    big = cnnlab.normal(2.0, 3.0, (40000,), generator=cnnlab.Generator().manual_seed(1)).numpy()
    assert abs(big.mean() - 2.0) < 0.05 and abs(big.std() - 3.0) < 0.05


def test_normal_passes_a_zero_gradient_to_mean_and_std_as_pytorch():
    m = cnnlab.zeros(3, requires_grad=True)
    s = cnnlab.ones(3, requires_grad=True)
    out = cnnlab.normal(m, s)
    assert out.grad_fn is not None
    out.sum().backward()
    np.testing.assert_array_equal(m.grad.numpy(), 0.0)
    np.testing.assert_array_equal(s.grad.numpy(), 0.0)


def test_normal_in_place_uses_the_generator_and_refuses_a_leaf_outside_no_grad():
    a = cnnlab.zeros(5).normal_(1.0, 2.0, generator=cnnlab.Generator().manual_seed(3))
    expected = np.random.default_rng(3).normal(1.0, 2.0, 5).astype(np.float32)
    np.testing.assert_allclose(a.numpy(), expected, rtol=1e-6)
    w = cnnlab.zeros(3, requires_grad=True)
    for change in (lambda: w.normal_(), lambda: w.uniform_(), lambda: w.fill_(1.0), lambda: w.zero_()):
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            change()
    with cnnlab.no_grad():
        w.fill_(2.0)
        w.normal_()
    assert w.requires_grad and w.is_leaf and w._version == 2
    nn.init.constant_(w, 0.5)                          # nn.init works outside no_grad, as PyTorch's
    np.testing.assert_array_equal(w.numpy(), 0.5)
    layer = nn.Linear(3, 2)
    layer.reset_parameters()
    assert layer.weight.requires_grad and np.abs(layer.weight.numpy()).max() <= 1 / np.sqrt(3)


@needs_torch
def test_normal_forms_match_pytorchs_shapes_dtypes_and_gradients():
    cases = [((0, 1, (3, 3)), {}), ((0.0, 1.0), {"size": (2,)}), ((2.0, 0.5, (2,)), {"dtype": "float64"})]
    for args, kw in cases:
        mine = cnnlab.normal(*args, **{k: getattr(cnnlab, v) if k == "dtype" else v for k, v in kw.items()})
        ref = torch.normal(*args, **{k: getattr(torch, v) if k == "dtype" else v for k, v in kw.items()})
        assert tuple(mine.shape) == tuple(ref.shape) and str(mine.dtype) == str(ref.dtype).split(".")[1]
    mine = cnnlab.normal(cnnlab.zeros(2, 1, requires_grad=True), cnnlab.ones(3))
    ref = torch.normal(torch.zeros(2, 1, requires_grad=True), torch.ones(3))
    assert tuple(mine.shape) == tuple(ref.shape) and mine.requires_grad == ref.requires_grad


# -------------------------------------------------------------------- batched products
def test_bmm_and_baddbmm_values_and_gradients():
    a, b, c = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((2, 4, 5)), RNG.standard_normal((2, 3, 5))
    check_grad(lambda x, y: cnnlab.bmm(x, y), a, b, ref=lambda x, y: np.einsum("bij,bjk->bik", x, y))
    check_grad(lambda i, x, y: cnnlab.baddbmm(i, x, y, beta=0.5, alpha=2.0), c, a, b,
               ref=lambda i, x, y: 0.5 * i + 2.0 * np.einsum("bij,bjk->bik", x, y))
    nan_input = cnnlab.full((2, 3, 5), float("nan"))
    out = cnnlab.baddbmm(nan_input, cnnlab.tensor(a), cnnlab.tensor(b), beta=0)   # beta 0: input not read
    assert np.isfinite(out.numpy()).all()
    with pytest.raises(RuntimeError, match="3D"):
        cnnlab.bmm(cnnlab.ones(3, 4), cnnlab.ones(4, 5))
    with pytest.raises(RuntimeError, match="batch2"):
        cnnlab.bmm(cnnlab.ones(2, 3, 4), cnnlab.ones(3, 4, 5))


@pytest.mark.parametrize("equation, shapes", [
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("ij,jk", [(3, 4), (4, 2)]), ("ij->", [(3, 4)]),
    ("ij,j->i", [(3, 4), (4,)]), ("i,j->ij", [(3,), (2,)]), ("ijk->ik", [(2, 3, 4)]), ("ij->ji", [(2, 3)]),
    ("ij,kj->", [(2, 3), (4, 3)]),
])
def test_einsum_values_and_gradients(equation, shapes):
    arrays = [RNG.standard_normal(s) for s in shapes]
    check_grad(lambda *ts: cnnlab.einsum(equation, *ts), *arrays, ref=lambda *xs: np.einsum(equation, *xs))


def test_einsum_refuses_a_gradient_it_cannot_give_but_computes_the_value():
    x = cnnlab.tensor(np.arange(9.0).reshape(3, 3), requires_grad=True)
    t = cnnlab.einsum("ii->", x)
    assert t.item() == 12.0
    with pytest.raises(RuntimeError, match="repeated letter"):
        t.backward()
    assert cnnlab.einsum("...ij->...ji", cnnlab.ones(2, 3, 4)).shape == (2, 4, 3)


@needs_torch
def test_bmm_einsum_gradients_match_pytorch():
    a, b = RNG.standard_normal((2, 3, 4)).astype(np.float32), RNG.standard_normal((2, 4, 5)).astype(np.float32)
    for f in (lambda m, x, y: m.bmm(x, y), lambda m, x, y: m.einsum("bij,bjk->bik", x, y),
              lambda m, x, y: m.baddbmm(m.ones(2, 3, 5), x, y, beta=0.5, alpha=2)):
        xs = [cnnlab.tensor(a, requires_grad=True), cnnlab.tensor(b, requires_grad=True)]
        ts = [torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)]
        f(cnnlab, *xs).sum().backward()
        f(torch, *ts).sum().backward()
        for x, t in zip(xs, ts):
            np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- d2l's other aliases
def test_sin_cos_sinh_cosh_and_meshgrid():
    x = RNG.standard_normal((2, 3))
    for name in ("sin", "cos", "sinh", "cosh"):
        check_grad(getattr(cnnlab, name), x, ref=getattr(np, name))
    assert cnnlab.sin(cnnlab.arange(3)).dtype == cnnlab.float32                  # ints become floats
    a, b = cnnlab.tensor([1.0, 2.0, 3.0]), cnnlab.tensor([4.0, 5.0])
    for indexing in ("ij", "xy"):
        got = cnnlab.meshgrid(a, b, indexing=indexing)
        for g, e in zip(got, np.meshgrid(a.numpy(), b.numpy(), indexing=indexing)):
            np.testing.assert_array_equal(g.numpy(), e)
    check_grad(lambda u, v: cnnlab.meshgrid(u, v)[0] * cnnlab.meshgrid(u, v)[1], RNG.standard_normal(3),
               RNG.standard_normal(2), ref=lambda u, v: u[:, None] * v[None, :])


# ------------------------------------------------------------------------- __format__
def test_format_of_a_0d_tensor_is_its_number_and_others_are_str():
    assert f"{cnnlab.tensor([1.25, 2.5]).sum():.3f}" == "3.750"                  # d2l's conv-layer.md
    assert f"{cnnlab.tensor(3):5d}|" == "    3|"
    assert f"{cnnlab.tensor(2.5, requires_grad=True):.1f}" == "2.5"
    t = cnnlab.tensor([1.0, 2.0])
    assert f"{t}" == str(t) and format(t, "") == str(t)
    with pytest.raises(TypeError, match="0-d"):
        f"{t:.2f}"


@needs_torch
def test_format_matches_pytorch():
    for value, spec in ((3.14159, ".3f"), (3, "d"), (3, "5"), (2.5, ""), (1e-7, ".2e"), (True, "")):
        assert format(cnnlab.tensor(value), spec) == format(torch.tensor(value), spec)


# --------------------------------------------------------------------- the graph's nodes
def test_next_functions_walks_the_graph_back_to_the_leaves():
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    loss = nn.MSELoss()(net(cnnlab.randn(1, 4)), cnnlab.zeros(1, 2))
    seen, node, leaves = [], loss.grad_fn, []
    stack = [node]
    while stack:
        n = stack.pop()
        seen.append(n.name())
        for nxt, index in n.next_functions:
            assert index == 0
            if isinstance(nxt, cnnlab.autograd.AccumulateGrad):
                leaves.append(nxt.variable)
                assert nxt.next_functions == () and nxt.name() == "torch::autograd::AccumulateGrad"
            elif nxt is not None:
                stack.append(nxt)
    assert {id(p) for p in net.parameters()} == {id(v) for v in leaves}
    assert "ReluBackward0" in seen and all(re.fullmatch(r"\w+Backward0", s) for s in seen)
    assert loss.grad_fn is loss.grad_fn


def test_a_constant_input_shows_as_none_as_in_pytorch():
    x = cnnlab.ones(2, requires_grad=True)
    y = x * 2
    (first, i), (second, j) = y.grad_fn.next_functions
    assert first.variable is x and second is None and i == j == 0
    assert repr(y).endswith("grad_fn=<MulBackward0>)")


@needs_torch
def test_node_names_and_edges_match_pytorch_for_the_common_ops():
    def graph(m, x, w):
        return [(lambda: x * 2), (lambda: x + w), (lambda: x.exp()), (lambda: m.relu(x)), (lambda: x - w),
                (lambda: x / w), (lambda: x.sum()), (lambda: m.cat([x, w]))]

    for lib in (cnnlab, torch):
        lib.x = lib.tensor([1.0, 2.0], requires_grad=True)
        lib.w = lib.tensor([3.0, 4.0])
    ours = [f() for f in graph(cnnlab, cnnlab.x, cnnlab.w)]
    theirs = [f() for f in graph(torch, torch.x, torch.w)]
    for a, b in zip(ours, theirs):
        assert a.grad_fn.name() == b.grad_fn.name()
        assert [n is None for n, _ in a.grad_fn.next_functions] == [n is None for n, _ in b.grad_fn.next_functions]


# -------------------------------------------------------------------------- Generator
def test_generator_streams_are_repeatable_and_leave_the_global_one_alone():
    g = cnnlab.Generator()
    assert g.manual_seed(42) is g and g.initial_seed() == 42

    def draws(gen):
        return np.concatenate([cnnlab.randn(3, generator=gen).numpy(), cnnlab.rand(2, generator=gen).numpy(),
                               cnnlab.randint(0, 9, (3,), generator=gen).numpy(),
                               cnnlab.randperm(4, generator=gen).numpy(),
                               cnnlab.normal(0.0, 1.0, (2,), generator=gen).numpy()])

    cnnlab.manual_seed(0)
    first = draws(g)
    global_after = cnnlab.randn(2).numpy()
    cnnlab.manual_seed(0)
    np.testing.assert_array_equal(draws(cnnlab.Generator().manual_seed(42)), first)
    np.testing.assert_array_equal(cnnlab.randn(2).numpy(), global_after)          # not disturbed
    state = g.get_state()
    assert state.dtype == cnnlab.uint8 and state.ndim == 1
    again = cnnlab.randn(4, generator=g).numpy()
    g.set_state(state)
    np.testing.assert_array_equal(cnnlab.randn(4, generator=g).numpy(), again)
    s = g.seed()
    assert isinstance(s, int) and g.initial_seed() == s
    with pytest.raises(RuntimeError, match="set_state"):
        g.set_state(cnnlab.zeros(3, dtype=cnnlab.uint8))


def test_default_generator_is_the_global_stream():
    assert cnnlab.manual_seed(5) is cnnlab.default_generator
    assert cnnlab.default_generator.initial_seed() == cnnlab.initial_seed() == 5
    a = cnnlab.randn(3).numpy()
    cnnlab.default_generator.manual_seed(5)
    np.testing.assert_array_equal(cnnlab.randn(3).numpy(), a)
    state = cnnlab.default_generator.get_state()
    b = cnnlab.rand(2).numpy()
    cnnlab.set_rng_state(state)                                                    # PyTorch's form: a tensor
    np.testing.assert_array_equal(cnnlab.rand(2).numpy(), b)


def test_generator_drives_random_split_and_dataloader():
    data = TensorDataset(cnnlab.arange(10))

    def split_and_order(seed):
        a, _ = random_split(data, [6, 4], generator=cnnlab.Generator().manual_seed(seed))
        loader = DataLoader(data, batch_size=10, shuffle=True, generator=cnnlab.Generator().manual_seed(seed))
        return list(a.indices), next(iter(loader))[0].tolist()

    assert split_and_order(3) == split_and_order(3)
    assert split_and_order(3) != split_and_order(4)


# ------------------------------------------------------------------ empty batches in BN
@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm2d(3), (0, 3, 4, 4)), (nn.BatchNorm1d(3), (0, 3)),
                                          (nn.BatchNorm1d(3), (0, 3, 5))])
def test_batch_norm_on_an_empty_batch_gives_an_empty_output(layer, shape):
    layer.train()
    x = cnnlab.zeros(*shape, requires_grad=True)
    y = layer(x)
    assert y.shape == shape
    np.testing.assert_array_equal(layer.running_mean.numpy(), 0.0)
    np.testing.assert_array_equal(layer.running_var.numpy(), 1.0)
    assert layer.num_batches_tracked.item() == 1                                   # counted, as PyTorch
    y.sum().backward()
    assert x.grad.shape == shape
    np.testing.assert_array_equal(layer.weight.grad.numpy(), 0.0)
    layer.eval()
    assert layer(x).shape == shape
    assert nn.Linear(3, 2)(cnnlab.zeros(0, 3)).shape == (0, 2)
    assert nn.MaxPool2d(2)(cnnlab.zeros(0, 3, 4, 4)).shape == (0, 3, 2, 2)


# ------------------------------------------------------------------- version counters
def test_an_optimizer_step_is_an_in_place_change_of_the_parameters():
    w = cnnlab.tensor([1.0, 2.0], requires_grad=True)
    opt = cnnlab.optim.SGD([w], lr=0.1)
    loss = (w * w).sum()                      # mul saves w
    loss.backward(retain_graph=True)
    assert w._version == 0
    opt.step()
    assert w._version == 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*is at version 1; expected version 0"):
        loss.backward()
    for make in (lambda p: cnnlab.optim.Adam(p), lambda p: cnnlab.optim.RMSprop(p)):
        v = cnnlab.ones(2, requires_grad=True)
        o = make([v])
        (v * v).sum().backward()
        o.step()
        assert v._version == 1


@needs_torch
def test_a_stale_graph_after_step_is_refused_like_pytorch():
    for lib in (cnnlab, torch):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        opt = lib.optim.SGD([w], lr=0.1)
        loss = (w * w).sum()
        loss.backward(retain_graph=True)
        opt.step()
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            loss.backward()


# ------------------------------------------------------------------------ prod and full
@pytest.mark.parametrize("values, dim", [([[1.0, 2.0], [3.0, 4.0]], 1), ([[0.0, 2.0], [3.0, 0.0]], None),
                                         ([[1.0, 0.0, 3.0], [2.0, 5.0, 0.5]], 0), ([0.0, 2.0, 3.0], None)])
def test_prod_gradient_is_the_product_of_the_others_even_at_zeros(values, dim):
    x = np.array(values)
    check_grad(lambda t: t.prod(dim), x, ref=lambda a: np.prod(a, axis=dim))
    y = cnnlab.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y.reshape(2, 2).prod(1, keepdim=True).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [2.0, 1.0, 4.0, 3.0])


def test_full_infers_its_dtype_from_the_fill_value():
    assert cnnlab.full((2,), 3).dtype == cnnlab.int64
    assert cnnlab.full((2,), True).dtype == cnnlab.bool
    assert cnnlab.full((2,), 3.0).dtype == cnnlab.float32
    assert cnnlab.full((2,), 3, dtype=cnnlab.float32).dtype == cnnlab.float32
    assert cnnlab.full((2,), np.int32(3)).dtype == cnnlab.int64


@needs_torch
def test_prod_and_full_match_pytorch():
    a = RNG.standard_normal((3, 4)).astype(np.float32)
    a[1, 2] = 0.0
    for dim in (None, 0, 1):
        x, t = cnnlab.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        (x.prod() if dim is None else x.prod(dim)).sum().backward()
        (t.prod() if dim is None else t.prod(dim)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)
    for value in (3, True, 2.5):
        assert str(cnnlab.full((2,), value).dtype) == str(torch.full((2,), value).dtype).split(".")[1]


# --------------------------------------------------------------------- type promotion
def _promotion_cases(m):
    return [m.tensor([1, 2]) / 2, m.ones(2) + m.arange(2), m.arange(2) + m.ones(2), m.arange(3) * 2.5,
            m.arange(2) * m.ones(2, dtype=m.float64), m.tensor([True]) + m.ones(1), m.arange(3) + 1,
            m.tensor([1, 2]) / m.tensor([2, 2]), 2 / m.arange(1, 3), m.arange(2) - m.ones(2)]


def test_a_float_with_an_integer_keeps_the_floats_dtype():
    # PyTorch's rule, not NumPy's (which gives float64 for float32 + int64)
    dtypes = [str(t.dtype) for t in _promotion_cases(cnnlab)]
    assert dtypes == ["float32", "float32", "float32", "float32", "float64", "float32", "int64", "float32",
                      "float32", "float32"]
    np.testing.assert_array_equal((2 / cnnlab.arange(1, 3)).numpy(), [2.0, 1.0])
    loss = nn.MSELoss()(cnnlab.zeros(1, 3), cnnlab.arange(1, 4).view(1, -1))   # the blitz's integer target
    assert loss.dtype == cnnlab.float32 and abs(loss.item() - 14 / 3) < 1e-6
    with pytest.raises(RuntimeError, match="can't be cast"):
        cnnlab.arange(3).add_(1.5)


@needs_torch
def test_promotion_matches_pytorch():
    for mine, ref in zip(_promotion_cases(cnnlab), _promotion_cases(torch)):
        assert str(mine.dtype) == str(ref.dtype).split(".")[1] and mine.tolist() == ref.tolist()
