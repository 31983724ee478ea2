"""`cnnlab.optim`: SGD (momentum, dampening, nesterov, weight decay), Adam and AdamW.

The update rules are PyTorch's, written as backend kernels (`sgd_step`,
`adam_step`) that change parameters in place, so they run on any device.

>>> opt = optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
>>> opt.zero_grad(); loss.backward(); opt.step()
"""
from __future__ import annotations

from typing import Any, Iterable

from .tensor import Tensor


class Optimizer:
    """Holds parameter groups (each a dict with 'params' and hyper-parameters) and per-parameter state."""

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict[str, Any]) -> None:
        group = dict(group)
        group["params"] = list(group["params"])
        for p in group["params"]:
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: can only optimise tensors that require grad, "
                                 f"got {type(p).__name__}")
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check(group)
        self.param_groups.append(group)

    def _check(self, group: dict[str, Any]) -> None:
        if group["lr"] < 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be >= 0, got {group['lr']}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def _params_with_grad(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p, self.state.setdefault(id(p), {})

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group, p, state in self._params_with_grad():
            self._update(group, p, state)
        return loss

    def _update(self, group, p, state) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # PyTorch's format: state keyed by the parameter's position over all groups
    def state_dict(self) -> dict[str, Any]:
        index = {}
        groups = []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if id(p) in self.state:
                    state[index[id(p)]] = {k: (Tensor._wrap(p._backend.copy(v), p.device)
                                               if hasattr(v, "shape") and not isinstance(v, (int, float)) else v)
                                           for k, v in self.state[id(p)].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved optimizer has a different "
                             f"number of parameter groups or parameters than this one")
        params = [p for g in self.param_groups for p in g["params"]]
        self.state = {}
        for key, st in state_dict["state"].items():
            p = params[int(key)]
            restored = {}
            for k, v in st.items():
                if isinstance(v, Tensor) or (hasattr(v, "shape") and getattr(v, "ndim", 0) > 0):
                    arr = v.numpy() if isinstance(v, Tensor) else v
                    if tuple(arr.shape) != tuple(p.shape):
                        raise ValueError(f"{type(self).__name__}.load_state_dict: state '{k}' of parameter "
                                         f"{key} has shape {list(arr.shape)}, expected {list(p.shape)}")
                    restored[k] = p._backend.from_numpy(arr.astype(p.dtype).copy())
                else:
                    restored[k] = v
            self.state[id(p)] = restored
        for g, saved in zip(self.param_groups, groups):
            for k, v in saved.items():
                if k != "params":
                    g[k] = v


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's rule:
    d = g + wd*p; buf = momentum*buf + (1-dampening)*d; d = d + momentum*buf (nesterov) or buf; p -= lr*d.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, group, p, state) -> None:
        B = p._backend
        first = "momentum_buffer" not in state
        if first:
            state["momentum_buffer"] = B.zeros(p.shape, p.dtype)
        B.sgd_step(p._data, p.grad._data, state["momentum_buffer"], float(group["lr"]),
                   float(group["momentum"]), float(group["dampening"]), bool(group["nesterov"]),
                   float(group["weight_decay"]), first)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with PyTorch's bias correction; amsgrad optional."""

    _decoupled = False

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def _check(self, group) -> None:
        super()._check(group)
        b1, b2 = group["betas"]
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {group['betas']}")

    def _update(self, group, p, state) -> None:
        B = p._backend
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = B.zeros(p.shape, p.dtype)
            state["exp_avg_sq"] = B.zeros(p.shape, p.dtype)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = B.zeros(p.shape, p.dtype)
        state["step"] += 1
        b1, b2 = group["betas"]
        vmax = state.get("max_exp_avg_sq")
        if vmax is None:  # the kernel's signature wants an array even when amsgrad is off
            vmax = B.zeros((1,), p.dtype)
        B.adam_step(p._data, p.grad._data, state["exp_avg"], state["exp_avg_sq"], vmax,
                    float(group["lr"]), float(b1), float(b2), float(group["eps"]), float(group["weight_decay"]),
                    self._decoupled, int(state["step"]), bool(group["amsgrad"]))


class AdamW(Adam):
    """Adam with decoupled weight decay (p *= 1 - lr*wd before the Adam step)."""

    _decoupled = True

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


from . import lr_scheduler  # noqa: E402,F401  (PyTorch's cnnlab.optim.lr_scheduler.StepLR ...)
