"""`cnnlab animate` and cnnlab.render: one GIF frame per step, headless, no Qt."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab import explain, render
from cnnlab.assets import SAMPLE_IMAGES_DIR
from cnnlab.cli import main

SAMPLES = SAMPLE_IMAGES_DIR


def n_frames(path: Path) -> int:
    with Image.open(path) as im:
        return getattr(im, "n_frames", 1)


def test_conv_gif_has_one_frame_per_step(tmp_path, capsys):
    gif = tmp_path / "conv.gif"
    assert main(["animate", "conv", "--size", "5", "--kernel", "3", "--stride", "2", "--padding", "1",
                 "-o", str(gif)]) == 0
    assert n_frames(gif) == 9  # a 3x3 output
    assert "9 frames" in capsys.readouterr().out
    assert not (tmp_path / "conv.gif.part").exists()


def test_frames_dir_and_rectangular_dilated_settings(tmp_path):
    frames = tmp_path / "frames"
    assert main(["animate", "conv", "--size", "7x6", "--kernel", "3x2", "--stride", "2x1", "--dilation", "2x1",
                 "--preset", "box blur", "--frames", str(frames)]) == 0
    ho, wo = explain.check_conv2d((1, 7, 6), (3, 2), (2, 1), 0, (2, 1)).out_shape
    pngs = sorted(frames.glob("frame_*.png"))
    assert len(pngs) == ho * wo and pngs[0].name == "frame_0001.png"


@pytest.mark.parametrize("args,steps", [
    (["pool", "--size", "6", "--kernel", "2", "--mode", "avg"], 9),
    (["pool", "--size", "5", "--kernel", "3", "--stride", "2", "--padding", "1"], 9),
    (["conv", "--size", "4", "--kernel", "3", "--padding", "1", "--stride", "2", "--backward", "--wrt", "weight"], 9),
    (["conv", "--size", "4", "--kernel", "3", "--padding", "1", "--backward"], 16),
    (["pool", "--size", "4", "--kernel", "2", "--backward"], 4),
    (["conv", "--size", "5", "--channels", "3", "--kernel", "2", "--flip"], 16),
])
def test_gif_frames_match_steps(tmp_path, args, steps):
    gif = tmp_path / "out.gif"
    assert main(["animate", *args, "-o", str(gif)]) == 0
    assert n_frames(gif) == steps


def test_image_input(tmp_path):
    gif = tmp_path / "digit.gif"
    assert main(["animate", "conv", "--image", str(SAMPLES / "mnist_3.png"), "--size", "6", "--kernel", "3",
                 "--preset", "edge", "-o", str(gif)]) == 0
    assert n_frames(gif) == 16


@pytest.mark.parametrize("args,fragment", [
    (["conv", "--stride", "0", "-o", "x.gif"], "stride height must be at least 1"),
    (["conv", "--size", "3", "--kernel", "5", "-o", "x.gif"], "kernel spans 5 cells"),
    (["pool", "--kernel", "2", "--padding", "2", "-o", "x.gif"], "more than half the pooling window"),
    (["conv"], "-o FILE.gif"),
    (["conv", "--image", "no-such-file.png", "-o", "x.gif"], "cannot read the image"),
    (["conv", "--preset", "nope", "-o", "x.gif"], "unknown kernel preset"),
    (["conv", "--numbers", "1 2; 3", "-o", "x.gif"], "same count"),
])
def test_bad_settings_give_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, fragment):
    monkeypatch.chdir(tmp_path)
    assert main(["animate", *args]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1
    assert not (tmp_path / "x.gif").exists()


def test_typed_numbers_reproduce_the_worked_example(tmp_path):
    frames = tmp_path / "f"
    assert main(["animate", "conv", "--numbers", "0 1 2; 3 4 5; 6 7 8", "--weights", "0 1; 2 3",
                 "--padding", "1", "--stride", "3x2", "--frames", str(frames)]) == 0
    assert len(list(frames.glob("*.png"))) == 4


def test_render_frames_same_size_and_distinct():
    t = explain.pool2d_backward_trace(np.arange(16).reshape(4, 4), None, 2, mode="sum")
    frames = render.render_frames(t)
    assert len(frames) == 4 and len({f.size for f in frames}) == 1
    assert len({f.tobytes() for f in frames}) == 4


def test_engine_side_never_imports_qt():
    code = ("import sys, numpy as np; import cnnlab, cnnlab.explain, cnnlab.render, cnnlab.commands.animate;"
            "from cnnlab import explain, render;"
            "render.render_frames(explain.conv2d_trace(np.eye(3), np.ones((2, 2))));"
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'PyQt', 'pyqtgraph'))];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
