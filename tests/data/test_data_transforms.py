"""Transforms on one image (C x H x W) and on a batch (N x C x H x W)."""
from __future__ import annotations

import numpy as np
import pytest

from cnnlab.data import transforms as T


def rng(seed=0):
    return np.random.default_rng(seed)


def test_to_float_scales_uint8_and_passes_floats():
    out = T.ToFloat()(np.array([[[0, 51, 255]]], np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[[0, 0.2, 1]]], rtol=1e-6)
    x = np.full((1, 2, 2), 0.5, np.float64)
    assert T.ToFloat()(x).dtype == np.float32
    assert T.ToTensor is T.ToFloat


def test_normalize_per_channel_on_image_and_batch():
    norm = T.Normalize((0.5, 0.0, 1.0), (0.5, 2.0, 0.25))
    image = np.ones((3, 2, 2), np.float32)
    np.testing.assert_allclose(norm(image)[:, 0, 0], [1.0, 0.5, 0.0])
    batch = np.stack([image, 2 * image])
    out = norm(batch)
    assert out.shape == (2, 3, 2, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[1, :, 1, 1], [3.0, 1.0, 4.0])
    assert image[0, 0, 0] == 1  # input untouched


def test_normalize_errors_are_clear():
    with pytest.raises(ValueError, match="std must be positive"):
        T.Normalize(0.5, 0.0)
    with pytest.raises(ValueError, match="mean has 3 values, the image has 1 channel"):
        T.Normalize((0.5, 0.5, 0.5), (1, 1, 1))(np.zeros((1, 4, 4), np.float32))
    with pytest.raises(ValueError, match="C x H x W"):
        T.Normalize(0.5, 0.5)(np.zeros((4, 4), np.float32))


def test_horizontal_flip_probability_and_batch():
    image = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(image), image[..., ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(0.0)(image), image)
    batch = np.stack([image] * 200)
    out = T.RandomHorizontalFlip(0.5)(batch, rng(1))
    flipped = np.array([np.array_equal(o, image[..., ::-1]) for o in out])
    kept = np.array([np.array_equal(o, image) for o in out])
    assert np.all(flipped ^ kept)
    assert 60 < flipped.sum() < 140
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        T.RandomHorizontalFlip(1.5)


def windows(padded: np.ndarray, h: int, w: int) -> list[np.ndarray]:
    hp, wp = padded.shape[-2:]
    return [padded[:, i : i + h, j : j + w] for i in range(hp - h + 1) for j in range(wp - w + 1)]


def test_random_crop_cuts_a_window_of_the_padded_image():
    image = np.random.default_rng(0).random((2, 5, 5)).astype(np.float32) + 1
    padded = np.pad(image, [(0, 0), (2, 2), (2, 2)])
    crop = T.RandomCrop(5, padding=2)
    batch = crop(np.stack([image] * 30), rng(2))
    assert batch.shape == (30, 2, 5, 5)
    options = windows(padded, 5, 5)
    for out in list(batch) + [crop(image, rng(3))]:
        assert any(np.array_equal(out, w) for w in options)
    assert len({out.tobytes() for out in batch}) > 5  # not the same place every time
    assert T.RandomCrop((3, 4))(image, rng(0)).shape == (2, 3, 4)
    with pytest.raises(ValueError, match="does not fit"):
        T.RandomCrop(10, padding=1)(image)


def test_random_shift_moves_content_by_at_most_max_shift():
    image = np.zeros((1, 9, 9), np.float32)
    image[0, 4, 4] = 1  # one bright pixel in the middle
    out = T.RandomShift(2)(np.stack([image] * 100), rng(4))
    assert out.shape == (100, 1, 9, 9)
    rows, cols = np.nonzero(out[:, 0])[1:]
    assert len(rows) == 100  # the pixel never leaves the image
    assert np.abs(rows - 4).max() == 2 and np.abs(cols - 4).max() == 2


def test_random_transforms_are_reproducible_from_rng():
    batch = np.random.default_rng(0).random((16, 3, 8, 8)).astype(np.float32)
    t = T.Compose([T.RandomCrop(8, padding=2), T.RandomHorizontalFlip(), T.RandomShift(1)])
    np.testing.assert_array_equal(t(batch, rng(9)), t(batch, rng(9)))
    assert not np.array_equal(t(batch, rng(9)), t(batch, rng(10)))


def test_compose_applies_plain_functions_image_by_image_on_a_batch():
    calls = []

    def double(x):
        calls.append(x.shape)
        return x * 2

    t = T.Compose([T.ToFloat(), double, T.Normalize(1.0, 1.0)])
    batch = np.full((3, 1, 2, 2), 255, np.uint8)
    np.testing.assert_allclose(t(batch), 1.0)
    assert calls == [(1, 2, 2)] * 3
    assert "Normalize" in repr(t)


def test_batch_and_single_image_agree_for_deterministic_transforms():
    batch = np.random.default_rng(1).integers(0, 256, (4, 3, 5, 5)).astype(np.uint8)
    t = T.Compose([T.ToFloat(), T.Normalize((0.4, 0.5, 0.6), (0.2, 0.3, 0.4))])
    np.testing.assert_allclose(t(batch), np.stack([t(b) for b in batch]), rtol=1e-6)


def test_without_an_rng_random_transforms_follow_manual_seed():
    import cnnlab

    x = np.random.default_rng(0).random((1, 8, 8)).astype(np.float32)

    def draws():
        cnnlab.manual_seed(5)
        shift = T.RandomShift(3)
        return [shift(x) for _ in range(4)]

    first, second = draws(), draws()
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert len({a.tobytes() for a in first}) > 1


def test_building_transforms_draws_no_random_numbers():
    import cnnlab

    cnnlab.manual_seed(8)
    expected = cnnlab.randint(0, 10**6, (3,)).numpy()
    cnnlab.manual_seed(8)
    T.Compose([T.RandomCrop(8, padding=1), T.RandomHorizontalFlip(), T.RandomShift(1)])
    np.testing.assert_array_equal(cnnlab.randint(0, 10**6, (3,)).numpy(), expected)
