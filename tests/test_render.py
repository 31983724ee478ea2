"""GIF frames (cnnlab.render) are readable: captions wrapped by their rendered width with
nothing lost, no ink in the outer margin, and a colour bar saying which side is negative."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

from cnnlab import explain, render
from cnnlab.commands.animate import add_arguments, build_trace
from cnnlab.explain.scene import COLOURS, rgb

CASES = [
    ["conv", "--size", "4", "--kernel", "3", "--padding", "1", "--backward"],
    ["conv", "--size", "5", "--channels", "3", "--kernel", "2", "--flip"],
    ["conv", "--size", "6", "--channels", "3", "--kernel", "3", "--padding", "1"],
    ["conv", "--size", "4", "--kernel", "3", "--padding", "1", "--stride", "2", "--backward", "--wrt", "weight"],
    ["pool", "--size", "5", "--kernel", "3", "--mode", "avg", "--padding", "1", "--stride", "2"],
    ["conv", "--numbers", "-0.1008 0.25 12345.678; 0.5 -0.04096 1; 3 2 1", "--weights", "-0.04096 0.1; 0.2 -0.3"],
]


def trace_and_wrt(argv: list[str]):
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(argv)
    return build_trace(args), (args.wrt if args.op == "conv" and args.backward else "input")


def words(s: str) -> list[str]:
    return s.split()


@pytest.mark.parametrize("argv", CASES, ids=[" ".join(c[:4]) for c in CASES])
def test_frames_have_blank_margins_and_whole_captions(argv):
    trace, wrt = trace_and_wrt(argv)
    frames = render.render_frames(trace, wrt)
    assert len({f.size for f in frames}) == 1
    width = frames[0].width
    bg = np.array(rgb(COLOURS["background"]))
    font, _ = render._font(14)
    for k, frame in enumerate(frames, 1):
        a = np.asarray(frame)
        m = render.MARGIN
        for band in (a[:m], a[-m:], a[:, :m], a[:, -m:]):
            assert (band == bg).all(), f"ink in the margin of frame {k}"
        sc = explain.scene(trace, k, wrt, 16)
        text = render.frame_text(sc, width)
        assert words(" ".join(text.caption)) == words(sc.caption)  # nothing cut, "= result" included
        assert sc.caption.split()[-1] == text.caption[-1].split()[-1]
        for line in text.caption:
            assert font.getlength(line) <= width - 2 * m


def test_wrap_breaks_by_rendered_width():
    font, _ = render._font(14)
    text = "0×0 + 1×1 + 3×2 + 4×3 + 11111×22222 + WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW = 19"
    lines = render.wrap(text, font, 120)
    assert all(font.getlength(line) <= 120 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_gif_draws_the_colour_bar_negative_blue_on_the_left():
    frames = render.render_frames(explain.conv2d_trace([[-1.0, 2.0], [3.0, -4.0]], [[1.0]]))
    a = np.asarray(frames[0]).astype(int)
    y = a.shape[0] - render.MARGIN - render.LINE_H - render.BAR_H // 2
    left, right = a[y, render.MARGIN + 2], a[y, render.MARGIN + render.BAR_W - 3]
    assert left[2] > left[0] and right[0] > right[2]  # blue left (negative), red right (positive)


def test_no_frames_is_an_error_not_an_empty_gif(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        render.save_gif([], tmp_path / "x.gif")
    assert not (tmp_path / "x.gif").exists()
