"""In-place operations and version counters (cnnlab/inplace.py, cnnlab/autograd.py).

Each idiom is checked twice: against float64 central differences (check_grad, no torch
needed) and, where torch is installed, against PyTorch on the same values.
"""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as nn
import cnnlab.nn.functional as F
from helpers import check_grad

RNG = np.random.default_rng(13)


def _torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


# ------------------------------------------------------------ gradients through in-place ops
def test_residual_add_in_place_matches_finite_differences():
    x, w = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 3))

    def block(x, w):
        out = x @ w
        out += x            # the residual connection, in place
        return F.relu(out, inplace=True) * 2

    check_grad(block, x, w, ref=lambda x, w: np.maximum(x @ w + x, 0) * 2)


@pytest.mark.parametrize("name, op, ref", [
    ("add_", lambda a, b: a.add_(b, alpha=2), lambda a, b: a + 2 * b),
    ("sub_", lambda a, b: a.sub_(b), lambda a, b: a - b),
    ("mul_", lambda a, b: a.mul_(b), lambda a, b: a * b),
    ("div_", lambda a, b: a.div_(b), lambda a, b: a / b),
    ("isub", lambda a, b: a.__isub__(b), lambda a, b: a - b),
    ("itruediv", lambda a, b: a.__itruediv__(b), lambda a, b: a / b),
])
def test_binary_in_place_ops_differentiate_both_sides(name, op, ref):
    a, b = RNG.standard_normal((3, 4)), RNG.uniform(0.5, 2.0, (3, 4))

    def fn(a, b):
        h = a * a                    # a non-leaf the op may change
        out = op(h, b)
        assert out is h              # in place: the same tensor comes back
        return h * 3

    check_grad(fn, a, b, ref=lambda a, b: ref(a * a, b) * 3)


@pytest.mark.parametrize("name, op, ref", [
    ("relu_", lambda h: h.relu_(), lambda h: np.maximum(h, 0)),
    ("clamp_", lambda h: h.clamp_(-0.5, 0.7), lambda h: np.clip(h, -0.5, 0.7)),
    ("exp_", lambda h: h.exp_(), np.exp),
    ("neg_", lambda h: h.neg_(), np.negative),
    ("leaky_relu inplace", lambda h: F.leaky_relu(h, 0.1, inplace=True), lambda h: np.where(h > 0, h, 0.1 * h)),
])
def test_unary_in_place_ops(name, op, ref):
    x = RNG.standard_normal((4, 5))
    check_grad(lambda x: op(x * 1.5) * x, x, ref=lambda x: ref(x * 1.5) * x)


def test_index_assignment_records_both_the_tensor_and_the_value():
    x, v = RNG.standard_normal((3, 4)), RNG.standard_normal(3)

    def fn(x, v):
        h = x * 2
        h[:, 1] = v * v
        return h * h

    def ref(x, v):
        h = x * 2
        h[:, 1] = v * v
        return h * h

    gx, gv = check_grad(fn, x, v, ref=ref)
    assert np.all(gx[:, 1] == 0)     # the overwritten column passes nothing back to x


def test_masked_fill_copy_and_fill_in_place():
    x, s = RNG.standard_normal((2, 5)), RNG.standard_normal((2, 5))
    mask = x > 0

    def fn(x, s):
        h = x * 1.0
        h.masked_fill_(cnnlab.tensor(mask), -1.0)
        t = cnnlab.zeros(2, 5, dtype=cnnlab.float64)
        t.copy_(s * h)               # a constant tensor becomes part of the graph
        t[0].fill_(0.5)              # through a view: the base changes
        return t * s

    def ref(x, s):
        h = np.where(mask, -1.0, x)
        t = s * h
        t[0] = 0.5
        return t * s

    check_grad(fn, x, s, ref=ref)


def test_in_place_on_views_changes_the_base_and_both_histories():
    x = RNG.standard_normal((2, 6))

    def fn(x):
        h = x * 1.0
        v = h.view(3, 4)             # a view: same storage
        v[1:, :2].mul_(3.0)          # a view of the view
        r = h.reshape(12)
        r.add_(1.0)
        return h * x

    def ref(x):
        h = x.copy()
        h.reshape(3, 4)[1:, :2] *= 3
        return (h + 1) * x

    check_grad(fn, x, ref=ref)


def test_a_permuted_view_changed_in_place():
    x = RNG.standard_normal((2, 3))

    def fn(x):
        h = x * 1.0
        h.t().mul_(cnnlab.tensor([[1.0, 2.0]], dtype=cnnlab.float64))   # scales the rows of h
        return h * h

    check_grad(fn, x, ref=lambda x: (x * np.array([[1.0], [2.0]])) ** 2)


def test_a_tensor_outside_the_graph_joins_it_through_an_in_place_op():
    w = cnnlab.tensor([1.0, 2.0, 3.0], requires_grad=True)
    acc = cnnlab.zeros(3)
    assert acc.is_leaf and not acc.requires_grad
    acc += w * w
    acc[0] += w[1]
    assert acc.requires_grad and not acc.is_leaf and acc.grad_fn is not None
    acc.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 4.0 + 1.0, 6.0])


# ----------------------------------------------------------------- version counters
def test_versions_count_changes_and_views_share_them():
    x = cnnlab.zeros(2, 3)
    v, row, d = x.view(6), x[1], x.detach()
    assert x._version == 0
    x += 1
    row.mul_(2)
    d[0, 0] = 5.0
    assert x._version == v._version == row._version == d._version == 3
    np.testing.assert_array_equal(x.numpy(), [[5, 1, 1], [2, 2, 2]])   # every view wrote into x
    data = x.data
    data.zero_()                      # `.data` changes the values but not the version (PyTorch's loophole)
    assert x._version == 3 and float(x.sum()) == 0


def test_changing_a_saved_tensor_makes_backward_refuse_with_pytorchs_message():
    x = cnnlab.tensor([1.0, -2.0, 3.0], requires_grad=True)
    h = x * 2
    y = h.exp()                       # exp saves its output
    y.add_(1)
    with pytest.raises(RuntimeError) as err:
        y.sum().backward()
    msg = str(err.value)
    assert "one of the variables needed for gradient computation has been modified by an inplace operation" in msg
    assert "[cnnlab.FloatTensor [3]]" in msg and "output 0 of ExpBackward" in msg
    assert "is at version 1; expected version 0 instead" in msg


def test_only_what_backward_reads_is_checked():
    x = cnnlab.tensor([1.0, -2.0, 3.0], requires_grad=True)
    h = x * 1
    y = h + 1                         # addition saves nothing: changing h later is fine
    z = F.relu(h)                     # relu saves its output, not h
    h.mul_(10)
    (y + z).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 1.0, 2.0])
    m = x * 1
    p = m * x                         # mul saves m (for x's gradient)
    m.add_(1)
    with pytest.raises(RuntimeError, match="output 0 of MulBackward0, is at version 1; expected version 0"):
        p.sum().backward()


def test_leaf_that_requires_grad_is_refused_outside_no_grad():
    w = cnnlab.ones(3, requires_grad=True)
    for change in (lambda: w.add_(1), lambda: w.__setitem__(0, 2.0), lambda: w.relu_(), lambda: w[1:].mul_(2)):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            change()
    with cnnlab.no_grad():
        w.mul_(3)
        w[0] = 0.0
    np.testing.assert_array_equal(w.numpy(), [0, 3, 3])
    assert w._version == 2


def test_relu_inplace_layer_changes_its_input_and_keeps_one_activation():
    x = cnnlab.tensor([[-1.0, 2.0], [3.0, -4.0]], requires_grad=True)
    h = x * 1
    out = nn.ReLU(inplace=True)(h)
    assert out is h and h._version == 1
    np.testing.assert_array_equal(h.numpy(), [[0, 2], [3, 0]])
    ctx = h._node[1]
    assert ctx.saved[0] is h._data    # backward reads h's own storage, not a second copy
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1], [1, 0]])
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)" and repr(nn.ReLU()) == "ReLU()"


def test_an_integer_tensor_cannot_take_a_float_result():
    i = cnnlab.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast"):
        i += 0.5
    i += 1
    np.testing.assert_array_equal(i.numpy(), [2, 3])


# ---------------------------------------------------------------- against PyTorch
def _residual_block(lib, nn_, F_, inplace_relu):
    class Block(nn_.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn_.Conv2d(4, 4, 3, padding=1, bias=False)
            self.bn1 = nn_.BatchNorm2d(4)
            self.relu = nn_.ReLU(inplace=inplace_relu)
            self.conv2 = nn_.Conv2d(4, 4, 3, padding=1, bias=False)
            self.bn2 = nn_.BatchNorm2d(4)

        def forward(self, x):
            identity = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += identity
            return self.relu(out)

    return Block()


@pytest.mark.parametrize("inplace_relu", [True, False])
def test_residual_block_with_in_place_ops_matches_pytorch(inplace_relu):
    torch = _torch()
    ours = _residual_block(cnnlab, nn, F, inplace_relu)
    theirs = _residual_block(torch, torch.nn, torch.nn.functional, inplace_relu)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    x = RNG.standard_normal((2, 4, 6, 6)).astype(np.float32)
    target = RNG.standard_normal((2, 4, 6, 6)).astype(np.float32)
    xs = [cnnlab.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)]
    losses = []
    for model, xi, lib in ((ours, xs[0], cnnlab), (theirs, xs[1], torch)):
        h = xi * 1                    # the block's input is a non-leaf, as inside a network
        loss = ((model(h) - lib.tensor(target)) ** 2).mean()
        loss.backward()
        losses.append(loss.item() if lib is cnnlab else loss.detach().item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    np.testing.assert_allclose(xs[0].grad.numpy(), xs[1].grad.numpy(), rtol=1e-4, atol=1e-6)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


def test_the_same_in_place_programs_give_pytorchs_values_and_errors():
    torch = _torch()

    def program(lib, F_):
        x = lib.tensor([[1.0, -2.0, 3.0], [0.5, -1.0, 2.0]], requires_grad=True)
        w = lib.tensor([0.3, -0.2, 0.1], requires_grad=True)
        h = x * w
        h += x
        h[0, 1:] = w[:2] * 4
        h.view(6)[::2].mul_(2)
        h.masked_fill_(h.detach() > 5, 1.5)
        y = F_.relu(h.clamp_(max=2.5), inplace=True)
        (y * y).sum().backward()
        return y.detach().numpy().copy(), x.grad.numpy().copy(), w.grad.numpy().copy(), h._version

    ours, theirs = program(cnnlab, F), program(torch, torch.nn.functional)
    for a, b in zip(ours[:3], theirs[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert ours[3] == theirs[3]

    def refused(lib, F_):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x.sigmoid()
        y.mul_(2)
        with pytest.raises(RuntimeError, match="is at version 1; expected version 0 instead"):
            y.sum().backward()
        h = x * 1
        F_.relu(h, inplace=True).clamp_(max=1.5)     # relu_ saved its output; clamp_ changed it
        with pytest.raises(RuntimeError, match="output 0 of .*Re[Ll][Uu].* is at version 2; expected version 1"):
            h.sum().backward()

    refused(cnnlab, F)
    refused(torch, torch.nn.functional)
