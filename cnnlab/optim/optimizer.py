"""The base of every optimizer: parameter groups, per-parameter state, `zero_grad`,
`state_dict` / `load_state_dict` in PyTorch's format.

A subclass gives its defaults and `_update(group, p, state)`, which changes one
parameter in place (through a backend kernel, or the backend's array operations so
it runs on any device), or `_update_many(group, items)`, which changes a whole group's
parameters at once (SGD and Adam: one fused kernel launch on a GPU, not one per parameter).
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Iterator

from ..tensor import Tensor


class Optimizer:
    """Holds parameter groups (each a dict with 'params' and hyper-parameters) and per-parameter state.

    `params` is what PyTorch takes: an iterable of tensors, of `(name, tensor)` pairs
    (`model.named_parameters()`), or of dicts, one per group, whose missing options
    come from the constructor's.
    """

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of tensors or dicts, "
                            f"got a single Tensor (wrap it in a list)")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        # keyed by the parameter itself, as in PyTorch (tensors hash by identity)
        self.state: dict[Tensor, dict[str, Any]] = {}
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group (a dict with 'params' and any options that differ from the defaults),
        e.g. layers unfrozen part-way through fine-tuning."""
        if not isinstance(group, dict):
            raise TypeError(f"{type(self).__name__}: a parameter group must be a dict, got {type(group).__name__}")
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if params and all(isinstance(p, tuple) and len(p) == 2 for p in params):
            group["param_names"] = [name for name, _ in params]   # model.named_parameters()
            params = [p for _, p in params]
        group["params"] = params
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: can only optimise tensors, got {type(p).__name__}")
            if p.grad_fn is not None:
                raise ValueError(f"{type(self).__name__}: can't optimise a non-leaf tensor (one computed from "
                                 f"others); optimise the parameters it was computed from")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one parameter group")
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check(group)
        self.param_groups.append(group)

    # the range of each numeric option a group may have; a subclass adds its own
    _bounds: dict[str, tuple[float, float]] = {"lr": (0.0, math.inf), "eps": (0.0, math.inf),
                                               "weight_decay": (0.0, math.inf), "momentum": (0.0, math.inf)}

    def _check(self, group: dict[str, Any]) -> None:
        for key, (lo, hi) in self._bounds.items():
            if key in group and not lo <= group[key] <= hi:
                limit = f">= {lo:g}" if hi == math.inf else f"in [{lo:g}, {hi:g}]"
                raise ValueError(f"{type(self).__name__}: {key} must be {limit}, got {group[key]}")

    @staticmethod
    def _count_step(state: dict[str, Any], p: Tensor, names: Iterable[str], fill: float = 0.0) -> int:
        """Advance the parameter's step counter, making its state arrays (filled with
        `fill`, shaped like p) on its first step; the step's number, from 1."""
        if "step" not in state:
            state["step"] = 0
            for name in names:
                state[name] = p._backend.full(p.shape, fill, p.dtype)
        state["step"] += 1
        return state["step"]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def _params_with_grad(self) -> Iterator[tuple[dict[str, Any], Tensor, dict[str, Any]]]:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p, self.state.setdefault(p, {})

    def step(self, closure=None):
        """One update of every parameter that has a gradient; `closure` (re-evaluates the
        model and returns the loss) is called first, as PyTorch does."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            items = [(p, self.state.setdefault(p, {})) for p in group["params"] if p.grad is not None]
            if items:
                self._update_many(group, items)
            for p, _ in items:
                p._vc[0] += 1  # an in-place change, as PyTorch counts it: a graph from before the step is stale
        return loss

    def _update(self, group, p, state) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _update_many(self, group: dict[str, Any], items: list[tuple[Tensor, dict[str, Any]]]) -> None:
        """Update every (parameter, state) of one group; by default one `_update` each."""
        for p, state in items:
            self._update(group, p, state)

    @staticmethod
    def _buckets(items, key) -> list[list[tuple[Tensor, dict[str, Any]]]]:
        """items split by device, dtype and `key(p, state)`: the runs one fused kernel call can take."""
        found: dict[tuple, list] = {}
        for p, state in items:
            found.setdefault((p._backend.name, p.dtype.str, key(p, state)), []).append((p, state))
        return list(found.values())

    @staticmethod
    def _gradient(group: dict[str, Any], p: Tensor):
        """The gradient the update rules start from, as PyTorch's optimizers form it:
        negated when maximising, plus weight_decay * p (L2 regularisation)."""
        g = p.grad._data
        if group.get("maximize"):
            g = -g
        if group.get("weight_decay", 0.0) != 0:
            g = g + p._data * group["weight_decay"]
        return g

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {g[k]}" for k in sorted(g) if k not in ("params", "param_names")]
        return "\n".join(lines + [")"])

    # PyTorch's format: state keyed by the parameter's position over all groups
    def state_dict(self) -> dict[str, Any]:
        index: dict[int, int] = {}
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
                if p in self.state:
                    state[index[id(p)]] = {k: (Tensor._wrap(p._backend.copy(v), p.device)
                                               if hasattr(v, "shape") and not isinstance(v, (int, float)) else v)
                                           for k, v in self.state[p].items()}
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
            self.state[p] = restored
        for g, saved in zip(self.param_groups, groups):
            for k, v in saved.items():
                if k != "params":
                    g[k] = tuple(v) if k == "betas" else v
