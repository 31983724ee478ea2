"""Rich display: summaries, traces and run metrics as HTML tables, images and traces as PNG."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

import cnnlab
from cnnlab import explain
from cnnlab.models import create
from cnnlab.notebook import metrics, show


def test_summary_html_is_the_torchinfo_table():
    s = cnnlab.summary(create("convnet"), input_size=(64, 1, 28, 28))
    page = s._repr_html_()
    assert "13,686" in page and page.count("<tr>") >= len(s.rows) + 8
    for row in s.rows:
        assert row.label in page


def test_traces_show_their_steps_and_picture():
    t = explain.conv2d_trace([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])
    page = t._repr_html_()
    assert "0×0 + 1×1 + 3×2 + 4×3 = 19" in page and "<svg" in page
    for v in (19, 25, 37, 43):
        assert f">{v}<" in page
    from PIL import Image

    png = Image.open(io.BytesIO(t._repr_png_()))
    assert png.size[0] > 200
    back = explain.pool2d_backward_trace([[1, 5], [3, 2]], [[2.0]], 2)
    assert "goes to the max" in back._repr_html_()


def test_metrics_from_a_history_a_folder_and_a_dict(tmp_path):
    hist = {"steps": [{"loss": 1.0}] * 3, "epochs": [{"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.8,
                                                       "val_loss": 0.6, "val_accuracy": 0.755}]}
    (tmp_path / "metrics.json").write_text(json.dumps(hist))
    for source in (hist, {"history": hist}, tmp_path):
        page = metrics(source)._repr_html_()
        assert "75.50%" in page and "80.00%" in page and "3 steps" in page


def test_show_draws_images_batches_and_signed_maps():
    grey = show(np.linspace(0, 1, 16).reshape(4, 4), scale=1).array
    assert grey.shape == (4, 4, 3) and grey[0, 0].tolist() == [0, 0, 0] and grey[-1, -1].tolist() == [255] * 3
    signed = show(np.array([[-1.0, 0.0, 1.0]]), scale=1).array
    assert signed[0, 0, 2] > signed[0, 0, 0] and signed[0, 2, 0] > signed[0, 2, 2]   # blue, then red
    batch = show(cnnlab.zeros(10, 3, 4, 4), columns=5, scale=2).array
    assert batch.shape == (2 * 8 + 2, 5 * 8 + 4 * 2, 3)
    assert show(np.zeros((4, 4)))._repr_png_().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="expected an image"):
        show(np.zeros(3))
