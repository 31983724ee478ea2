"""Draw explain scenes with Pillow: PNG frames and GIF animations, no Qt needed.

One frame per step of a trace: the padded input with the window highlighted, the
kernel, the output filling in, the arithmetic written underneath and a colour bar for
the signs — the same scene the lab shows, so `cnnlab animate` works on a headless machine.
Text is wrapped by its rendered width, and nothing is drawn in the outer MARGIN.

>>> from cnnlab import explain
>>> trace = explain.conv2d_trace([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])
>>> frames = render_frames(trace)
>>> len(frames), frames[0].mode
(4, 'RGB')
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .colormap import DIVERGING, NEGATIVE_NAME, POSITIVE_NAME, ink_on
from .explain import scene as make_scene
from .explain import step_count
from .explain.cellfit import CellFormat, SUFFIX_ROOM, fit_format, note_text
from .explain.scene import COLOURS, PALETTE, Panel, Scene, blend, cell_colour, is_padding, panel_scale, rgb

MARGIN, GAP, TITLE_H, LINE_H, MIN_WIDTH = 16, 28, 22, 18, 560
BAR_W, BAR_H = 260, 12
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
    if unicode_ok:
        return s
    for a, b in (("×10", "e"), ("×", "x"), ("∞", "inf"), ("°", " deg"), ("−", "-"), ("⁻", "-")):
        s = s.replace(a, b)
    return s.translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789"))


def _width(font: Any, s: str) -> float:
    return font.getlength(s)


def wrap(text: str, font: Any, width: float) -> list[str]:
    """Lines of `text` no wider than `width` pixels in `font`, broken between words (a
    word wider than a line is broken between characters). Joined with spaces they give
    back the text (blank runs collapsed)."""
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        line = ""
        for word in para.split():
            candidate = f"{line} {word}" if line else word
            if _width(font, candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while _width(font, word) > width and len(word) > 1:
                cut = max(1, max(i for i in range(1, len(word) + 1) if _width(font, word[:i]) <= width or i == 1))
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def choose_cell_size(sc: Scene, budget: int = 440) -> int:
    """A cell size that keeps the biggest grid within `budget` pixels (12 to 44 px)."""
    largest = max(max(p.values.shape) for p in sc.panels)
    return int(max(12, min(44, budget // max(largest, 1))))


@dataclass
class FrameText:
    """The wrapped lines a frame draws under its grids (what the tests read back)."""

    status: list[str]
    caption: list[str]
    note: list[str]


def _layout(sc: Scene, cell: int) -> tuple[list[tuple[Panel, int, int]], int, int]:
    """Panel positions (groups side by side, panels of a group stacked), width and height."""
    small, uni = _font(13)
    placed, x, height = [], MARGIN, MARGIN
    for group in sc.groups():
        y, col_w = MARGIN, 0
        for p in group:
            h, w = p.values.shape
            placed.append((p, x, y + TITLE_H))
            y += TITLE_H + h * cell + GAP // 2
            col_w = max(col_w, w * cell, math.ceil(_width(small, _text(p.title + SUFFIX_ROOM, uni))))
        x += col_w + GAP
        height = max(height, y - GAP // 2)
    return placed, x - GAP + MARGIN + 1, height + 1  # +1: a grid's closing line is drawn on its edge


def frame_text(sc: Scene, width: int) -> FrameText:
    """The status, caption and size-derivation lines of a frame `width` pixels wide."""
    small, uni = _font(13)
    cap, _ = _font(14)
    room = width - 2 * MARGIN
    return FrameText(wrap(_text(sc.status, uni), small, room), wrap(_text(sc.caption, uni), cap, room),
                     wrap(_text(sc.note, uni), small, room))


def frame_width(sc: Scene, cell: int) -> int:
    return max(_layout(sc, cell)[1], MIN_WIDTH)


def render_scene(sc: Scene, cell: int | None = None, width: int | None = None,
                 lines: tuple[int, int, int] | None = None) -> Image.Image:
    """Draw one scene as an RGB image. `width` and `lines` (status, caption and note line
    counts) let all frames of an animation share one size."""
    cell = cell or choose_cell_size(sc)
    placed, grids_w, grids_h = _layout(sc, cell)
    width = max(width or 0, grids_w, MIN_WIDTH)
    text = frame_text(sc, width)
    n_status, n_caption, n_note = lines or (len(text.status), len(text.caption), len(text.note))
    small, uni = _font(13)
    cap_font, _ = _font(14)
    top = MARGIN + n_status * LINE_H + 4
    height = top + grids_h + 8 + n_caption * LINE_H + 4 + n_note * (LINE_H - 2) + 8 + BAR_H + LINE_H + MARGIN
    img = Image.new("RGB", (width, height), rgb(COLOURS["background"]))
    draw = ImageDraw.Draw(img)
    ink = rgb(COLOURS["text"])
    y = MARGIN
    for line in text.status:
        draw.text((MARGIN, y), line, font=small, fill=ink)
        y += LINE_H
    for panel, x, py in placed:
        fmt = _draw_panel(draw, panel, x, top + py - MARGIN, cell)
        title = panel.title + (fmt.title_suffix() if fmt else "")
        draw.text((x, top + py - MARGIN - TITLE_H + 4), _text(title, uni), font=small, fill=ink)
    y = top + grids_h + 8
    for line in text.caption:
        draw.text((MARGIN, y), line, font=cap_font, fill=ink)
        y += LINE_H
    y = top + grids_h + 8 + n_caption * LINE_H + 4
    for line in text.note:
        draw.text((MARGIN, y), line, font=small, fill=(90, 100, 110))
        y += LINE_H - 2
    _colour_bar(draw, MARGIN, height - MARGIN - LINE_H - BAR_H, min(BAR_W, width - 2 * MARGIN))
    return img


def _colour_bar(draw: ImageDraw.ImageDraw, x0: int, y0: int, w: int) -> None:
    """The sign legend: the diverging map from -|max| (left) to +|max| (right), in words."""
    for i in range(w):
        draw.line([(x0 + i, y0), (x0 + i, y0 + BAR_H - 1)], fill=tuple(int(c) for c in DIVERGING[i * 255 // (w - 1)]))
    draw.rectangle((x0, y0, x0 + w - 1, y0 + BAR_H - 1), outline=(85, 85, 85))
    font, uni = _font(12)
    y = y0 + BAR_H + 2
    ink = rgb(COLOURS["text"])
    draw.text((x0, y), _text(f"− negative ({NEGATIVE_NAME})", uni), font=font, fill=ink)
    draw.text((x0 + w // 2, y), "0", font=font, fill=ink, anchor="ma")
    draw.text((x0 + w - 1, y), _text(f"positive ({POSITIVE_NAME}) +", uni), font=font, fill=ink, anchor="ra")


def _fit(values: list[float], cell: int, sizes: tuple[float, ...], wrap_text=lambda s: s
         ) -> tuple[Any, CellFormat, bool] | None:
    for f in sizes:
        font, uni = _font(max(8, int(cell * f)))
        fmt = fit_format(values, lambda s: _width(font, _text(wrap_text(s), uni)) <= cell - 5)
        if fmt is not None:
            return font, fmt, uni
    return None


def _draw_panel(draw: ImageDraw.ImageDraw, p: Panel, x0: int, y0: int, cell: int) -> CellFormat | None:
    h, w = p.values.shape
    scale = panel_scale(p.values)
    fitted = _fit([v for v in p.values.ravel() if np.isfinite(v)], cell, (0.36, 0.3, 0.25)) if cell >= 20 else None
    notes = _fit(list(p.notes.values()), cell, (0.25,), note_text) if cell >= 30 and p.notes else None
    for r in range(h):
        for c in range(w):
            v = float(p.values[r, c])
            pad = is_padding(p, r, c)
            box = (x0 + c * cell, y0 + r * cell, x0 + (c + 1) * cell, y0 + (r + 1) * cell)
            fill = cell_colour(v, scale, pad)
            if (r, c) in p.marks.get("gap", ()):
                fill = rgb(PALETTE["gap"])
            if (r, c) in p.marks.get("current", ()):  # a light orange, whatever the value's colour
                fill = blend(rgb(COLOURS["blank"]), rgb(PALETTE["current"]), 0.45)
            draw.rectangle(box, fill=fill, outline=rgb(COLOURS["grid"]))
            ink = (90, 90, 90) if pad else ink_on(fill)
            if fitted is not None and not math.isnan(v):
                font, fmt, uni = fitted
                lift = cell * 0.1 if notes is not None and (r, c) in p.notes else 0
                draw.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2 - lift), _text(fmt.text(v), uni),
                          font=font, fill=ink, anchor="mm")
            if notes is not None and (r, c) in p.notes:
                font, fmt, uni = notes
                draw.text(((box[0] + box[2]) / 2, box[3] - 2), _text(note_text(fmt.text(p.notes[(r, c)])), uni),
                          font=font, fill=ink, anchor="md")
    # Outlines last so neighbours do not paint over them.
    for style, width in (("window", 2), ("tap", 2), ("target", 3), ("argmax", 3), ("current", 3), ("hover", 2)):
        for r, c in p.marks.get(style, ()):
            box = (x0 + c * cell, y0 + r * cell, x0 + (c + 1) * cell, y0 + (r + 1) * cell)
            draw.rectangle(box, outline=rgb(PALETTE[style]), width=width)
    pr, pc = p.pad
    if pr or pc:  # the edge of the real input, inside the padding border
        draw.rectangle((x0 + pc * cell, y0 + pr * cell, x0 + (w - pc) * cell, y0 + (h - pr) * cell),
                       outline=(60, 60, 60), width=1)
    return fitted[1] if fitted is not None else None



def render_frames(trace: Any, wrt: str = "input", cell: int | None = None,
                  max_terms: int = 16) -> list[Image.Image]:
    """One image per step of a trace (after step 1, 2, ... N), all the same size."""
    n = step_count(trace, wrt)
    scenes = [make_scene(trace, k, wrt, max_terms) for k in range(1, n + 1)]
    if not scenes:
        return []
    cell = cell or choose_cell_size(scenes[-1])
    width = max(frame_width(sc, cell) for sc in scenes)
    texts = [frame_text(sc, width) for sc in scenes]
    lines = tuple(max(len(getattr(t, k)) for t in texts) for k in ("status", "caption", "note"))
    return [render_scene(sc, cell, width, lines) for sc in scenes]  # type: ignore[arg-type]


def save_gif(frames: list[Image.Image], path: str | Path, fps: float = 2.0) -> Path:
    """Write frames as a looping GIF (written to a temporary name, then moved into place).

    All frames share one palette taken from a sample of them: Pillow then stores each
    frame as its difference from the last, which is ~10x smaller and faster to write
    than a palette per frame.
    """
    if not frames:
        raise ValueError("no frames to write: the trace has no steps")
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
