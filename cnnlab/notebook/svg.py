"""An explain `Scene` as inline SVG for a notebook: the same panels, colours, numbers and
marks as the desktop lab and the GIFs, with the receptive-field hover done in CSS.

Every cell is a `<g>` carrying its panel key and (row, col); its `<title>` holds the exact
float32 value (the browser's tooltip). Hover needs no kernel round trip and no JavaScript:
each cell's connections (`explain.hover`) become one CSS rule `svg:has(.cell-A:hover) .lnk-A`,
so what a pointer over an output cell lights up is the lab's receptive field.

>>> from cnnlab import explain
>>> t = explain.conv2d_trace([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])
>>> '>19<' in scene_svg(explain.scene(t, 1), hover_map(t))
True
"""
from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from ..colormap import ink_on
from ..explain import hover as explain_hover
from ..explain.cellfit import CellFormat, exact, fit_format, note_text
from ..explain.narrate import cell_label
from ..explain.scene import COLOURS, PALETTE, Panel, Scene, cell_colour, is_padding, panel_scale, rgb

Cell = tuple[int, int]
HoverMap = dict[tuple[str, int, int], list[tuple[str, Cell]]]
TITLE_H, GAP, MARGIN = 20, 26, 6
_OUTLINES = (("window", 2), ("tap", 2), ("target", 3), ("argmax", 3), ("current", 3))


def _hex(c: tuple[int, int, int]) -> str:
    return "#%02x%02x%02x" % c


def _fits(cell: int, font: float):
    # a sans-serif digit is about 0.58 em wide; keep 4 px of room
    return lambda s: len(s) * 0.58 * font <= cell - 4


def panel_format(p: Panel, cell: int) -> tuple[CellFormat | None, float]:
    """The format all of a panel's numbers share and the font size they are drawn at."""
    values = [v for v in p.values.ravel() if np.isfinite(v)]
    found = [(fmt, round(cell * f, 1)) for f in (0.36, 0.3, 0.25)
             if (fmt := fit_format(values, _fits(cell, cell * f))) is not None]
    # the most digits first (-15.5 in a smaller font beats -16 in a larger one), then the larger font
    return max(found, key=lambda c: (c[0].digits, -abs(c[0].exponent), c[1]), default=(None, 0.0))


def _cell_id(key: str, r: int, c: int) -> str:
    return f"{key}-{r}-{c}"


def hover_map(trace: Any, wrt: str = "input") -> HoverMap:
    """For every cell of the trace's panels, the cells `explain.hover` connects it to
    (computed once per trace: the links do not change from step to step)."""
    from ..explain import scene

    sc = scene(trace, 0, wrt)
    links: HoverMap = {}
    for p in sc.panels:
        h, w = p.values.shape
        for r in range(h):
            for c in range(w):
                for q in sc.panels:
                    q.marks.pop("hover", None)
                found = [x for x in explain_hover(sc, trace, p.key, r, c, wrt) if x != (p.key, (r, c))]
                if found:
                    links[(p.key, r, c)] = found
    return links


def hover_css(root: str, links: HoverMap) -> str:
    """One rule per cell with links: hovering it outlines what it connects to."""
    colour = PALETTE["hover"]
    rules = [f"#{root} .cell:hover rect {{stroke:{colour};stroke-width:3}}"]
    for (key, r, c), cells in links.items():
        me = _cell_id(key, r, c)
        rules.append(f"#{root}:has(.c-{me}:hover) .l-{me} rect {{stroke:{colour};stroke-width:3}}")
    return "\n".join(rules)


def lit_by(links: HoverMap) -> dict[tuple[str, int, int], list[str]]:
    """The reverse of `links`: for each cell, the ids of the cells whose hover outlines it."""
    out: dict[tuple[str, int, int], list[str]] = {}
    for (key, r, c), cells in links.items():
        for k, (a, b) in cells:
            out.setdefault((k, a, b), []).append(_cell_id(key, r, c))
    return out


def _panel_svg(p: Panel, x0: int, y0: int, cell: int, lit: dict, channel: int) -> tuple[list[str], str]:
    h, w = p.values.shape
    scale = panel_scale(p.values)
    fmt, font = panel_format(p, cell) if cell >= 18 else (None, 0.0)
    out = [f'<g class="panel" data-key="{p.key}">']
    for r in range(h):
        for c in range(w):
            v = float(p.values[r, c])
            pad = is_padding(p, r, c)
            fill = cell_colour(v, scale, pad)
            if (r, c) in p.marks.get("gap", ()):
                fill = rgb(PALETTE["gap"])
            if (r, c) in p.marks.get("current", ()):
                fill = (255, 217, 164)  # light orange whatever the value's colour, as the GIFs draw it
            me = _cell_id(p.key, r, c)
            targets = " ".join(f"l-{x}" for x in lit.get((p.key, r, c), ()))  # lit while cell x is hovered
            label = cell_label(p, r, c, channel) + ("" if math.isnan(v) else f" = {exact(v)}")
            text = "" if (fmt is None or math.isnan(v)) else fmt.text(v)
            x, y = x0 + c * cell, y0 + r * cell
            ink = _hex((90, 90, 90) if pad else ink_on(fill))
            out.append(f'<g class="cell c-{me} {targets}" data-r="{r}" data-c="{c}"><title>{html.escape(label)}'
                       f'</title><rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{_hex(fill)}" '
                       f'stroke="{COLOURS["grid"]}" stroke-width="1"/>')
            if text:
                out.append(f'<text x="{x + cell / 2}" y="{y + cell / 2}" font-size="{font}" fill="{ink}" '
                           'text-anchor="middle" dominant-baseline="central" pointer-events="none">'
                           f'{html.escape(text)}</text>')
            if (r, c) in p.notes and cell >= 30:
                note = note_text(CellFormat(2).text(float(p.notes[(r, c)])) if not isinstance(p.notes[(r, c)], str)
                                 else p.notes[(r, c)])
                out.append(f'<text class="note" x="{x + cell - 2}" y="{y + cell - 3}" font-size="{cell * 0.22:.1f}" '
                           f'fill="{ink}" text-anchor="end" pointer-events="none">{html.escape(note)}</text>')
            out.append("</g>")
    for style, width in _OUTLINES:
        for r, c in sorted(p.marks.get(style, ())):
            out.append(f'<rect class="mark-{style}" x="{x0 + c * cell}" y="{y0 + r * cell}" width="{cell}" '
                       f'height="{cell}" fill="none" stroke="{PALETTE[style]}" stroke-width="{width}" '
                       f'pointer-events="none"/>')
    pr, pc = p.pad
    if pr or pc:  # the edge of the real input inside its padding border
        out.append(f'<rect x="{x0 + pc * cell}" y="{y0 + pr * cell}" width="{(w - 2 * pc) * cell}" '
                   f'height="{(h - 2 * pr) * cell}" fill="none" stroke="#3c3c3c" pointer-events="none"/>')
    out.append("</g>")
    return out, (fmt.title_suffix() if fmt else "")


def choose_cell(sc: Scene, budget: int = 360) -> int:
    largest = max(max(p.values.shape) for p in sc.panels)
    return int(max(12, min(44, budget // max(largest, 1))))


def scene_svg(sc: Scene, links: HoverMap | None = None, cell: int | None = None, root: str = "cnnlab-scene",
              channel: int = 0, css: bool = True) -> str:
    """The scene's grids as one `<svg>` (groups side by side, each group's panels stacked).
    css=False leaves out the hover rules (the lab sends them once per trace, not every step)."""
    cell = cell or choose_cell(sc)
    links = links or {}
    lit = lit_by(links)
    body, x, height = [], MARGIN, 0
    for group in sc.groups():
        y, col_w = MARGIN, 0
        for p in group:
            h, w = p.values.shape
            parts, suffix = _panel_svg(p, x, y + TITLE_H, cell, lit, channel)
            title = html.escape(p.title + suffix)
            body.append(f'<text class="title" x="{x}" y="{y + TITLE_H - 6}" font-size="12.5" '
                        f'fill="{COLOURS["text"]}">{title}</text>')
            body += parts
            col_w = max(col_w, w * cell, int(len(p.title + suffix) * 7))
            y += TITLE_H + h * cell + GAP // 2
        x += col_w + GAP
        height = max(height, y)
    width = x - GAP + MARGIN
    style = f"<style>{hover_css(root, links)}</style>" if links and css else ""
    return (f'<svg id="{root}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto" '  # narrower outputs scale it down
            f'font-family="DejaVu Sans, Arial, sans-serif">{style}'
            + "".join(body) + "</svg>")
