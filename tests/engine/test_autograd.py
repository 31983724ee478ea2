"""The tape (cnnlab/autograd.py): Function's contract (options as keywords, one gradient per
positional input), the walk's accumulation and order, and the top-level functions."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import re

import numpy as np
import pytest

import cnnlab
import cnnlab.functions
from cnnlab.autograd import Function, TensorBase

from helpers import check_grad

ROOT = Path(cnnlab.__file__).parent


class ScaledSquare(Function):
    """scale * a**2 + b, written as a user would: `scale` is an option, a and b are inputs."""

    @staticmethod
    def forward(ctx, a, b, *, scale):
        ctx.save_for_backward(a)
        ctx.scale = scale
        return ctx.backend.add(ctx.backend.multiply(a * a, scale), b)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return ctx.backend.multiply(g, 2 * ctx.scale * a), g


def test_a_user_function_takes_options_as_keywords_and_returns_one_gradient_per_input():
    a, b = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, 3.0])
    ga, gb = check_grad(lambda x, y: ScaledSquare.apply(x, y, scale=3.0), a, b,
                        ref=lambda x, y: 3.0 * x * x + y)
    # independent of the finite differences: the closed forms, with check_grad's upstream R
    upstream = np.random.default_rng(0).standard_normal(3)
    np.testing.assert_allclose(ga, 6.0 * a * upstream)
    np.testing.assert_allclose(gb, upstream)


def test_options_are_not_inputs():
    x = cnnlab.tensor([1.0, 2.0], requires_grad=True)
    y = ScaledSquare.apply(x, cnnlab.tensor([0.0, 0.0]), scale=2.0)
    fn, ctx, inputs = y._node
    assert fn is ScaledSquare and len(inputs) == 2 and ctx.needs_input_grad == (True, False)


def test_no_function_pads_its_gradients_for_options():
    """backward returns gradients for positional inputs only: no `(None,) * 7` tails."""
    for path in [ROOT / "ops.py", *sorted((ROOT / "nn").glob("functional*.py"))]:
        source = path.read_text()
        assert "(None,) *" not in source and "None, None, None" not in source, path.name


def test_a_gradient_reaching_a_tensor_twice_is_summed():
    x = cnnlab.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x * x          # x used twice by one op
    z = (y + x).sum()  # and again by another
    z.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * np.array([1.0, -2.0, 3.0]) + 1)


def test_leaf_gradients_accumulate_across_backward_calls():
    x = cnnlab.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 4).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 7.0])


def test_the_walk_visits_a_tensor_only_after_everything_computed_from_it():
    """A diamond a -> (b, c) -> d: a's gradient is complete before a is passed on."""
    a = cnnlab.tensor([2.0], requires_grad=True)
    h = a * 1.0
    h.retain_grad()
    b, c = h * 3.0, h.exp()
    (b * c).sum().backward()
    expected_h = 3.0 * np.exp(2.0) + 3.0 * 2.0 * np.exp(2.0)   # d(3h e^h)/dh at h = 2
    np.testing.assert_allclose(h.grad.numpy(), [expected_h])
    np.testing.assert_allclose(a.grad.numpy(), [expected_h])


def test_backward_on_a_non_scalar_needs_a_gradient_of_its_shape():
    x = cnnlab.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"gradient has shape \[3\], expected \[2\]"):
        (x * 2).backward(cnnlab.tensor([1.0, 1.0, 1.0]))
    (x * 2).backward(np.array([1.0, 0.5]))
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 1.0])


def test_grad_fn_names_the_function():
    x = cnnlab.tensor([1.0], requires_grad=True)
    # PyTorch's spelling since issue 13: <NameBackward0 object at 0x...>, name() without the address
    assert re.fullmatch(r"<MulBackward0 object at 0x[0-9a-f]+>", repr((x * 2).grad_fn))
    assert cnnlab.relu(x).grad_fn.name() == "ReluBackward0"
    assert x.grad_fn is None and x.is_leaf and not (x * 2).is_leaf


def test_tensors_on_two_devices_are_refused():
    class Other(cnnlab.device):
        def __eq__(self, other):
            return False

    x = cnnlab.tensor([1.0])
    y = cnnlab.tensor([2.0])
    y._device = Other("cpu")
    with pytest.raises(ValueError, match="one device"):
        x + y


def test_variable_returns_the_tensor_itself():
    from cnnlab.autograd import Variable

    x = cnnlab.tensor([1.0])
    assert Variable(x) is x and Variable(x, requires_grad=True).requires_grad
    with pytest.raises(TypeError):
        Variable([1.0])


def test_parameter_shares_its_tensors_storage_and_starts_a_new_leaf():
    t = cnnlab.tensor([1.0, 2.0], requires_grad=True)
    y = t * 2
    p = cnnlab.nn.Parameter(y)
    assert p.requires_grad and p.is_leaf and p.grad is None and type(p) is cnnlab.nn.Parameter
    p.data.fill_(5.0)
    np.testing.assert_array_equal(y.numpy(), [5.0, 5.0])
    assert type(p * 1) is cnnlab.Tensor  # ops on a Parameter give plain tensors
    (p * p).sum().backward()
    assert type(p.grad) is cnnlab.Tensor


def test_autograd_does_not_import_tensor():
    """The tape is the lower layer: tensor.py imports autograd.py, never the other way round."""
    tree = ast.parse((ROOT / "autograd.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "tensor" not in imported and not any(m and m.endswith(".tensor") for m in imported)
    assert issubclass(cnnlab.Tensor, TensorBase)


# ------------------------------------------------------------- top-level functions
TOP_LEVEL = ["exp", "log", "sqrt", "abs", "sum", "mean", "max", "min", "argmax", "argmin", "matmul",
             "reshape", "squeeze", "unsqueeze", "permute", "transpose", "clamp", "var", "std", "relu",
             "sigmoid", "tanh", "softmax", "log_softmax", "t", "mm"]


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_functions_are_written_out(name):
    fn = getattr(cnnlab, name)
    assert fn is getattr(cnnlab.functions, name)
    assert f"def {name}(" in inspect.getsource(fn)
    assert fn.__doc__ and "input" in inspect.signature(fn).parameters


@pytest.mark.parametrize("name, args, ref", [
    ("exp", (), np.exp), ("log", (), np.log), ("sqrt", (), np.sqrt), ("abs", (), np.abs),
    ("sum", (1,), lambda a: a.sum(1)), ("mean", (), np.mean), ("var", (0,), lambda a: a.var(0, ddof=1)),
    ("std", (), lambda a: a.std(ddof=1)), ("clamp", (0.7, 1.5), lambda a: np.clip(a, 0.7, 1.5)),
    ("relu", (), lambda a: np.maximum(a, 0)), ("sigmoid", (), lambda a: 1 / (1 + np.exp(-a))),
    ("tanh", (), np.tanh), ("softmax", (1,), lambda a: np.exp(a) / np.exp(a).sum(1, keepdims=True)),
    ("log_softmax", (0,), lambda a: a - np.log(np.exp(a).sum(0, keepdims=True))),
    ("t", (), lambda a: a.T), ("transpose", (0, 1), lambda a: a.T), ("permute", ((1, 0),), lambda a: a.T),
    ("reshape", ((4, 3),), lambda a: a.reshape(4, 3)), ("unsqueeze", (1,), lambda a: a[:, None]),
    ("squeeze", (), lambda a: a), ("max", (), np.max), ("min", (), np.min),
])
def test_top_level_functions_compute_what_numpy_does(name, args, ref):
    a = np.random.default_rng(1).uniform(0.5, 2.0, (3, 4))
    check_grad(lambda x: getattr(cnnlab, name)(x, *args), a, ref=ref)


def test_top_level_index_and_product_functions():
    a = np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    x = cnnlab.tensor(a)
    assert cnnlab.argmax(x, 1).tolist() == [1, 0] and cnnlab.argmin(x).item() == 4
    np.testing.assert_allclose(cnnlab.matmul(x, x.t()).numpy(), a @ a.T)
    np.testing.assert_allclose(cnnlab.mm(x, x.t()).numpy(), a @ a.T)
    values, indices = cnnlab.max(x, 1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
