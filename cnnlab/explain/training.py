"""The learning step written out: softmax and cross-entropy, a gradient check, and the
optimizer's update of one weight, each with the live model's real numbers.

>>> t = softmax_cross_entropy([2.0, 1.0, 0.1], target=0)
>>> round(t.loss, 4), [round(p, 3) for p in t.probabilities]
(0.417, [0.659, 0.242, 0.099])
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..autograd import no_grad
from ..creation import tensor
from ..nn import CrossEntropyLoss, Module
from ..optim import SGD, Adam, AdamW, Optimizer
from ._common import as_array, num, paren

Index = int | Sequence[int]


# ------------------------------------------------------------ softmax + cross-entropy

@dataclass(frozen=True)
class SoftmaxCrossEntropy:
    """softmax(logits) and -log p[target], step by step. The exponentials are of
    logits - shift (shift = the largest logit: the same probabilities, no overflow)."""

    logits: tuple[float, ...]
    shift: float
    exps: tuple[float, ...]
    total: float
    probabilities: tuple[float, ...]
    target: int
    loss: float

    def lines(self) -> list[str]:
        out = [f"exp({num(z)} - {num(self.shift)}) = {num(e)}" for z, e in zip(self.logits, self.exps)]
        out.append("sum = " + " + ".join(num(e) for e in self.exps) + f" = {num(self.total)}")
        out += [f"p[{k}] = {num(e)} / {num(self.total)} = {num(p)}" for k, (e, p)
                in enumerate(zip(self.exps, self.probabilities))]
        out.append(f"loss = -log p[{self.target}] = -log {num(self.probabilities[self.target])} = {num(self.loss)}")
        return out


def softmax_cross_entropy(logits: Any, target: int) -> SoftmaxCrossEntropy:
    """One image's logits (classes,) (or (1, classes)) and its label, written out in float64."""
    z = as_array(logits, np.float64).reshape(-1)
    if not 0 <= int(target) < z.size:
        raise ValueError(f"target {target} is not one of the {z.size} classes")
    shift = float(z.max())
    with np.errstate(invalid="ignore", over="ignore"):  # a diverged model's inf or nan logits give nan, not a warning
        exps = np.exp(z - shift)
    total = float(exps.sum())
    probs = exps / total
    # log(sum) - (z[t] - shift) is -log p[t] without rounding p[t] first: a confident wrong
    # answer's p[t] underflows to 0, its loss does not
    loss = math.log(total) - (float(z[int(target)]) - shift) if math.isfinite(total) else float("nan")
    return SoftmaxCrossEntropy(tuple(z.tolist()), shift, tuple(exps.tolist()), total, tuple(probs.tolist()),
                               int(target), float(loss))


# ------------------------------------------------------------------ gradient check

@dataclass(frozen=True)
class GradCheck:
    """dL/dw for one weight by autograd and by the central difference
    (L(w + eps) - L(w - eps)) / (2 eps), on the same batch, and their relative error."""

    param_name: str
    index: tuple[int, ...]
    eps: float
    weight: float
    loss: float
    loss_plus: float
    loss_minus: float
    autograd: float
    numeric: float
    relative_error: float

    def lines(self) -> list[str]:
        return [f"w = {self.param_name}{list(self.index)} = {num(self.weight)}, loss = {self.loss:.8g}",
                f"L(w + {self.eps:g}) = {self.loss_plus:.8g}, L(w - {self.eps:g}) = {self.loss_minus:.8g}",
                f"central difference = ({self.loss_plus:.8g} - {self.loss_minus:.8g}) / {2 * self.eps:g} "
                f"= {self.numeric:.6g}",
                f"autograd = {self.autograd:.6g}, relative error = {self.relative_error:.2e}"]


def gradcheck(model: Module, inputs: Any, targets: Any, param_name: str, index: Index, eps: float = 1e-3,
              loss_fn: Callable | None = None, double: bool = True) -> GradCheck:
    """Check autograd's dL/d(param_name[index]) against a central difference.

    Runs on a copy of the model in eval mode (dropout off, batch norm on its running
    statistics: the three losses must see one function), in float64 unless double=False
    (in float32, eps=1e-3 leaves rounding noise of about 1e-4 in the difference). The
    loss is cross-entropy unless `loss_fn(outputs, targets)` is given. The model itself
    is not changed.
    """
    net = _copy(model).cpu().eval()
    dtype = np.float64 if double else np.float32
    if double:
        net.double()
    params = dict(net.named_parameters())
    if param_name not in params:
        raise ValueError(f"no parameter {param_name!r}; the model has {', '.join(params)}")
    p = params[param_name]
    idx = _index(index, tuple(p.shape))
    x = tensor(as_array(inputs, dtype))
    y = targets if hasattr(targets, "numpy") else tensor(np.asarray(targets))
    loss_of = loss_fn or CrossEntropyLoss()
    net.zero_grad()
    loss = loss_of(net(x), y)
    loss.backward()
    analytic = float(p.grad.numpy()[idx])

    def loss_at(value: float) -> float:
        p._data[idx] = value  # the parameter's own array: nudged in place, no autograd involved
        with no_grad():
            return float(loss_of(net(x), y).item())

    w0 = float(p._data[idx])
    plus, minus = loss_at(w0 + eps), loss_at(w0 - eps)
    loss_at(w0)
    numeric = (plus - minus) / (2 * eps)
    rel = abs(analytic - numeric) / max(abs(analytic), abs(numeric), 1e-12)
    return GradCheck(param_name, idx, eps, w0, float(loss.item()), plus, minus, analytic, numeric, rel)


def _copy(model: Module) -> Module:
    """A deep copy that shares the backend modules its tensors point to (modules do not copy)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return copy.deepcopy(model, memo={id(t._backend): t._backend for t in tensors})


# ------------------------------------------------------------------ the update step

@dataclass(frozen=True)
class UpdateStep:
    """What `optimizer.step()` will do to one weight: its gradient, the state before and
    after (momentum buffer; Adam's moments, step and bias corrections), the new value and
    the arithmetic, one line per operation, in PyTorch's order. Worked in float64 from
    the live numbers; the optimizer computes in the parameter's dtype (equal to rounding)."""

    optimizer: str
    index: tuple[int, ...]
    weight: float
    grad: float
    hyper: dict[str, Any]
    state_before: dict[str, float]
    state_after: dict[str, float]
    new_value: float
    lines: tuple[str, ...] = field(default=())


def update_step(optimizer: Optimizer, param: Any, index: Index) -> UpdateStep:
    """Preview the update of param[index] that the next optimizer.step() makes (call it
    after backward, before step). SGD (momentum, dampening, nesterov, weight decay,
    maximize) and Adam/AdamW (bias corrections, amsgrad)."""
    group = next((g for g in optimizer.param_groups if any(q is param for q in g["params"])), None)
    if group is None:
        raise ValueError("the parameter is not in this optimizer")
    if param.grad is None:
        raise ValueError("the parameter has no gradient yet: run backward() first")
    idx = _index(index, tuple(param.shape))
    w = float(param.detach().cpu().numpy()[idx])
    g = float(param.grad.detach().cpu().numpy()[idx])
    state = _state_values(param, optimizer.state.get(param, {}), idx)
    return update_arithmetic(optimizer_kind(optimizer), group, w, g, state, idx)


def optimizer_kind(optimizer: Optimizer) -> str:
    """'SGD', 'Adam' or 'AdamW' for those optimizers and their subclasses, else the class name."""
    for cls in (AdamW, Adam, SGD):  # AdamW first: it is an Adam
        if isinstance(optimizer, cls):
            return cls.__name__
    return type(optimizer).__name__


def update_arithmetic(optimizer: str, group: dict[str, Any], weight: float, grad: float,
                      state: dict[str, float], index: tuple[int, ...] = ()) -> UpdateStep:
    """The update of one weight from plain numbers: the optimizer's class name ('SGD',
    'Adam' or 'AdamW'), its param group's settings, the weight, its gradient and its
    state before the step (as `UpdateStep.state_before` holds it). `update_step` reads
    these from a live optimizer; a record of a past step (the app keeps one) can pass them."""
    if group.get("maximize"):
        g_used, lines = -grad, [f"maximize: g = -({num(grad)}) = {num(-grad)}"]
    else:
        g_used, lines = grad, []
    if optimizer == "SGD":
        new, after = _sgd(group, weight, g_used, state, lines)
    elif optimizer in ("Adam", "AdamW"):
        new, after = _adam(group, weight, g_used, state, lines, optimizer == "AdamW")
    else:
        raise ValueError(f"update_step writes out SGD, Adam and AdamW, not {optimizer}")
    hyper = {k: v for k, v in group.items() if k not in ("params", "param_names")}
    return UpdateStep(optimizer, tuple(index), weight, grad, hyper, dict(state), after, new, tuple(lines))


def _index(index: Index, shape: tuple[int, ...]) -> tuple[int, ...]:
    idx = np.unravel_index(index, shape) if isinstance(index, (int, np.integer)) else tuple(index)
    return tuple(int(i) for i in idx)


def _state_values(param: Any, state: dict, idx: tuple[int, ...]) -> dict[str, float]:
    """The optimizer's per-parameter state at idx (its step count as is), read to the host."""
    out = {}
    for k, v in state.items():
        if k == "step":
            out[k] = float(v)
        elif tuple(getattr(v, "shape", ())) == tuple(param.shape):
            out[k] = float(param._backend.to_numpy(v)[idx])
    return out


def _sgd(group: dict, w: float, g: float, state: dict, lines: list[str]) -> tuple[float, dict]:
    lr, mom, damp, wd = (float(group[k]) for k in ("lr", "momentum", "dampening", "weight_decay"))
    d = g
    if wd:
        d = g + wd * w
        lines.append(f"d = g + weight_decay × w = {num(g)} + {num(wd)} × {paren(w)} = {num(d)}")
    after: dict[str, float] = {}
    if mom:
        if "momentum_buffer" not in state:
            buf = d
            lines.append(f"buf = d = {num(buf)} (first step: the buffer starts at the gradient)")
        else:
            buf = mom * state["momentum_buffer"] + (1 - damp) * d
            lines.append(f"buf = momentum × buf + (1 - dampening) × d = {num(mom)} × {paren(state['momentum_buffer'])}"
                         f" + {num(1 - damp)} × {paren(d)} = {num(buf)}")
        after["momentum_buffer"] = buf
        if group["nesterov"]:
            lines.append(f"d = d + momentum × buf = {num(d)} + {num(mom)} × {paren(buf)} = {num(d + mom * buf)}")
            d = d + mom * buf
        else:
            d = buf
            lines.append(f"d = buf = {num(d)}")
    new = w - lr * d
    lines.append(f"w = w - lr × d = {num(w)} - {num(lr)} × {paren(d)} = {num(new)}")
    return new, after


def _adam(group: dict, w: float, g: float, state: dict, lines: list[str], decoupled: bool) -> tuple[float, dict]:
    lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
    b1, b2 = (float(b) for b in group["betas"])
    t = int(state.get("step", 0)) + 1
    m0, v0 = state.get("exp_avg", 0.0), state.get("exp_avg_sq", 0.0)
    d = g
    if decoupled and wd:
        lines.append(f"w = w × (1 - lr × weight_decay) = {num(w)} × {num(1 - lr * wd)} = {num(w * (1 - lr * wd))}")
        w = w * (1 - lr * wd)
    elif wd:
        d = g + wd * w
        lines.append(f"d = g + weight_decay × w = {num(g)} + {num(wd)} × {paren(w)} = {num(d)}")
    m = b1 * m0 + (1 - b1) * d
    v = b2 * v0 + (1 - b2) * d * d
    lines.append(f"step t = {t}")
    lines.append(f"m = β1 × m + (1 - β1) × d = {num(b1)} × {paren(m0)} + {num(1 - b1)} × {paren(d)} = {num(m)}")
    lines.append(f"v = β2 × v + (1 - β2) × d² = {num(b2)} × {paren(v0)} + {num(1 - b2)} × {paren(d)}² = {num(v)}")
    after = {"step": float(t), "exp_avg": m, "exp_avg_sq": v}
    v_used = v
    if group["amsgrad"]:
        v_used = max(state.get("max_exp_avg_sq", 0.0), v)
        after["max_exp_avg_sq"] = v_used
        lines.append(f"v_max = max(v_max, v) = {num(v_used)}")
    bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
    m_hat, v_hat = m / bc1, v_used / bc2
    lines.append(f"bias correction: m̂ = m / (1 - β1^{t}) = {num(m)} / {num(bc1)} = {num(m_hat)}")
    lines.append(f"bias correction: v̂ = v / (1 - β2^{t}) = {num(v_used)} / {num(bc2)} = {num(v_hat)}")
    new = w - lr * m_hat / (math.sqrt(v_hat) + eps)
    lines.append(f"w = w - lr × m̂ / (√v̂ + eps) = {num(w)} - {num(lr)} × {paren(m_hat)} / "
                 f"({num(math.sqrt(v_hat))} + {eps:g}) = {num(new)}")
    return new, after
