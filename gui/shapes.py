"""Shapes through a list of layers, each with the arithmetic that explains it.

The layer-list editor and the Network view both ask: given what flows into this
layer, what comes out, and why? For a convolution or pooling the answer is the
output-size formula with the numbers filled in (`cnnlab.explain`); a shape that
does not fit comes back as a problem in words instead of an exception.

Shapes leave out the batch: (C, H, W) for images, (F,) for vectors.

>>> rows = check_layers([{"type": "Conv2d", "args": {"in_channels": 1, "out_channels": 8,
...                       "kernel_size": 3}}], (1, 28, 28))
>>> rows[0].out_shape, rows[0].derivation[0]
((8, 26, 26), 'H: floor((28 + 2*0 - 1*(3-1) - 1) / 1) + 1 = 26')
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from cnnlab import models, nn
from cnnlab.explain import check_pool2d, explain_output_size, pair

Shape = tuple  # (C, H, W) or (F,)

# Layer types the editor offers, with the arguments it shows and their defaults.
LAYER_DEFAULTS: dict[str, dict[str, Any]] = {
    "Conv2d": dict(in_channels=1, out_channels=8, kernel_size=3, stride=1, padding=0, dilation=1, bias=True),
    "MaxPool2d": dict(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False),
    "AvgPool2d": dict(kernel_size=2, stride=2, padding=0, ceil_mode=False),
    "BatchNorm2d": dict(num_features=8),
    "ReLU": {}, "LeakyReLU": dict(negative_slope=0.01), "Sigmoid": {}, "Tanh": {},
    "Dropout": dict(p=0.25),
    "Flatten": {},
    "Linear": dict(in_features=16, out_features=10, bias=True),
    "BatchNorm1d": dict(num_features=16),
}
# the argument that must equal what flows in, per layer type
INPUT_ARG = {"Conv2d": "in_channels", "BatchNorm2d": "num_features", "Linear": "in_features",
             "BatchNorm1d": "num_features"}
_SAME_SHAPE = {"ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Dropout", "Identity", "Softmax", "LogSoftmax"}


@dataclass
class LayerShape:
    """One layer's verdict: `out_shape` is None when it cannot run on `in_shape`."""

    index: int
    kind: str
    in_shape: Shape | None
    out_shape: Shape | None
    derivation: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    params: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and self.out_shape is not None


def shape_text(shape: Shape | None) -> str:
    return "?" if shape is None else "×".join(str(s) for s in shape)


def _window(kind: str, a: dict[str, Any], c: int, h: int, w: int) -> tuple[Shape | None, list[str], list[str]]:
    """Conv2d / MaxPool2d / AvgPool2d: the output-size formula per axis."""
    k = pair(a.get("kernel_size", 1), "kernel_size")
    stride = a.get("stride")
    s = pair(stride if stride is not None else (1 if kind == "Conv2d" else a.get("kernel_size", 1)), "stride")
    p = pair(a.get("padding", 0), "padding")
    d = pair(a.get("dilation", 1), "dilation") if kind != "AvgPool2d" else (1, 1)
    ceil = bool(a.get("ceil_mode", False))
    rows = [explain_output_size(n, k[i], s[i], p[i], d[i], ceil, ("height", "width")[i])
            for i, n in enumerate((h, w))]
    derivation = [f"{axis}: {r.derivation}" for axis, r in zip("HW", rows) if r.derivation]
    problems = [q for r in rows for q in r.problems]
    if kind != "Conv2d":
        problems += [q for q in check_pool2d((h, w), k, s, p, d, ceil, "max" if kind == "MaxPool2d" else "avg").problems
                     if q not in problems]
    if problems:
        return None, derivation, problems
    out_c = int(a["out_channels"]) if kind == "Conv2d" else c
    return (out_c, rows[0].size, rows[1].size), derivation, []


def check_layer(index: int, spec: dict[str, Any], in_shape: Shape | None) -> LayerShape:
    """What layer `spec` ({'type', 'args'}) makes of `in_shape`, and why."""
    kind, a = spec["type"], dict(spec.get("args", {}))
    row = LayerShape(index, kind, in_shape, None)
    if in_shape is None:
        row.problems.append("its input is unknown: an earlier layer does not fit")
        return row
    name = f"layer {index} ({kind})"
    image = len(in_shape) == 3
    if kind in ("Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm2d", "AdaptiveAvgPool2d") and not image:
        row.problems.append(f"{name} needs images (channels × height × width) but gets a flat vector of "
                            f"{in_shape[0]} features: put it before the Flatten")
        return row
    want = INPUT_ARG.get(kind)
    if want is not None:
        have = in_shape[0]
        if kind in ("Linear", "BatchNorm1d") and image:
            row.problems.append(f"{name} needs a flat vector but gets images {shape_text(in_shape)}: "
                                f"add a Flatten before it (it would give {math.prod(in_shape)} features)")
            return row
        if int(a.get(want, -1)) != have:
            what = "channels" if image else "features"
            came = (f"the previous layer gives {shape_text(in_shape)}, i.e. {have} {what}" if index
                    else f"the input is {shape_text(in_shape)}, i.e. {have} {what}")
            row.problems.append(f"{name} expects {want}={a.get(want)} but {came}")
            return row
    if kind in ("Conv2d", "MaxPool2d", "AvgPool2d"):
        try:
            row.out_shape, row.derivation, problems = _window(kind, a, *in_shape)
            row.problems += [f"{name}: {q}" for q in problems]
        except ValueError as e:
            row.problems.append(f"{name}: {e}")
        if kind == "Conv2d" and row.out_shape is not None:
            k = pair(a.get("kernel_size", 1))
            cin, cout = int(a["in_channels"]), int(a["out_channels"])
            row.params = cout * cin * k[0] * k[1] + (cout if a.get("bias", True) else 0)
            row.derivation.append(f"C: out_channels = {cout}")
    elif kind == "AdaptiveAvgPool2d":
        o = pair(a.get("output_size", 1))
        row.out_shape = (in_shape[0], *o)
        row.derivation.append(f"H×W: output_size = {o[0]}×{o[1]}, whatever comes in")
    elif kind == "Flatten":
        n = math.prod(in_shape)
        row.out_shape = (n,)
        row.derivation.append(f"{' × '.join(str(s) for s in in_shape)} = {n}" if image else "already flat")
    elif kind == "Linear":
        fin, fout = int(a["in_features"]), int(a["out_features"])
        row.out_shape = (fout,)
        row.params = fin * fout + (fout if a.get("bias", True) else 0)
        row.derivation.append(f"{fin} inputs → {fout} outputs: {fin}×{fout} weights + "
                              f"{fout if a.get('bias', True) else 0} biases")
    elif kind in ("BatchNorm2d", "BatchNorm1d"):
        row.out_shape = tuple(in_shape)
        row.params = 2 * in_shape[0]
        row.derivation.append(f"same shape; a scale and a shift per channel ({2 * in_shape[0]} parameters)")
    elif kind in _SAME_SHAPE:
        row.out_shape = tuple(in_shape)
        row.derivation.append("same shape (element by element)")
    else:
        row.problems.append(f"{name}: unknown layer type")
    return row


def check_layers(layers: Sequence[dict[str, Any]], input_shape: Shape) -> list[LayerShape]:
    """Every layer's verdict in order; after the first misfit the shapes are unknown."""
    rows, shape = [], tuple(input_shape)
    for i, spec in enumerate(layers):
        row = check_layer(i, spec, shape)
        rows.append(row)
        shape = row.out_shape
    return rows


def fit_problems(checks: Sequence[LayerShape], classes: int) -> str:
    """Every problem of a checked layer list, one '• ' line each; empty when it fits data with `classes` classes."""
    lines = [p for c in checks for p in c.problems if not p.startswith("its input is unknown")]
    if not checks:
        lines.append("add at least one layer")
    elif checks[-1].ok:
        out = checks[-1].out_shape
        if len(out) != 1:
            lines.append(f"the last layer gives images {shape_text(out)}; end with Flatten and Linear "
                         f"to get one score per class")
        elif out[0] != classes:
            lines.append(f"the last layer gives {out[0]} outputs but the data has {classes} classes")
    return "\n".join(f"• {p}" for p in lines)


def fill_inputs(layers: Sequence[dict[str, Any]], input_shape: Shape) -> list[dict[str, Any]]:
    """A copy of `layers` whose in_channels / in_features / num_features follow what flows in."""
    out, shape = [], tuple(input_shape)
    for i, spec in enumerate(layers):
        spec = {"type": spec["type"], "args": dict(spec.get("args", {}))}
        want = INPUT_ARG.get(spec["type"])
        if want and shape is not None:
            if spec["type"] in ("Linear", "BatchNorm1d") and len(shape) == 1:
                spec["args"][want] = shape[0]
            elif spec["type"] in ("Conv2d", "BatchNorm2d") and len(shape) == 3:
                spec["args"][want] = shape[0]
        out.append(spec)
        shape = check_layer(i, spec, shape).out_shape if shape is not None else None
    return out


def spec_of(module: nn.Module) -> dict[str, Any] | None:
    """{'type', 'args'} of a standard leaf layer (as `cnnlab.models.describe` writes it), else None."""
    try:
        return models.describe(nn.Sequential(module))["layers"][0]
    except (ValueError, KeyError, AttributeError):
        return None
