"""In-place operations (`x += y`, `add_`, `relu_`, `x[i] = v` ...) with PyTorch's rules.

An in-place op computes its result as the out-of-place op would, writes it into the
tensor's own storage (so every view of that storage sees it) and gives the tensor the
op's record on the tape, so gradients flow through the change (`out += residual`).
It refuses, with PyTorch's message, to change a leaf that requires grad while autograd
records; changing a tensor that some op saved for its backward is allowed and found
later, by backward, through the version counters (cnnlab/autograd.py).

Views: `view`/`reshape` (when NumPy can reshape without copying), `permute`,
`transpose` and basic indexing (`x[0]`, `x[:, 1:3]`) share their base's storage and
version counter, as in PyTorch; an in-place op on a view changes the base too, and
both histories are rewritten (the base's through `ops.Assign`). On the CUDA backend
`permute` and indexing give copies, so an in-place op on them is refused there, with
the spelling that works (`x[i] = value` on the base).
"""
from __future__ import annotations

import numbers

import numpy as np

from . import ops, random
from .autograd import TensorBase, _storage, is_grad_enabled, rebase_in_place

_LEAF = ("a leaf Variable that requires grad is being used in an in-place operation. (Wrap a change "
         "of parameters in `with cnnlab.no_grad():`, or work on a copy: y = x + 1.)")


class InPlaceOps:
    """The in-place half of `Tensor` (mixed into it); see the module docstring."""

    # ------------------------------------------------------------ bookkeeping
    def _as_view(self, out, step: tuple):
        """out (made from self by a view op) as a view of self's base, when it shares the storage
        (on the GPU, permute and indexing copy: then it is refused in place, see _check_inplace)."""
        out._base = self if self._base is None else self._base
        out._chain = self._chain + (step,)
        out._vc = self._vc
        return out

    def _check_inplace(self) -> None:
        if isinstance(self._data, np.generic):  # a NumPy scalar (a full reduction) cannot be written into
            self._data = np.asarray(self._data)
        base = self._base
        if is_grad_enabled():
            if self._node is None and self.requires_grad:
                raise RuntimeError(_LEAF)
            if base is not None and base._node is None and base.requires_grad:
                raise RuntimeError("a view of " + _LEAF)
        if base is not None and _storage(self._data) is not _storage(base._data):
            raise RuntimeError(
                f"in-place change of a view of a {base.device} tensor: on this backend the view "
                f"(a slice or a permute) is a copy, so the change would not reach the tensor it came "
                f"from; assign into that tensor instead (x[index] = value)")

    def _inplace(self, fn: type[ops.Function], *operands, **options):
        """self <- fn(self, *operands), written into self's storage and recorded on the tape."""
        self._check_inplace()
        new = fn.apply(self, *operands, **options)
        self._check_cast(new)
        if self._base is None or new._node is None:
            rebase_in_place(self, new, lambda: self._store(new._data))
            return self
        base = self._base
        assigned = []
        rebase_in_place(self, new, lambda: assigned.append(ops.Assign.apply(base, new, chain=self._chain)))
        _adopt(base, assigned[0])
        self._node = self._replay(base)._node
        return self

    def _assign(self, index, value) -> None:
        """self[index] = value, recorded on the tape when autograd records and something requires grad."""
        self._check_inplace()
        if isinstance(value, TensorBase) and value._device != self._device:
            value = value.to(self._device)
        if not (is_grad_enabled() and (self.requires_grad or getattr(value, "requires_grad", False))):
            self._data[index] = value._data if isinstance(value, TensorBase) else value
            self._vc[0] += 1
            return
        if isinstance(value, TensorBase):
            value = value if value.dtype == self.dtype else value.to(self.dtype)
        elif isinstance(value, (numbers.Number, np.generic)):
            value = self._operand(value)
        else:  # an array or a list: a constant tensor
            value = self._wrap(self._backend.asarray(value, self.dtype), self._device)
        root = self if self._base is None else self._base
        new = ops.Assign.apply(root, value, chain=self._chain + (("index", index),))
        root._vc[0] += 1
        _adopt(root, new)
        if root is not self:
            self._node = self._replay(root)._node

    def _replay(self, base):
        """This view made again from base by the tensor ops that made it (a new history for it)."""
        t = base
        for kind, arg in self._chain:
            t = t[arg] if kind == "index" else t.reshape(arg) if kind == "reshape" else t.permute(arg)
        return t

    def _store(self, array) -> None:
        self._data[...] = array

    def _check_cast(self, new) -> None:
        if new.dtype != self.dtype and not np.can_cast(new.dtype, self.dtype, "same_kind"):
            raise RuntimeError(f"result type {new.dtype} can't be cast to the desired output type {self.dtype}")

    # ------------------------------------------------------------- the ops
    def add_(self, other, alpha: float = 1.0):
        return self._inplace(ops.Add, self._operand(other if alpha == 1 else other * alpha))

    def sub_(self, other, alpha: float = 1.0):
        return self._inplace(ops.Sub, self._operand(other if alpha == 1 else other * alpha))

    def mul_(self, other):
        return self._inplace(ops.Mul, self._operand(other))

    def div_(self, other):
        return self._inplace(ops.Div, self._operand(other))

    __iadd__, __isub__, __imul__, __itruediv__ = add_, sub_, mul_, div_

    def clamp_(self, min=None, max=None):  # noqa: A002 - PyTorch's keyword names
        return self._inplace(ops.Clamp, lo=min, hi=max)

    clip_ = clamp_

    def relu_(self):
        from .nn import functional as F

        return F.relu(self, inplace=True)

    def exp_(self):
        return self._inplace(ops.Exp)

    def neg_(self):
        return self._inplace(ops.Neg)

    def masked_fill_(self, mask, value):
        """Set the elements where mask (a bool tensor, broadcast) is True to value."""
        return self._inplace(ops.Where, self._operand(value), cond=~_mask(mask))

    def masked_fill(self, mask, value):
        return ops.Where.apply(self, self._operand(value), cond=~_mask(mask))

    def __setitem__(self, index, value) -> None:
        self._assign(_raw_index(index), value)

    def copy_(self, src):
        """self's values replaced by src's (broadcast, cast to self's dtype and device); differentiable in src."""
        self._assign(Ellipsis, src)
        return self

    # replacing every value: on a leaf that requires grad only under no_grad (nn.init's way), as PyTorch
    def fill_(self, value):
        self._assign(Ellipsis, value)
        return self

    def zero_(self):
        return self.fill_(0)

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None):
        return self.fill_(self._backend.random_uniform(random.numpy_rng(generator), self.shape, a, b, self.dtype))

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None):
        """Overwrite with samples of N(mean, std), from `generator` or the global one."""
        if std < 0:
            raise RuntimeError(f"normal_ expects std >= 0.0, but found std {std}")
        return self.fill_(self._backend.random_normal(random.numpy_rng(generator), self.shape, mean, std, self.dtype))


def _adopt(t, new) -> None:
    """t takes new's history (new's values already are in t's storage)."""
    t._node = new._node
    t.requires_grad = t.requires_grad or new.requires_grad
    if t._retains_grad and new._node is not None:
        t.retain_grad()


def _mask(mask):
    return mask._data if isinstance(mask, TensorBase) else mask


def _raw_index(index):
    if isinstance(index, TensorBase):
        return index._data
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, TensorBase) else i for i in index)
    return index
