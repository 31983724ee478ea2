"""The tape: grad mode, `Function`, the backward walk and the version counters, all here.

Every differentiable op is a Function subclass (in cnnlab/ops.py and cnnlab/nn/functional*.py)
with `forward(ctx, *arrays, **options)` on backend arrays and `backward(ctx, grad)` returning
one gradient (or None) per positional input. `Function.apply(*inputs, **options)` runs
forward and, if some input needs a gradient, records `(Function, ctx, inputs)` on the
output: that record is the tape. The record also keeps, in `ctx.edges`, the record (or
leaf) each input came from *at that moment*, so an in-place change that gives a tensor a
new history later does not rewrite the past. `backward(root)` visits the records
reachable from root, each after everything computed from it, calls each backward and sums
the gradients that meet; leaves keep theirs in `.grad`.

Version counters, as PyTorch's: every in-place change adds one to the tensor's `_version`
(views share the counter with their base). Each record notes the versions of the tensors
whose arrays it saved; backward refuses, with PyTorch's message, when one has moved.

Positional inputs are tensors, None for an absent optional one (a bias), or constants
(the 2 in `x * 2`); axes, strides and flags are keyword options.
"""
from __future__ import annotations

import functools
import threading
import weakref
from typing import Any

from .errors import MismatchError, shape_str

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


def set_grad_enabled(mode: bool) -> None:
    _state.enabled = bool(mode)


def is_inference_mode_enabled() -> bool:
    return getattr(_state, "inference", False)


class no_grad:
    """Context manager and decorator (with or without parentheses) that stops recording on the tape.

    >>> with no_grad():
    ...     y = model(x)          # y.requires_grad is False
    """

    _mode = False  # the grad mode inside

    def __new__(cls, *args: Any, **kwargs: Any):
        # @no_grad on a function, without parentheses, as PyTorch allows
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return cls()(args[0])
        return super().__new__(cls)

    def __init__(self) -> None:
        pass

    def __enter__(self) -> None:
        self._prev = is_grad_enabled()
        set_grad_enabled(self._mode)

    def __exit__(self, *exc: Any) -> None:
        set_grad_enabled(self._prev)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self._fresh():
                return fn(*args, **kwargs)

        return wrapper

    def _fresh(self) -> "no_grad":
        # a new manager per call, so a decorated function can call itself
        return type(self)()


class enable_grad(no_grad):
    _mode = True


class inference_mode(no_grad):
    """PyTorch's faster no_grad for evaluation: here exactly no_grad (mode=False: no change).

    >>> @cnnlab.inference_mode()
    ... def predict(x): return model(x).argmax(1)
    """

    def __init__(self, mode: Any = True) -> None:
        self.mode = bool(mode) if isinstance(mode, bool) else True

    def __enter__(self) -> None:
        self._prev, self._prev_inference = is_grad_enabled(), is_inference_mode_enabled()
        if self.mode:
            set_grad_enabled(False)
            _state.inference = True

    def __exit__(self, *exc: Any) -> None:
        set_grad_enabled(self._prev)
        _state.inference = self._prev_inference

    def _fresh(self) -> "inference_mode":
        return inference_mode(self.mode)


class TensorBase:
    """The part of a tensor the tape reads; `cnnlab.Tensor` subclasses it and provides
    `_data` (the backend array), `_device`, `_backend`, `requires_grad`, `grad`,
    `_node` (the record of the op that made it, None for a leaf), `_retains_grad`,
    `_vc` (its version counter, a one-element list shared by views) and
    `_wrap(array, device, requires_grad)`, which makes a new plain Tensor."""

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self) -> "GradFn | None":
        return None if self._node is None else GradFn(self._node)

    @property
    def _version(self) -> int:
        """How many in-place changes this tensor's storage has seen (PyTorch's `_version`)."""
        return self._vc[0]

    def retain_grad(self) -> None:
        self._retains_grad = True
        if self._node is not None:
            self._node[1].retained = weakref.ref(self)

    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`; see `backward` below."""
        backward(self, gradient, retain_graph)


def node_name(fn: type, ctx: Any = None) -> str:
    """The name the graph shows for a record of Function fn: PyTorch's `<Name>Backward0`, from the
    Function's class name, or its own `node_name` (a string, or a function of ctx)."""
    own = getattr(fn, "node_name", None)
    if own is not None:
        return own if isinstance(own, str) else own(ctx)
    return f"{fn.__name__.lstrip('_')}Backward0"


class GradFn:
    """A record on the tape as PyTorch shows it (`tensor.grad_fn`): `name()`, and
    `next_functions`, one `(node, 0)` per input of the op: the record that made that
    input, an `AccumulateGrad` for a leaf that requires grad, None for the others.

    >>> loss.grad_fn.next_functions[0][0]
    <LinearBackward0 object at 0x...>
    """

    def __new__(cls, node: tuple):
        # one object per record while someone holds it, so `t.grad_fn is t.grad_fn` as in PyTorch
        ctx = node[1]
        held = ctx.__dict__.get("grad_fn")
        same = held() if held is not None else None
        if same is not None:
            return same
        self = super().__new__(cls)
        self._node = node
        ctx.__dict__["grad_fn"] = weakref.ref(self)
        return self

    def name(self) -> str:
        return node_name(self._node[0], self._node[1])

    @property
    def next_functions(self) -> tuple:
        return tuple((_graph_node(edge), 0) for edge in self._node[1].edges)

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"


class AccumulateGrad:
    """The graph's node for a leaf that requires grad: backward adds into `variable.grad` there."""

    next_functions: tuple = ()

    def __init__(self, variable: "TensorBase"):
        self.variable = variable

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AccumulateGrad) and other.variable is self.variable

    def __hash__(self) -> int:
        return id(self.variable)

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"


def _graph_node(edge: Any) -> "GradFn | AccumulateGrad | None":
    if edge is None:
        return None
    return GradFn(edge) if isinstance(edge, tuple) else AccumulateGrad(edge)


class Context:
    """What forward leaves for backward: saved arrays, the backend, flags; the tape adds
    `edges` (where each input came from) and `versions` (of the saved tensors)."""

    __slots__ = ("saved", "backend", "needs_input_grad", "released", "edges", "versions", "retained", "out",
                 "out_vc", "__dict__")

    def save_for_backward(self, *arrays: Any) -> None:
        self.saved = arrays


class Function:
    """Base class of differentiable ops: subclass and write forward and backward."""

    @staticmethod
    def forward(ctx: Context, *arrays: Any, **options: Any):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: Any):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **options: Any):
        """forward on the inputs' arrays, recorded on the output if an input needs a gradient."""
        ref = None  # the first tensor: the output takes its device and backend
        changed = False  # whether an input was ever changed in place (rare: then versions are noted now)
        for t in inputs:
            if isinstance(t, TensorBase):
                changed = changed or t._vc[0] != 0
                if ref is None:
                    ref, device = t, t._device
                elif t._device is not device and t._device != device:
                    raise MismatchError(f"{cls.__name__}: all tensors must be on one device, "
                                        f"got {device} and {t._device}")
        ctx = Context()
        ctx.backend = ref._backend
        ctx.needs_input_grad = tuple(isinstance(t, TensorBase) and t.requires_grad for t in inputs)
        out = cls.forward(ctx, *[t._data if isinstance(t, TensorBase) else t for t in inputs], **options)
        track = is_grad_enabled() and any(ctx.needs_input_grad)
        result = ref._wrap(out, device, track)
        if track:
            result._node = (cls, ctx, inputs)
            ctx.edges = tuple((t if t._node is None else t._node) if need else None
                              for t, need in zip(inputs, ctx.needs_input_grad))
            # every version is 0 in the common case: then which saved array is whose is worked
            # out only if backward finds a counter moved (see _versions)
            ctx.out, ctx.out_vc = out, result._vc
            ctx.versions = _saved_versions(ctx, inputs) if changed else None
        return result


def _storage(a: Any) -> Any:
    """What owns a's memory: NumPy's base for a view, a DeviceArray's block."""
    base = getattr(a, "base", None)
    return base if base is not None else getattr(a, "block", a)


def _saved_versions(ctx: Context, inputs: tuple) -> tuple:
    """(position in saved, counter, version now, input index or -1 for the output) for each
    saved array that is, or views, the memory of an input tensor or of the output."""
    saved = getattr(ctx, "saved", None)
    if not saved:
        return ()
    found = []
    for pos, s in enumerate(saved):
        if s is None:
            continue
        i = _owner(s, inputs, ctx.out)
        if i is not None:
            vc = ctx.out_vc if i < 0 else inputs[i]._vc
            found.append((pos, vc, vc[0], i))
    return tuple(found)


def _owner(s, inputs, out) -> int | None:
    """Which tensor's memory s is: the same array first (the common case), else the same owner."""
    if out is s:
        return -1
    for i, t in enumerate(inputs):
        if isinstance(t, TensorBase) and t._data is s:
            return i
    root = _storage(s)
    if _storage(out) is root:
        return -1
    for i, t in enumerate(inputs):
        if isinstance(t, TensorBase) and _storage(t._data) is root:
            return i
    return None


def _versions(node: tuple) -> tuple:
    """The node's saved versions; for a node recorded with all versions 0, worked out now
    (expecting 0) if a counter of its inputs or output has moved since, else ()."""
    fn, ctx, inputs = node
    if ctx.versions is None:
        moved = ctx.out_vc[0] != 0 or any(isinstance(t, TensorBase) and t._vc[0] != 0 for t in inputs)
        if not moved:  # nothing to check yet; not cached, so a change before a retained graph's next backward is seen
            return ()
        ctx.versions = tuple((pos, vc, 0, i) for pos, vc, _, i in _saved_versions(ctx, inputs))
    return ctx.versions


def _check_versions(node: tuple) -> None:
    fn, ctx, inputs = node
    for pos, vc, version, i in ctx.versions:
        if vc[0] != version:
            saved = ctx.saved[pos]
            made_by = node if i < 0 else (ctx.edges[i] if isinstance(ctx.edges[i], tuple) else None)
            which = "" if made_by is None else f", which is output 0 of {node_name(made_by[0], made_by[1])},"
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an inplace "
                f"operation: [{_type_name(saved.dtype)} {shape_str(saved.shape)}]{which} is at version "
                f"{vc[0]}; expected version {version} instead. Hint: {node_name(fn, ctx)} saved it for its "
                f"gradient; change a copy (y = y + 1, or x.clone()) instead of the tensor itself")


def _type_name(dtype) -> str:
    names = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
             "int64": "LongTensor", "int32": "IntTensor", "bool": "BoolTensor"}
    return "cnnlab." + names.get(str(dtype), f"{dtype}Tensor")


# --------------------------------------------------------------------- in place
def rebase_in_place(target: TensorBase, result: TensorBase, write) -> None:
    """Make target hold result's values and history: `write()` copies result's values into
    target's storage. result was computed from target (result = op(target, ...)), so its
    record may have saved target's current values: those are copied first, being about to
    be overwritten; a record that saved its own output saves target's storage instead."""
    node = result._node
    if node is None:
        write()
        target._vc[0] += 1
        return
    ctx = node[1]
    if ctx.versions is None:  # just recorded: every version is still what it was
        ctx.versions = _saved_versions(ctx, node[2])
    saved = list(getattr(ctx, "saved", None) or ())
    keep = []
    for pos, vc, version, i in ctx.versions:
        if i >= 0 and vc is target._vc:  # the values before the change: a private copy
            saved[pos] = ctx.backend.copy(saved[pos])
        elif i >= 0:
            keep.append((pos, vc, version, i))
    write()
    target._vc[0] += 1
    for pos, vc, version, i in ctx.versions:
        if i < 0 and saved[pos] is result._data:  # its own output: now target's storage
            saved[pos] = target._data
            keep.append((pos, target._vc, target._vc[0], i))
    if saved:
        ctx.saved = tuple(saved)
    ctx.versions = tuple(keep)
    ctx.out, ctx.out_vc = target._data, target._vc
    target._node = node
    target.requires_grad = True
    if target._retains_grad:
        ctx.retained = weakref.ref(target)


# --------------------------------------------------------------------- backward
def backward(root: TensorBase, gradient: Any = None, retain_graph: bool = False) -> None:
    """Walk the tape from root: `gradient` (a tensor or array of root's shape) is
    d(loss)/d(root), 1 by default for a single-element root."""
    if not root.requires_grad:
        raise RuntimeError("backward(): this tensor does not require grad and has no grad_fn "
                           "(did you compute it under no_grad(), or forget requires_grad=True?)")
    B = root._backend
    shape = tuple(root._data.shape)
    if gradient is None:
        if root._data.size != 1:
            raise RuntimeError(f"backward(): grad can be implicitly created only for scalar outputs, "
                               f"this tensor has shape {shape_str(shape)}; pass gradient=")
        gradient = _ones(B, shape, root._data.dtype)
    elif isinstance(gradient, TensorBase):
        gradient = gradient._data
    else:
        gradient = B.asarray(gradient, root._data.dtype)
    if tuple(gradient.shape) != shape:
        raise MismatchError(f"backward(): gradient has shape {shape_str(gradient.shape)}, expected {shape_str(shape)}")
    start = root if root._node is None else root._node
    grads = {id(start): gradient}
    owned: set[int] = set()  # edges whose gradient array nothing else holds: a leaf may keep it without a copy
    for key in _topological_order(start):
        g = grads.pop(id(key), None)
        if g is None:
            continue
        if not isinstance(key, tuple):  # a leaf
            _accumulate(key, g, id(key) in owned)
            continue
        fn, ctx, _ = key
        kept = getattr(ctx, "retained", None)
        if kept is not None and kept() is not None:
            _accumulate(kept(), g)
        if getattr(ctx, "released", False):
            raise RuntimeError("backward(): trying to go through the graph a second time; "
                               "pass retain_graph=True to the first backward() if you need to")
        if _versions(key):
            _check_versions(key)
        with no_grad():
            in_grads = fn.backward(ctx, g)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        shared = _shared_storage(g, in_grads, ctx)
        if not retain_graph:
            ctx.saved = None
            ctx.released = True
        for edge, gi in zip(ctx.edges, in_grads):
            if gi is None or edge is None:
                continue
            prev = grads.get(id(edge))
            grads[id(edge)] = gi if prev is None else B.add(prev, gi)
            if prev is not None or id(_storage(gi)) not in shared:
                owned.add(id(edge))
            else:
                owned.discard(id(edge))


_root_ones: dict[tuple, Any] = {}


def _ones(B: Any, shape: tuple, dtype: Any) -> Any:
    """d(loss)/d(loss) = 1. On a device, one array kept per shape and dtype (a launch saved per
    step); safe because no backward writes into the gradient it is given, and a leaf copies it."""
    if B.name == "cpu":
        return B.full(shape, 1.0, dtype)
    key = (B.name, shape, str(dtype))
    if key not in _root_ones:
        _root_ones[key] = B.full(shape, 1.0, dtype)
    return _root_ones[key]


def _shared_storage(g: Any, in_grads: tuple, ctx: Context) -> set[int]:
    """Memory a backward's results may share with something else alive: the gradient it
    was given, another of its results (one array handed to several inputs, as a + b does),
    its saved arrays and output; and any result that is a strided or read-only view (a broadcast)."""
    held = tuple(getattr(ctx, "saved", None) or ()) + (getattr(ctx, "out", None),)
    found = {id(_storage(g))} | {id(_storage(s)) for s in held if s is not None}
    seen: set[int] = set()
    for gi in in_grads:
        if gi is None:
            continue
        root = id(_storage(gi))
        flags = getattr(gi, "flags", None)
        if root in seen or (flags is not None and not (flags.c_contiguous and flags.writeable)):
            found.add(root)
        seen.add(root)
    return found


def _accumulate(t: TensorBase, g: Any, owned: bool = False) -> None:
    """Add g to t.grad. `owned`: nothing else holds g's memory, so t.grad may be g itself;
    otherwise the first gradient is a copy (the array may reach several leaves, or be a view)."""
    B = t._backend
    if g.dtype != t._data.dtype:
        g, owned = B.astype(g, t._data.dtype), True
    if t.grad is None:
        t.grad = t._wrap(g if owned else B.copy(g), t._device)
    else:
        t.grad._data = B.add(t.grad._data, g)


def _topological_order(start) -> list:
    """Records (and leaves) reachable from start, each before everything it was computed from."""
    order: list = []
    seen: set[int] = set()
    stack: list = [(start, False)]
    while stack:
        key, expanded = stack.pop()
        if expanded:
            order.append(key)
            continue
        if id(key) in seen:
            continue
        seen.add(id(key))
        stack.append((key, True))
        if isinstance(key, tuple):
            for edge in key[1].edges:
                if edge is not None and id(edge) not in seen:
                    stack.append((edge, False))
    order.reverse()
    return order


def Variable(data: TensorBase, requires_grad: bool = False) -> TensorBase:  # noqa: N802 - PyTorch's name
    """PyTorch's pre-0.4 wrapper of a tensor, kept so old tutorials import: the tensor itself."""
    if not isinstance(data, TensorBase):
        raise TypeError(f"Variable wraps a Tensor, got {type(data).__name__}; use cnnlab.tensor(data)")
    return data.requires_grad_(requires_grad) if requires_grad else data
