"""torchvision.transforms.functional: the image operations the transform classes call.

Every function takes a PIL image or a Tensor image (... x C x H x W, a batch too) and
gives back the same kind, with torchvision's rules (sizes, rounding, fill, which
corner a crop starts from). Tensor images are worked on as NumPy arrays and handed
back as cnnlab Tensors of the same dtype; transforms do not record gradients.

>>> from PIL import Image
>>> t = to_tensor(Image.new("L", (3, 2), color=255))
>>> tuple(t.shape), str(t.dtype), float(t.max())
((1, 2, 3), 'float32', 1.0)
"""
from __future__ import annotations

from enum import Enum
from typing import Any, Sequence

import numpy as np
from PIL import Image

from ...data.collate import to_tensor as _wrap

_PIL_ARRAY_TYPES = {"I": np.int32, "I;16": np.int16, "I;16B": np.int16, "I;16L": np.int16, "F": np.float32}


class InterpolationMode(Enum):
    """How a resize or rotation picks its pixel values (torchvision's names)."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


_PIL_FILTERS = {
    InterpolationMode.NEAREST: Image.Resampling.NEAREST,
    InterpolationMode.NEAREST_EXACT: Image.Resampling.NEAREST,
    InterpolationMode.BILINEAR: Image.Resampling.BILINEAR,
    InterpolationMode.BICUBIC: Image.Resampling.BICUBIC,
    InterpolationMode.BOX: Image.Resampling.BOX,
    InterpolationMode.HAMMING: Image.Resampling.HAMMING,
    InterpolationMode.LANCZOS: Image.Resampling.LANCZOS,
}
_FROM_PIL_INT = {int(v): k for k, v in _PIL_FILTERS.items() if k is not InterpolationMode.NEAREST_EXACT}


def _mode(interpolation: InterpolationMode | int) -> InterpolationMode:
    if isinstance(interpolation, InterpolationMode):
        return interpolation
    if isinstance(interpolation, int) and interpolation in _FROM_PIL_INT:
        return _FROM_PIL_INT[interpolation]
    raise TypeError(f"interpolation should be an InterpolationMode, got {interpolation!r}")


# ------------------------------------------------------------------ what an image is
def _is_pil(img: Any) -> bool:
    return isinstance(img, Image.Image)


def _is_tensor(img: Any) -> bool:
    return hasattr(img, "requires_grad") and hasattr(img, "numpy")


def _array(img: Any) -> np.ndarray:
    """A Tensor image's pixels as an array (... x C x H x W); a TypeError otherwise."""
    if not _is_tensor(img):
        raise TypeError(f"img should be a PIL Image or a Tensor, got {type(img).__name__}")
    if img.ndim < 2:
        raise ValueError(f"a Tensor image needs at least 2 dimensions (H x W), got shape {tuple(img.shape)}")
    return img.detach().numpy()


def get_dimensions(img: Any) -> list[int]:
    """[channels, height, width] of a PIL or Tensor image."""
    if _is_pil(img):
        return [len(img.getbands()), img.height, img.width]
    a = _array(img)
    return [1 if a.ndim == 2 else a.shape[-3], a.shape[-2], a.shape[-1]]


def get_image_size(img: Any) -> list[int]:
    """[width, height], as torchvision gives it."""
    _, h, w = get_dimensions(img)
    return [w, h]


def _pil_from_hwc(pixels: np.ndarray, mode: str) -> Image.Image:
    return Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels, mode=mode)


# ------------------------------------------------------------------ conversions
def to_tensor(pic: Any):
    """A PIL image or H x W (x C) array as a C x H x W Tensor; uint8 is divided by 255."""
    if isinstance(pic, np.ndarray):
        if pic.ndim not in (2, 3):
            raise ValueError(f"pic should be 2 or 3 dimensional, got {pic.ndim} dimensions")
        hwc = pic[:, :, None] if pic.ndim == 2 else pic
    elif _is_pil(pic):
        hwc = np.array(pic, _PIL_ARRAY_TYPES.get(pic.mode, np.uint8), copy=True)
        if pic.mode == "1":
            hwc = hwc * np.uint8(255)
        hwc = hwc.reshape(pic.height, pic.width, len(pic.getbands()))
    else:
        raise TypeError(f"pic should be a PIL Image or ndarray, got {type(pic).__name__}")
    chw = np.ascontiguousarray(hwc.transpose(2, 0, 1))
    if chw.dtype == np.uint8:
        chw = np.divide(chw, np.float32(255), dtype=np.float32)
    return _wrap(chw)


def pil_to_tensor(pic: Image.Image):
    """A PIL image as a C x H x W Tensor of its own dtype (uint8 stays 0..255)."""
    if not _is_pil(pic):
        raise TypeError(f"pic should be a PIL Image, got {type(pic).__name__}")
    hwc = np.array(pic, _PIL_ARRAY_TYPES.get(pic.mode, np.uint8), copy=True)
    return _wrap(hwc.reshape(pic.height, pic.width, -1).transpose(2, 0, 1))


def to_pil_image(pic: Any, mode: str | None = None) -> Image.Image:
    """A C x H x W Tensor or H x W x C array as a PIL image; float Tensors are scaled by 255
    and truncated to uint8, as torchvision does."""
    if _is_tensor(pic):
        a = _array(pic)
        if a.ndim not in (2, 3):
            raise ValueError(f"pic should be 2/3 dimensional. Got {a.ndim} dimensions.")
        a = a[None] if a.ndim == 2 else a
        if a.dtype.kind == "f" and mode != "F":
            a = (a * np.float32(255)).astype(np.int64).astype(np.uint8)
        hwc = a.transpose(1, 2, 0)
    elif isinstance(pic, np.ndarray):
        if pic.ndim not in (2, 3):
            raise ValueError(f"pic should be 2/3 dimensional. Got {pic.ndim} dimensions.")
        hwc = pic[:, :, None] if pic.ndim == 2 else pic
    else:
        raise TypeError(f"pic should be Tensor or ndarray. Got {type(pic).__name__}.")
    channels = hwc.shape[2]
    if channels == 1:
        default = {np.dtype(np.uint8): "L", np.dtype(np.int16): "I;16", np.dtype(np.int32): "I",
                   np.dtype(np.float32): "F"}.get(hwc.dtype)
    else:
        default = {2: "LA", 3: "RGB", 4: "RGBA"}.get(channels) if hwc.dtype == np.uint8 else None
    mode = mode or default
    if mode is None:
        raise TypeError(f"cannot make a PIL image of {channels} channels of {hwc.dtype}; pass mode=")
    return _pil_from_hwc(np.ascontiguousarray(hwc), mode)


# ------------------------------------------------------------------ pixel values
def normalize(tensor: Any, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
    """`(tensor - mean) / std` per channel, in the tensor's float dtype."""
    a = _array(tensor)
    if a.dtype.kind != "f":
        raise TypeError(f"Input tensor should be a float tensor. Got {a.dtype}.")
    if a.ndim < 3:
        raise ValueError(f"Expected tensor to be a tensor image of size (..., C, H, W). Got {tuple(a.shape)}.")
    m = np.asarray(mean, dtype=a.dtype).reshape(-1, 1, 1)
    s = np.asarray(std, dtype=a.dtype).reshape(-1, 1, 1)
    if (s == 0).any():
        raise ValueError(f"std evaluated to zero after conversion to {a.dtype}, leading to division by zero.")
    out = np.subtract(a, m, out=a if inplace else None)
    np.divide(out, s, out=out)
    return tensor if inplace else _wrap(out)


def rgb_to_grayscale(img: Any, num_output_channels: int = 1):
    """Luma (ITU-R 601-2) of an RGB image, in 1 or 3 identical channels."""
    if num_output_channels not in (1, 3):
        raise ValueError("num_output_channels should be either 1 or 3")
    if _is_pil(img):
        grey = img.convert("L")
        return grey if num_output_channels == 1 else Image.merge("RGB", (grey, grey, grey))
    a = _array(img)
    if a.shape[-3] == 3:
        r, g, b = (a[..., i, :, :].astype(np.float32) for i in range(3))
        luma = (np.float32(0.2989) * r + np.float32(0.587) * g + np.float32(0.114) * b)
        luma = luma.astype(a.dtype)[..., None, :, :]
    elif a.shape[-3] == 1:
        luma = a.copy()
    else:
        raise TypeError(f"Input image tensor permitted channel values are [1, 3], but found {a.shape[-3]}")
    return _wrap(np.repeat(luma, num_output_channels, axis=-3) if num_output_channels == 3 else luma)


to_grayscale = rgb_to_grayscale


# ------------------------------------------------------------------ geometry
def hflip(img: Any):
    """Mirror left-right."""
    if _is_pil(img):
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return _wrap(_array(img)[..., ::-1].copy())


def vflip(img: Any):
    """Mirror top-bottom."""
    if _is_pil(img):
        return img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    return _wrap(_array(img)[..., ::-1, :].copy())


def _padding(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    """torchvision's padding spellings as (left, top, right, bottom)."""
    if isinstance(padding, (int, np.integer)):
        p = int(padding)
        return p, p, p, p
    padding = [int(p) for p in padding]
    if len(padding) == 1:
        return (padding[0],) * 4  # type: ignore[return-value]
    if len(padding) == 2:
        return padding[0], padding[1], padding[0], padding[1]
    if len(padding) == 4:
        return padding[0], padding[1], padding[2], padding[3]
    raise ValueError(f"Padding must be an int or a 1, 2, or 4 element tuple, not a {len(padding)} element tuple")


def _pad_array(a: np.ndarray, ltrb: tuple[int, int, int, int], fill: Any, mode: str, channels_last: bool):
    left, top, right, bottom = ltrb
    h_axis, w_axis = (a.ndim - 3, a.ndim - 2) if channels_last else (a.ndim - 2, a.ndim - 1)
    # Negative padding crops, as torchvision's does.
    crop = [slice(None)] * a.ndim
    crop[h_axis] = slice(max(-top, 0), a.shape[h_axis] - max(-bottom, 0))
    crop[w_axis] = slice(max(-left, 0), a.shape[w_axis] - max(-right, 0))
    a = a[tuple(crop)]
    widths = [(0, 0)] * a.ndim
    widths[h_axis] = (max(top, 0), max(bottom, 0))
    widths[w_axis] = (max(left, 0), max(right, 0))
    if mode != "constant":
        return np.pad(a, widths, mode=mode)
    shape = [n + lo + hi for n, (lo, hi) in zip(a.shape, widths)]
    out = np.empty(shape, a.dtype)
    out[...] = np.asarray(fill, dtype=a.dtype)  # a PIL image's fill may be one value per band
    inner = tuple(slice(lo, lo + n) for n, (lo, _) in zip(a.shape, widths))
    out[inner] = a
    return out


def pad(img: Any, padding: int | Sequence[int], fill: Any = 0, padding_mode: str = "constant"):
    """Pad the borders: `padding` is one int, (left/right, top/bottom) or (left, top,
    right, bottom); `padding_mode` is constant (with `fill`), edge, reflect or symmetric."""
    if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
        raise ValueError("Padding mode should be either constant, edge, reflect or symmetric")
    ltrb = _padding(padding)
    if _is_pil(img):
        pixels = np.asarray(img)
        bands = len(img.getbands())
        if padding_mode == "constant" and bands > 1 and isinstance(fill, (int, float)):
            fill = (fill,) * bands
        hwc = pixels.reshape(pixels.shape[0], pixels.shape[1], -1)
        out = _pad_array(hwc, ltrb, fill if padding_mode == "constant" else 0, padding_mode, True)
        padded = _pil_from_hwc(out, img.mode)
        if img.mode == "P" and img.getpalette():
            padded.putpalette(img.getpalette())
        return padded
    return _wrap(_pad_array(_array(img), ltrb, fill, padding_mode, False))


def crop(img: Any, top: int, left: int, height: int, width: int):
    """The height x width window whose top-left corner is (top, left); the part outside
    the image is filled with zeros."""
    if _is_pil(img):
        return img.crop((left, top, left + width, top + height))
    a = _array(img)
    h, w = a.shape[-2:]
    if top < 0 or left < 0 or top + height > h or left + width > w:
        ltrb = (max(-left, 0), max(-top, 0), max(left + width - w, 0), max(top + height - h, 0))
        a = _pad_array(a, ltrb, 0, "constant", False)
        top, left = max(top, 0), max(left, 0)
    return _wrap(a[..., top : top + height, left : left + width].copy())


def _size_pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    size = list(size)
    if len(size) == 1:
        return int(size[0]), int(size[0])
    if len(size) != 2:
        raise ValueError("Please provide only two dimensions (h, w) for size.")
    return int(size[0]), int(size[1])


def center_crop(img: Any, output_size: int | Sequence[int]):
    """The centred window of `output_size` (h, w); zero-padded first if the image is smaller."""
    th, tw = _size_pair(output_size)
    _, h, w = get_dimensions(img)
    if th > h or tw > w:
        pads = ((tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0,
                (tw - w + 1) // 2 if tw > w else 0, (th - h + 1) // 2 if th > h else 0)
        img = pad(img, pads, fill=0)
        _, h, w = get_dimensions(img)
        if th == h and tw == w:
            return img
    return crop(img, int(round((h - th) / 2.0)), int(round((w - tw) / 2.0)), th, tw)


def resized_output_size(height: int, width: int, size: int | Sequence[int], max_size: int | None = None):
    """torchvision's rule: an int (or 1-list) sets the shorter edge, keeping the aspect
    ratio (the longer edge truncated to an int); (h, w) sets both."""
    if isinstance(size, (int, np.integer)) or len(size) == 1:
        requested = int(size if isinstance(size, (int, np.integer)) else size[0])
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = requested, int(requested * long / short)
        if max_size is not None:
            if max_size <= requested:
                raise ValueError(f"max_size = {max_size} must be strictly greater than the requested size {requested}")
            if new_long > max_size:
                new_short, new_long = int(max_size * new_short / new_long), max_size
        new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
        return new_h, new_w
    if max_size is not None:
        raise ValueError("max_size should only be passed if size specifies the length of the smaller edge")
    return int(size[0]), int(size[1])


def _nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    # PyTorch's nearest: floor(out_index * in / out) in float32, clamped.
    scale = np.float32(n_in / n_out)
    return np.minimum(np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64), n_in - 1)


def _per_channel_pil(a: np.ndarray, op) -> np.ndarray:
    """Apply a PIL operation to each H x W plane of a tensor image, in float32 ('F' mode)."""
    planes = a.reshape(-1, *a.shape[-2:]).astype(np.float32)
    done = [np.asarray(op(Image.fromarray(p, mode="F")), dtype=np.float32) for p in planes]
    out = np.stack(done).reshape(*a.shape[:-2], *done[0].shape)
    if a.dtype.kind in "iu":
        info = np.iinfo(a.dtype)
        out = np.clip(np.round(out), info.min, info.max)
    return out.astype(a.dtype)


def resize(
    img: Any,
    size: int | Sequence[int],
    interpolation: InterpolationMode | int = InterpolationMode.BILINEAR,
    max_size: int | None = None,
    antialias: bool | None = True,
):
    """Resize to `size` (see `resized_output_size`). PIL images use Pillow's filters, as
    torchvision does; Tensor images use nearest as PyTorch indexes it, and the other
    filters through Pillow's float32 resampler (antialiased, like torchvision's default)."""
    interpolation = _mode(interpolation)
    _, h, w = get_dimensions(img)
    new_h, new_w = resized_output_size(h, w, size, max_size)
    if (new_h, new_w) == (h, w):
        return img
    if _is_pil(img):
        return img.resize((new_w, new_h), _PIL_FILTERS[interpolation])
    a = _array(img)
    if interpolation is InterpolationMode.NEAREST:
        rows, cols = _nearest_indices(h, new_h), _nearest_indices(w, new_w)
        return _wrap(a[..., rows[:, None], cols[None, :]].copy())
    return _wrap(_per_channel_pil(a, lambda p: p.resize((new_w, new_h), _PIL_FILTERS[interpolation])))


def rotate(
    img: Any,
    angle: float,
    interpolation: InterpolationMode | int = InterpolationMode.NEAREST,
    expand: bool = False,
    center: Sequence[int] | None = None,
    fill: Any = None,
):
    """Rotate by `angle` degrees counter-clockwise about `center` (default the middle),
    with Pillow's rotation (Tensor images plane by plane)."""
    resample = _PIL_FILTERS[_mode(interpolation)]
    if _is_pil(img):
        if fill is not None and len(img.getbands()) > 1 and isinstance(fill, (int, float)):
            fill = (fill,) * len(img.getbands())
        return img.rotate(angle, resample=resample, expand=expand, center=center, fillcolor=fill)
    a = _array(img)
    value = 0.0 if fill is None else float(fill if isinstance(fill, (int, float)) else fill[0])
    return _wrap(_per_channel_pil(
        a, lambda p: p.rotate(angle, resample=resample, expand=expand, center=center, fillcolor=value)
    ))


__all__ = [
    "InterpolationMode", "center_crop", "crop", "get_dimensions", "get_image_size",
    "hflip", "normalize", "pad", "pil_to_tensor", "resize", "resized_output_size", "rgb_to_grayscale",
    "rotate", "to_grayscale", "to_pil_image", "to_tensor", "vflip",
]
