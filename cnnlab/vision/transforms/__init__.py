"""torchvision.transforms under cnnlab: image transforms for PIL images and Tensors.

    transform = transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)),
    ])

Each class does what torchvision's does (the arithmetic lives in `functional`); the
random ones draw from cnnlab's global generator, so `cnnlab.manual_seed(n)` makes the
augmentation repeat. A dataset from `cnnlab.vision.datasets` whose pipeline is made
only of the transforms marked "batched" below is transformed a whole batch at a time
by the DataLoader (then the random draws come from the loader's seed instead).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from ...data.transforms import _random_crop as _random_windows
from ...random import generator as _global_rng
from . import functional as F
from .functional import InterpolationMode


class _Transform:
    """Base: `__call__(img)`; a subclass that can work on a uint8/float N x C x H x W
    array batch all at once defines `batch(x, rng)`."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Compose(_Transform):
    """Apply the transforms in order."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        return "Compose(\n" + "".join(f"    {t!r}\n" for t in self.transforms) + ")"


class ToTensor(_Transform):
    """PIL image or H x W x C array -> float32 C x H x W Tensor in [0, 1] (batched)."""

    def __call__(self, pic: Any):
        return F.to_tensor(pic)

    def batch(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.divide(x, np.float32(255), dtype=np.float32) if x.dtype == np.uint8 else x

    def __repr__(self) -> str:
        return "ToTensor()"


class PILToTensor(_Transform):
    """PIL image -> C x H x W Tensor of its own dtype (uint8 stays 0..255)."""

    def __call__(self, pic: Any):
        return F.pil_to_tensor(pic)


class ToPILImage(_Transform):
    """Tensor or array -> PIL image (float values are scaled by 255)."""

    def __init__(self, mode: str | None = None) -> None:
        self.mode = mode

    def __call__(self, pic: Any):
        return F.to_pil_image(pic, self.mode)


class Normalize(_Transform):
    """`(x - mean) / std` per channel of a float Tensor image (batched)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> None:
        self.mean, self.std, self.inplace = mean, std, inplace

    def __call__(self, tensor: Any):
        return F.normalize(tensor, self.mean, self.std, self.inplace)

    def batch(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return F.normalize(_tensor(x), self.mean, self.std).numpy()


class Resize(_Transform):
    """Resize: an int sets the shorter edge (keeping the aspect ratio), (h, w) both.
    Bilinear by default; PIL images go through Pillow, as in torchvision."""

    def __init__(
        self,
        size: int | Sequence[int],
        interpolation: InterpolationMode | int = InterpolationMode.BILINEAR,
        max_size: int | None = None,
        antialias: bool | None = True,
    ) -> None:
        self.size, self.interpolation, self.max_size, self.antialias = size, interpolation, max_size, antialias

    def __call__(self, img: Any):
        return F.resize(img, self.size, self.interpolation, self.max_size, self.antialias)


class Pad(_Transform):
    """Pad the borders (see `functional.pad` for the spellings of `padding`) (batched)."""

    def __init__(self, padding: int | Sequence[int], fill: Any = 0, padding_mode: str = "constant") -> None:
        F._padding(padding)  # reject a bad spelling now, not at the first image
        if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
            raise ValueError("Padding mode should be either constant, edge, reflect or symmetric")
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def __call__(self, img: Any):
        return F.pad(img, self.padding, self.fill, self.padding_mode)

    def batch(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return F._pad_array(x, F._padding(self.padding), _batch_fill(self.fill, x), self.padding_mode, False)


class CenterCrop(_Transform):
    """The centred window of `size` (an int means square) (batched)."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = F._size_pair(size)

    def __call__(self, img: Any):
        return F.center_crop(img, self.size)

    def batch(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return F.center_crop(_tensor(x), self.size).numpy()


class RandomCrop(_Transform):
    """Pad by `padding` (if given), then cut a `size` window at a random place (batched)."""

    def __init__(
        self,
        size: int | Sequence[int],
        padding: int | Sequence[int] | None = None,
        pad_if_needed: bool = False,
        fill: Any = 0,
        padding_mode: str = "constant",
    ) -> None:
        self.size = F._size_pair(size)
        self.padding, self.pad_if_needed, self.fill, self.padding_mode = padding, pad_if_needed, fill, padding_mode

    @staticmethod
    def get_params(img: Any, output_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """(top, left, height, width) of a random crop of `output_size`."""
        _, h, w = F.get_dimensions(img)
        return _crop_params(h, w, output_size, _global_rng())

    def _padded(self, img: Any, pad: Callable) -> Any:
        if self.padding is not None:
            img = pad(img, self.padding)
        _, h, w = F.get_dimensions(img) if not isinstance(img, np.ndarray) else (0, *img.shape[-2:])
        if self.pad_if_needed and w < self.size[1]:
            img = pad(img, [self.size[1] - w, 0])
        if self.pad_if_needed and h < self.size[0]:
            img = pad(img, [0, self.size[0] - h])
        return img

    def __call__(self, img: Any):
        img = self._padded(img, lambda im, p: F.pad(im, p, self.fill, self.padding_mode))
        top, left, h, w = self.get_params(img, self.size)
        return F.crop(img, top, left, h, w)

    def batch(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        fill = _batch_fill(self.fill, x)
        x = self._padded(x, lambda a, p: F._pad_array(a, F._padding(p), fill, self.padding_mode, False))
        _crop_params(x.shape[-2], x.shape[-1], self.size, rng)  # the same size check as one image
        return _random_windows(x, self.size, (0, 0), 0, rng)


class _RandomFlip(_Transform):
    _flip = staticmethod(F.hflip)
    _axis = -1

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: Any):
        return self._flip(img) if _global_rng().random() < self.p else img

    def batch(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        flip = rng.random(len(x)) < self.p
        return np.where(flip[:, None, None, None], np.flip(x, axis=self._axis), x)


class RandomHorizontalFlip(_RandomFlip):
    """Mirror left-right with probability `p` (batched)."""


class RandomVerticalFlip(_RandomFlip):
    """Mirror top-bottom with probability `p` (batched)."""

    _flip = staticmethod(F.vflip)
    _axis = -2


class Grayscale(_Transform):
    """To grey (ITU-R 601-2 luma), in `num_output_channels` (1 or 3) channels."""

    def __init__(self, num_output_channels: int = 1) -> None:
        self.num_output_channels = num_output_channels

    def __call__(self, img: Any):
        return F.rgb_to_grayscale(img, self.num_output_channels)


class Lambda(_Transform):
    """Apply a user function."""

    def __init__(self, lambd: Callable) -> None:
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__!r}")
        self.lambd = lambd

    def __call__(self, img: Any):
        return self.lambd(img)


class RandomApply(_Transform):
    """Apply the list of transforms, all together, with probability `p`."""

    def __init__(self, transforms: Sequence[Callable], p: float = 0.5) -> None:
        self.transforms, self.p = list(transforms), p

    def __call__(self, img: Any):
        if self.p < _global_rng().random():
            return img
        for t in self.transforms:
            img = t(img)
        return img


class RandomRotation(_Transform):
    """Rotate by an angle drawn uniformly from `degrees` (d means -d..d), via Pillow."""

    def __init__(
        self,
        degrees: float | Sequence[float],
        interpolation: InterpolationMode | int = InterpolationMode.NEAREST,
        expand: bool = False,
        center: Sequence[int] | None = None,
        fill: Any = 0,
    ) -> None:
        if isinstance(degrees, (int, float)):
            if degrees < 0:
                raise ValueError("If degrees is a single number, it must be positive.")
            degrees = (-float(degrees), float(degrees))
        elif len(degrees) != 2:
            raise ValueError("If degrees is a sequence, it must be of len 2.")
        self.degrees = (float(degrees[0]), float(degrees[1]))
        self.interpolation, self.expand, self.center, self.fill = interpolation, expand, center, fill

    @staticmethod
    def get_params(degrees: Sequence[float]) -> float:
        return float(_global_rng().uniform(degrees[0], degrees[1]))

    def __call__(self, img: Any):
        angle = self.get_params(self.degrees)
        return F.rotate(img, angle, self.interpolation, self.expand, self.center, self.fill)


class RandomResizedCrop(_Transform):
    """A random part (share `scale` of the area, aspect ratio in `ratio`) resized to `size`."""

    def __init__(
        self,
        size: int | Sequence[int],
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
        interpolation: InterpolationMode | int = InterpolationMode.BILINEAR,
        antialias: bool | None = True,
    ) -> None:
        self.size = F._size_pair(size)
        self.scale, self.ratio, self.interpolation, self.antialias = scale, ratio, interpolation, antialias

    @staticmethod
    def get_params(img: Any, scale: Sequence[float], ratio: Sequence[float]) -> tuple[int, int, int, int]:
        _, height, width = F.get_dimensions(img)
        rng, area = _global_rng(), height * width
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):  # ten tries at a window that fits, then the centre
            target_area = area * rng.uniform(scale[0], scale[1])
            aspect = math.exp(rng.uniform(*log_ratio))
            w, h = int(round(math.sqrt(target_area * aspect))), int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
        in_ratio = width / height
        if in_ratio < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif in_ratio > max(ratio):
            h, w = height, int(round(height * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, img: Any):
        top, left, h, w = self.get_params(img, self.scale, self.ratio)
        return F.resize(F.crop(img, top, left, h, w), self.size, self.interpolation, antialias=self.antialias)


def _crop_params(h: int, w: int, size: tuple[int, int], rng: np.random.Generator) -> tuple[int, int, int, int]:
    th, tw = size
    if h < th or w < tw:
        raise ValueError(f"Required crop size {(th, tw)} is larger than input image size {(h, w)}")
    if (h, w) == (th, tw):
        return 0, 0, h, w
    return int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1)), th, tw


def _tensor(x: np.ndarray):
    from ...data.collate import to_tensor

    return to_tensor(x)


def _batch_fill(fill: Any, x: np.ndarray) -> Any:
    # A per-band fill of a PIL image lies along the channel axis of an N x C x H x W batch.
    if isinstance(fill, (int, float)):
        return fill
    return np.asarray(fill, dtype=x.dtype).reshape(-1, 1, 1)


def batch_pipeline(transform: Any) -> list | None:
    """The steps of `transform` if every one can work on a whole array batch, else None.

    The batch starts as the stored uint8 N x C x H x W pixels, so a `ToTensor` step
    must come before any step that needs float values (Normalize).
    """
    steps = transform.transforms if isinstance(transform, Compose) else [transform]
    seen_to_tensor = False
    for step in steps:
        if not callable(getattr(step, "batch", None)) or (isinstance(step, Normalize) and not seen_to_tensor):
            return None
        seen_to_tensor = seen_to_tensor or isinstance(step, ToTensor)
    return steps if seen_to_tensor else None


__all__ = [
    "CenterCrop", "Compose", "Grayscale", "InterpolationMode", "Lambda", "Normalize", "PILToTensor", "Pad",
    "RandomApply", "RandomCrop", "RandomHorizontalFlip", "RandomResizedCrop", "RandomRotation",
    "RandomVerticalFlip", "Resize", "ToPILImage", "ToTensor", "functional",
]
