"""Rich display in Jupyter without any widget library: HTML tables for a model summary, a
trace's steps and a run's metrics, PNG for images and scenes. The engine's classes call
these from their `_repr_html_` / `_repr_png_`, so they import only NumPy and Pillow.

>>> from cnnlab import explain
>>> "<table" in trace_html(explain.conv2d_trace([[0, 1], [2, 3]], [[1]]))
True
"""
from __future__ import annotations

import html
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..colormap import signed_image

_TABLE = ('<table class="cnnlab" style="border-collapse:collapse;font-family:monospace;font-size:12px">'
          '{head}{body}</table>')
_CELL = 'style="padding:2px 8px;border-bottom:1px solid #e3e6ea;text-align:{align}"'


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "") -> str:
    """A plain HTML table; numbers right-aligned, everything escaped."""
    def td(v: Any, tag: str = "td") -> str:
        align = "right" if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else "left"
        return f"<{tag} {_CELL.format(align=align)}>{html.escape(str(v))}</{tag}>"

    head = "<tr>" + "".join(td(h, "th") for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(td(v) for v in row) + "</tr>" for row in rows)
    cap = f"<caption style='text-align:left;font-weight:bold'>{html.escape(caption)}</caption>" if caption else ""
    return _TABLE.format(head=cap + head, body=body)


# ----------------------------------------------------------------------------- summary
def summary_html(s: Any) -> str:
    """A ModelSummary (cnnlab.summary) as torchinfo's table in HTML, totals underneath."""
    rows = [(r.label, "[" + ", ".join(str(d) for d in r.output_shape) + "]",
             "--" if r.num_params == 0 else f"{r.num_params:,}") for r in s.rows]
    mb = lambda b: f"{b / 1e6:.2f}"  # noqa: E731 - torchinfo's MB are 10^6 bytes
    totals = [("Total params", f"{s.total_params:,}"), ("Trainable params", f"{s.trainable_params:,}"),
              ("Non-trainable params", f"{s.total_params - s.trainable_params:,}"),
              ("Total mult-adds (M)", f"{s.total_mult_adds / 1e6:.2f}"),
              ("Input size (MB)", mb(s.input_bytes)), ("Forward/backward pass size (MB)", mb(s.forward_backward_bytes)),
              ("Params size (MB)", mb(s.params_bytes)), ("Estimated Total Size (MB)", mb(s.total_bytes))]
    return (table(("Layer (type:depth-idx)", "Output Shape", "Param #"), rows,
                  f"{s.model_name}, input {list(s.input_size)}") + table(("", ""), totals))


# ----------------------------------------------------------------------------- traces
def _steps_of(trace: Any) -> tuple:
    steps = trace.steps
    return steps("input") if callable(steps) else steps


def final_scene(trace: Any) -> Any:
    from ..explain import scene

    return scene(trace, len(_steps_of(trace)))


def trace_html(trace: Any, max_rows: int = 40) -> str:
    """The finished trace's picture (SVG) and its steps' arithmetic as a table."""
    from .svg import scene_svg

    steps = _steps_of(trace)
    rows = [(i + 1, s.arithmetic(12)) for i, s in enumerate(steps[:max_rows])]
    more = f"<p>… {len(steps) - max_rows} more steps</p>" if len(steps) > max_rows else ""
    check = getattr(trace, "check", None) or trace.forward.check
    return (f"<div>{scene_svg(final_scene(trace), root=f'trace{id(trace)}')}"
            f"<pre style='margin:4px 0'>{html.escape(check.summary())}</pre>"
            + table(("step", "arithmetic"), rows, f"{type(trace).__name__}: {len(steps)} steps") + more + "</div>")


def png_bytes(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def trace_png(trace: Any) -> bytes:
    """The finished trace drawn by cnnlab.render (the GIFs' last frame)."""
    from ..render import render_scene

    return png_bytes(render_scene(final_scene(trace)))


# ----------------------------------------------------------------------------- metrics
def _history_of(source: Any) -> dict[str, Any]:
    """{'steps': [...], 'epochs': [...]} from a History, a Run, a checkpoint dict or a run folder."""
    if hasattr(source, "history"):            # a Run
        source = source.history
    if hasattr(source, "to_dict"):            # a History
        return source.to_dict()
    if isinstance(source, dict):              # a loaded checkpoint, or metrics.json's content
        return source.get("history", source)
    path = Path(os.fspath(source))
    if path.is_dir() and (path / "metrics.json").exists():
        return json.loads((path / "metrics.json").read_text())
    from ..checkpoint import open_checkpoint

    return open_checkpoint(path)["history"]


class Metrics:
    """A run's epochs as a table (HTML in a notebook, text elsewhere)."""

    COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "images_per_s")

    def __init__(self, source: Any):
        self.history = _history_of(source)
        self.epochs = list(self.history.get("epochs", []))

    def rows(self) -> list[tuple]:
        def cell(key: str, v: Any) -> Any:
            if v is None:
                return "-"
            if key.endswith("accuracy"):
                return f"{100 * v:.2f}%"
            return round(v, 4) if isinstance(v, float) else v
        return [tuple(cell(k, e.get(k)) for k in self.COLUMNS) for e in self.epochs]

    def _repr_html_(self) -> str:
        steps = len(self.history.get("steps", []))
        return table(self.COLUMNS, self.rows(), f"{len(self.epochs)} epoch(s), {steps} steps")

    def __repr__(self) -> str:
        lines = ["  ".join(f"{c:>14}" for c in self.COLUMNS)]
        lines += ["  ".join(f"{str(v):>14}" for v in r) for r in self.rows()]
        return "\n".join(lines)


def metrics(source: Any) -> Metrics:
    """The metrics of a run: `metrics("runs/first")`, a checkpoint dict, a History or a Run."""
    return Metrics(source)


# ----------------------------------------------------------------------------- images
def to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach()
    if hasattr(x, "cpu"):
        x = x.cpu()
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    return np.asarray(x, np.float64)


def image_rgb(a: np.ndarray, signed: bool | None = None) -> np.ndarray:
    """(H, W, 3) uint8 for one image: (H, W) or (C, H, W) with C in 1, 3. Signed data (any
    value below 0) takes the diverging map; otherwise grey or colour stretched to 0..255."""
    a = np.asarray(a, np.float64)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    finite = a[np.isfinite(a)]
    signed = bool(finite.size and finite.min() < 0) if signed is None else signed
    if signed and a.ndim == 2:
        return signed_image(a)
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    lo, hi = (0.0, 1.0) if 0 <= lo and hi <= 1 else (lo, hi)
    u = ((a - lo) / ((hi - lo) or 1.0) * 255).clip(0, 255).astype(np.uint8)
    return np.repeat(u[..., None], 3, -1) if u.ndim == 2 else u


def grid(images: Sequence[np.ndarray], columns: int = 8, scale: int = 4, gap: int = 2) -> np.ndarray:
    """RGB images (H, W, 3) of one size tiled into rows, each pixel `scale` x `scale`."""
    n = len(images)
    h, w = images[0].shape[:2]
    cols = min(columns, n)
    rows = -(-n // cols)
    out = np.full((rows * (h * scale + gap) - gap, cols * (w * scale + gap) - gap, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        big = np.kron(im, np.ones((scale, scale, 1), np.uint8))
        top, left = r * (h * scale + gap), c * (w * scale + gap)
        out[top:top + h * scale, left:left + w * scale] = big
    return out


class Picture:
    """An image for a notebook (`_repr_png_`); `.array` is the (H, W, 3) uint8 picture."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def _repr_png_(self) -> bytes:
        from PIL import Image

        return png_bytes(Image.fromarray(self.array))

    def __repr__(self) -> str:
        return f"<Picture {self.array.shape[1]}x{self.array.shape[0]}>"


def show(x: Any, columns: int = 8, scale: int | None = None, signed: bool | None = None) -> Picture:
    """An image, a batch (N, C, H, W), one image's channels (C, H, W with C not 1 or 3: one
    tile per channel, e.g. feature maps) or a filter bank (K, C, kh, kw) as a PNG picture.
    Signed values use cnnlab's diverging map (negative blue, positive red)."""
    a = to_numpy(x)
    if a.ndim == 4:
        tiles = [image_rgb(im if im.shape[0] in (1, 3) else im[0], signed) for im in a]
    elif a.ndim == 3 and a.shape[0] not in (1, 3):
        tiles = [image_rgb(ch, signed) for ch in a]
    elif a.ndim in (2, 3):
        tiles = [image_rgb(a, signed)]
    else:
        raise ValueError(f"show: expected an image, a batch or feature maps, got shape {a.shape}")
    h = tiles[0].shape[0]
    return Picture(grid(tiles, columns, scale or max(1, 96 // max(h, 1))))
