"""cnnlab.vision.utils: make_grid and save_image, by hand and against torchvision."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import cnnlab
from cnnlab.vision.utils import make_grid, save_image

try:
    import torch
    import torchvision.utils as tvu
except ImportError:
    torch = tvu = None
needs_torchvision = pytest.mark.skipif(tvu is None, reason="torchvision is not installed")


def test_grid_layout_by_hand():
    images = cnnlab.from_numpy(np.arange(1, 4, dtype=np.float32).reshape(3, 1, 1, 1) * np.ones((1, 1, 2, 2), np.float32))
    grid = make_grid(images, nrow=2, padding=1, pad_value=9).numpy()
    assert grid.shape == (3, 7, 7)  # grey repeated into RGB; 2 rows x 2 columns of 2+1, plus 1
    expected = np.full((7, 7), 9.0)
    expected[1:3, 1:3], expected[1:3, 4:6], expected[4:6, 1:3] = 1, 2, 3
    for c in range(3):
        np.testing.assert_array_equal(grid[c], expected)
    single = make_grid(cnnlab.zeros(1, 1, 4, 5))
    assert tuple(single.shape) == (3, 4, 5)  # one image: no padding at all
    assert tuple(make_grid([cnnlab.zeros(3, 4, 4)] * 10).shape) == (3, 2 * 6 + 2, 8 * 6 + 2)


def test_normalize_by_hand():
    images = cnnlab.from_numpy(np.array([-2.0, 0.0, 2.0, 6.0], np.float32).reshape(2, 1, 1, 2))
    whole = make_grid(images, padding=0, normalize=True).numpy()[0]
    np.testing.assert_allclose(whole, [[0.0, 0.25, 0.5, 1.0]])
    each = make_grid(images, padding=0, normalize=True, scale_each=True).numpy()[0]
    np.testing.assert_allclose(each, [[0.0, 1.0, 0.0, 1.0]])
    ranged = make_grid(images, padding=0, normalize=True, value_range=(0.0, 2.0)).numpy()[0]
    np.testing.assert_allclose(ranged, [[0.0, 0.0, 1.0, 1.0]])
    with pytest.raises(TypeError, match="tuple"):
        make_grid(images, normalize=True, value_range=[0, 1])


def test_save_image_rounds_to_bytes(tmp_path):
    x = cnnlab.from_numpy(np.array([[[0.0, 0.5, 1.0, 1.7]]], np.float32))
    save_image(x, tmp_path / "a.png")
    pixels = np.asarray(Image.open(tmp_path / "a.png"))
    assert pixels.shape == (1, 4, 3) and pixels[0, :, 0].tolist() == [0, 128, 255, 255]


@needs_torchvision
@pytest.mark.parametrize("kwargs", [{}, dict(nrow=3, padding=1, pad_value=0.5), dict(normalize=True),
                                    dict(normalize=True, scale_each=True), dict(normalize=True, value_range=(-0.5, 0.5))])
def test_matches_torchvision(kwargs, tmp_path):
    x = np.random.default_rng(1).random((11, 3, 5, 4)).astype(np.float32) * 3 - 1
    ours, theirs = make_grid(cnnlab.from_numpy(x), **kwargs), tvu.make_grid(torch.from_numpy(x), **kwargs)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    grey = x[:5, :1]
    np.testing.assert_array_equal(make_grid(cnnlab.from_numpy(grey), **kwargs).numpy(),
                                  tvu.make_grid(torch.from_numpy(grey), **kwargs).numpy())
    save_image(cnnlab.from_numpy(x), tmp_path / "ours.png", **kwargs)
    tvu.save_image(torch.from_numpy(x), tmp_path / "theirs.png", **kwargs)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "ours.png")), np.asarray(Image.open(tmp_path / "theirs.png")))
