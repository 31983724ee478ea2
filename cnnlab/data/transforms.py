"""Image transforms for datasets: conversion, normalisation and data augmentation.

A transform takes one float32 image C x H x W, or a batch N x C x H x W (the
DataLoader's fast path transforms whole batches at once), and an optional NumPy
Generator `rng` that random transforms draw from, so a loader's seed fixes the
augmentation too. Any plain function of one image also works inside `Compose`.

>>> import numpy as np
>>> t = Compose([ToFloat(), Normalize((0.1307,), (0.3081,)), RandomShift(2)])
>>> t(np.zeros((1, 28, 28), np.uint8), rng=np.random.default_rng(0)).shape
(1, 28, 28)
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..nn.geometry import pair
from ._rng import as_generator


def _check_image(x: np.ndarray, who: str) -> None:
    if x.ndim not in (3, 4):
        raise ValueError(
            f"{who} expects an image C x H x W or a batch N x C x H x W, got shape {x.shape}"
        )


class Transform:
    """Base class: `t(x, rng=None)` maps an image (CHW) or a batch (NCHW) to the same kind.

    Subclasses that use randomness draw from `rng` when given, else from their own
    generator, seeded on first use from `cnnlab.manual_seed`'s stream.
    """

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class _RandomTransform(Transform):
    def __init__(self) -> None:
        self._rng: np.random.Generator | None = None

    def _gen(self, rng: np.random.Generator | None) -> np.random.Generator:
        if rng is not None:
            return rng
        if self._rng is None:  # seeded on first use, so building a transform draws nothing
            self._rng = as_generator(None)
        return self._rng


def apply(
    transform: Callable | None, x: np.ndarray, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Apply a transform to an image or a batch.

    cnnlab transforms handle batches themselves; a plain function is called once per
    image of a batch, since it may only understand one image.
    """
    if transform is None:
        return x
    if isinstance(transform, Transform):
        return transform(x, rng)
    if x.ndim == 4:
        return np.stack([_as_array(transform(image)) for image in x])
    return _as_array(transform(x))


def _as_array(x) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


class Compose(Transform):
    """Apply transforms in order.

    >>> Compose([ToFloat(), Normalize(0.5, 0.5)])(np.full((1, 2, 2), 255, np.uint8)).ravel()
    array([1., 1., 1., 1.], dtype=float32)
    """

    def __init__(self, transforms: Iterable[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x, rng=None):
        for t in self.transforms:
            x = apply(t, x, rng)
        return x

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(map(repr, self.transforms)) + "])"


class ToFloat(Transform):
    """uint8 pixels 0..255 become float32 0..1; float input is only cast to float32.

    cnnlab's datasets already hand out float32 images in 0..1, so in their pipelines
    this is a no-op kept for PyTorch-style code (`ToTensor` is the same class). It
    expects channels first (C x H x W), as every cnnlab dataset gives.
    """

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if x.dtype == np.uint8:
            return np.multiply(x, np.float32(1 / 255), dtype=np.float32)
        return x.astype(np.float32, copy=False)


ToTensor = ToFloat  # PyTorch's name; the DataLoader makes the Tensors


class Normalize(Transform):
    """`(x - mean) / std` per channel; `mean` and `std` are a number or one per channel.

    >>> Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))(np.ones((3, 1, 1), np.float32)).ravel()
    array([2., 2., 2.], dtype=float32)
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        self.mean = tuple(np.atleast_1d(np.asarray(mean, dtype=float)).tolist())
        self.std = tuple(np.atleast_1d(np.asarray(std, dtype=float)).tolist())
        if any(s <= 0 for s in self.std):
            raise ValueError(f"Normalize: every std must be positive, got {self.std}")

    def __call__(self, x, rng=None):
        _check_image(x, "Normalize")
        channels = x.shape[-3]
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, channels):
                raise ValueError(
                    f"Normalize: {name} has {len(values)} values, the image has "
                    f"{channels} channel{'s' * (channels != 1)}"
                )
        mean = np.asarray(self.mean, np.float32).reshape(-1, 1, 1)
        scale = (1 / np.asarray(self.std, np.float32)).reshape(-1, 1, 1)
        out = np.subtract(x, mean, dtype=np.float32)
        out *= scale
        return out


class RandomHorizontalFlip(_RandomTransform):
    """Mirror each image left-right with probability `p`."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, x, rng=None):
        _check_image(x, "RandomHorizontalFlip")
        rng = self._gen(rng)
        if x.ndim == 3:
            return x[..., ::-1].copy() if rng.random() < self.p else x
        flip = np.flatnonzero(rng.random(len(x)) < self.p)
        out = x.copy()
        out[flip] = x[flip, ..., ::-1]
        return out


class RandomCrop(_RandomTransform):
    """Pad each side by `padding` (with `fill`), then cut a `size` window at a random place.

    `RandomCrop(32, padding=4)` is the usual CIFAR-10 augmentation.
    """

    def __init__(
        self, size: int | Sequence[int], padding: int | Sequence[int] = 0, fill: float = 0.0
    ) -> None:
        super().__init__()
        self.size = pair(size, "RandomCrop size", 0)
        self.padding = pair(padding, "RandomCrop padding", 0)
        self.fill = fill

    def __call__(self, x, rng=None):
        _check_image(x, "RandomCrop")
        return _random_crop(x, self.size, self.padding, self.fill, self._gen(rng))


class RandomShift(_RandomTransform):
    """Move each image by up to `max_shift` pixels along each axis, filling with `fill`.

    The same as `RandomCrop(image size, padding=max_shift)`, without naming the size.
    """

    def __init__(self, max_shift: int, fill: float = 0.0) -> None:
        super().__init__()
        self.max_shift = pair(max_shift, "RandomShift max_shift", 0)[0]
        self.fill = fill

    def __call__(self, x, rng=None):
        _check_image(x, "RandomShift")
        m = self.max_shift
        return _random_crop(x, x.shape[-2:], (m, m), self.fill, self._gen(rng))


def _random_crop(x, size, padding, fill, rng):
    (h, w), (ph, pw) = size, padding
    if ph or pw:
        # Faster than np.pad, which is general-purpose and slow on small batches.
        padded = np.full(x.shape[:-2] + (x.shape[-2] + 2 * ph, x.shape[-1] + 2 * pw), fill, x.dtype)
        padded[..., ph : ph + x.shape[-2], pw : pw + x.shape[-1]] = x
        x = padded
    hp, wp = x.shape[-2:]
    if h > hp or w > wp:
        raise ValueError(f"RandomCrop: a {h}x{w} window does not fit a {hp}x{wp} padded image")
    if x.ndim == 3:
        top, left = rng.integers(0, hp - h + 1), rng.integers(0, wp - w + 1)
        return x[:, top : top + h, left : left + w].copy()
    tops = rng.integers(0, hp - h + 1, size=len(x))
    lefts = rng.integers(0, wp - w + 1, size=len(x))
    # Every h x w window as a view; one fancy-index gather copies the chosen one per image.
    windows = sliding_window_view(x, (h, w), axis=(2, 3))
    return windows[np.arange(len(x)), :, tops, lefts]
