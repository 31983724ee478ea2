"""Draw explain scenes with Pillow: PNG frames and GIF animations, no Qt needed.

One frame per step of a trace: the padded input with the window highlighted, the
kernel, the output filling in, and the arithmetic written underneath — the same
scene the lab shows, so `cnnlab animate` works on a headless machine.

>>> from cnnlab import explain
>>> trace = explain.conv2d_trace([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])
>>> frames = render_frames(trace)
>>> len(frames), frames[0].mode
(4, 'RGB')
"""
from __future__ import annotations

import math
import textwrap
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .explain import scene as make_scene
from .explain import step_count
from .explain._common import num
from .explain.scene import COLOURS, PALETTE, Panel, Scene, blend, cell_colour, rgb

MARGIN, GAP, TITLE_H = 16, 28, 22
CAPTION_LINES = 3
# Fonts with the × and ∞ glyphs; Pillow's built-in font lacks them and gets ASCII.
_FONT_FILES = ("DejaVuSans.ttf", "Arial.ttf", "arial.ttf", "LiberationSans-Regular.ttf",
               "Helvetica.ttc", "NotoSans-Regular.ttf")


@lru_cache(maxsize=None)
def _font(size: int) -> tuple[Any, bool]:
    """(font, has_unicode_maths)."""
    for name in _FONT_FILES:
        try:
            return ImageFont.truetype(name, size), True
        except OSError:
            continue
    try:
        return ImageFont.load_default(size), False
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default(), False


def _text(s: str, unicode_ok: bool) -> str:
    return s if unicode_ok else s.replace("×", "x").replace("∞", "inf").replace("°", " deg")


def _cell_text(v: float) -> str:
    if math.isinf(v):
        return "-∞" if v < 0 else "∞"
    return num(v)


def choose_cell_size(sc: Scene, budget: int = 440) -> int:
    """A cell size that keeps the biggest grid within `budget` pixels (12 to 44 px)."""
    largest = max(max(p.values.shape) for p in sc.panels)
    return int(max(12, min(44, budget // max(largest, 1))))


def _layout(sc: Scene, cell: int) -> tuple[list[tuple[Panel, int, int]], int, int]:
    """Panel positions: groups side by side, panels of a group stacked."""
    placed, x, height = [], MARGIN, 0
    for group in sc.groups():
        y, col_w = MARGIN + TITLE_H, 0
        for p in group:
            h, w = p.values.shape
            placed.append((p, x, y + TITLE_H))
            y += TITLE_H + h * cell + GAP // 2
            col_w = max(col_w, w * cell, 8 * len(p.title))
        x += col_w + GAP
        height = max(height, y)
    return placed, x - GAP + MARGIN, height


def render_scene(sc: Scene, cell: int | None = None) -> Image.Image:
    """Draw one scene as an RGB image."""
    cell = cell or choose_cell_size(sc)
    placed, width, grids_h = _layout(sc, cell)
    small, uni = _font(13)
    width = max(width, 560)
    line_h = 18
    height = grids_h + MARGIN + CAPTION_LINES * line_h + 2 * line_h + MARGIN
    img = Image.new("RGB", (width, height), rgb(COLOURS["background"]))
    draw = ImageDraw.Draw(img)
    draw.text((MARGIN, MARGIN // 2), _text(sc.status, uni), font=small, fill=rgb(COLOURS["text"]))
    for panel, x, y in placed:
        draw.text((x, y - TITLE_H + 4), _text(panel.title, uni), font=small, fill=rgb(COLOURS["text"]))
        _draw_panel(draw, panel, x, y, cell)
    y = grids_h + MARGIN // 2
    chars = max(20, int((width - 2 * MARGIN) / 7.2))
    lines = textwrap.wrap(_text(sc.caption, uni), chars) or [""]
    if len(lines) > CAPTION_LINES:
        lines = lines[:CAPTION_LINES - 1] + [lines[CAPTION_LINES - 1][:chars - 2] + " …"]
    cap_font, _ = _font(14)
    for line in lines:
        draw.text((MARGIN, y), line, font=cap_font, fill=rgb(COLOURS["text"]))
        y += line_h
    y = grids_h + MARGIN // 2 + CAPTION_LINES * line_h + 4
    for line in sc.note.splitlines():
        draw.text((MARGIN, y), _text(line, uni), font=small, fill=(90, 100, 110))
        y += line_h - 2
    return img


def _draw_panel(draw: ImageDraw.ImageDraw, p: Panel, x0: int, y0: int, cell: int) -> None:
    h, w = p.values.shape
    finite = p.values[np.isfinite(p.values)]
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    font, uni = _font(max(8, int(cell * 0.36)))
    note_font, _ = _font(max(7, int(cell * 0.25)))
    pr, pc = p.pad
    for r in range(h):
        for c in range(w):
            v = float(p.values[r, c])
            is_pad = r < pr or r >= h - pr or c < pc or c >= w - pc
            box = (x0 + c * cell, y0 + r * cell, x0 + (c + 1) * cell, y0 + (r + 1) * cell)
            fill = cell_colour(v, scale, is_pad)
            if (r, c) in p.marks.get("gap", ()):
                fill = rgb(PALETTE["gap"])
            for style, t in (("window", 0.25), ("tap", 0.25), ("hover", 0.2)):
                if (r, c) in p.marks.get(style, ()):
                    fill = blend(fill, rgb(PALETTE[style]), t)
            if (r, c) in p.marks.get("current", ()):  # a light orange, whatever the value's colour
                fill = blend(rgb(COLOURS["blank"]), rgb(PALETTE["current"]), 0.45)
            draw.rectangle(box, fill=fill, outline=rgb(COLOURS["grid"]))
            if cell >= 20 and not math.isnan(v):
                colour = (140, 140, 140) if is_pad else rgb(COLOURS["text"])
                draw.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2 - (cell * 0.08 if (r, c) in p.notes else 0)),
                          _text(_cell_text(v), uni), font=font, fill=colour, anchor="mm")
            if cell >= 30 and (r, c) in p.notes:
                draw.text((box[2] - 3, box[3] - 2), _text("×" + p.notes[(r, c)], uni), font=note_font,
                          fill=rgb(PALETTE["window"]), anchor="rd")
    # Outlines last so neighbours do not paint over them.
    for style, width in (("window", 2), ("tap", 2), ("target", 3), ("argmax", 3), ("current", 3), ("hover", 2)):
        for r, c in p.marks.get(style, ()):
            box = (x0 + c * cell, y0 + r * cell, x0 + (c + 1) * cell, y0 + (r + 1) * cell)
            draw.rectangle(box, outline=rgb(PALETTE[style]), width=width)
    if pr or pc:  # the edge of the real input, inside the padding border
        draw.rectangle((x0 + pc * cell, y0 + pr * cell, x0 + (w - pc) * cell, y0 + (h - pr) * cell),
                       outline=(60, 60, 60), width=1)


def render_frames(trace: Any, wrt: str = "input", cell: int | None = None,
                  max_terms: int = 16) -> list[Image.Image]:
    """One image per step of a trace (after step 1, 2, ... N)."""
    n = step_count(trace, wrt)
    first = make_scene(trace, n, wrt, max_terms)
    cell = cell or choose_cell_size(first)
    return [render_scene(make_scene(trace, k, wrt, max_terms), cell) for k in range(1, n + 1)]


def save_gif(frames: list[Image.Image], path: str | Path, fps: float = 2.0) -> Path:
    """Write frames as a looping GIF (written to a temporary name, then moved into place).

    All frames share one palette taken from a sample of them: Pillow then stores each
    frame as its difference from the last, which is ~10x smaller and faster to write
    than a palette per frame.
    """
    path = Path(path)
    picks = sorted({round(i * (len(frames) - 1) / 7) for i in range(8)})
    w, h = frames[0].size
    sample = Image.new("RGB", (w, h * len(picks)))
    for row, i in enumerate(picks):
        sample.paste(frames[i].convert("RGB"), (0, row * h))
    palette = sample.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    indexed = [f.convert("RGB").quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    tmp = path.with_name(path.name + ".part")
    indexed[0].save(tmp, format="GIF", save_all=True, append_images=indexed[1:],
                    duration=int(round(1000 / fps)), loop=0)
    tmp.replace(path)
    return path


def save_frames(frames: list[Image.Image], directory: str | Path, prefix: str = "frame") -> list[Path]:
    """Write frames as numbered PNGs (frame_0001.png ...) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    digits = max(4, len(str(len(frames))))
    paths = []
    for i, frame in enumerate(frames, 1):
        p = directory / f"{prefix}_{i:0{digits}d}.png"
        frame.save(p)
        paths.append(p)
    return paths
