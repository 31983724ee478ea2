"""The user's own pictures: a folder with one sub-folder per class, or a single image.

    my_digits/
        0/ a.png b.jpg ...
        1/ c.png ...

Images are decoded once, when the dataset is made, converted to grey or RGB and resized
to one size, and kept in memory as uint8: every epoch after that costs no decoding.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from ..nn.geometry import pair
from .dataset import ArrayDataset, _to_float
from .errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
_MAX_WARNINGS = 10  # one warning per unreadable file, then a single summary


def _check_channels(channels: int) -> None:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")


def read_image(path: str | os.PathLike, size: tuple[int, int], channels: int) -> np.ndarray:
    """Decode one image file into uint8 C x H x W; Pillow's errors pass through."""
    h, w = size
    with Image.open(path) as im:
        if im.format == "JPEG":
            im.draft("L" if channels == 1 else "RGB", (w, h))  # let the decoder downscale
        im = im.convert("L" if channels == 1 else "RGB")
        if im.size != (w, h):
            im = im.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=3.0)
        pixels = np.asarray(im)
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def load_image(
    path: str | os.PathLike, size: int | Sequence[int] = (28, 28), channels: int = 1
) -> np.ndarray:
    """One picture as a float32 C x H x W array in 0..1, ready to classify.

    Resized to `size` (height, width; the aspect ratio is not kept) and converted to
    grey (`channels=1`) or RGB (`channels=3`). A file that cannot be read raises
    DataError naming it.

    >>> image = load_image("my_seven.png")                 # doctest: +SKIP
    >>> model(cnnlab.from_numpy(image[None])).argmax(1)     # doctest: +SKIP
    """
    _check_channels(channels)
    try:
        pixels = read_image(path, pair(size, "image size", 1), channels)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except Exception as e:  # Pillow reports corrupt files through many exception types
        raise DataError(f"{path}: cannot read it as an image ({e})") from None
    return _to_float(pixels)


class ImageFolder(ArrayDataset):
    """A dataset from a folder holding one sub-folder of images per class.

    Args:
        root: the folder; its sub-folder names, sorted, become the classes.
        size: (height, width) every image is resized to; an int means square.
        channels: 1 for grey, 3 for RGB.
        transform: applied to each float32 image (values 0..1) on the way out.

    PNG, JPEG, BMP, GIF, WebP, TIFF and PPM/PGM files are read, also in nested folders.
    A file that cannot be decoded is skipped with a warning naming it; a class folder
    without any image is an error. `samples` lists the (path, label) pairs kept.

    >>> ds = ImageFolder("my_digits", size=28, channels=1)   # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: int | Sequence[int] = (28, 28),
        channels: int = 1,
        transform: Callable | None = None,
    ) -> None:
        _check_channels(channels)
        self.root = Path(root)
        self.size = pair(size, "image size", 1)
        files_per_class = scan(self.root)
        classes = list(files_per_class)
        candidates = [(f, label) for label, files in enumerate(files_per_class.values()) for f in files]
        images = np.empty((len(candidates), channels) + self.size, np.uint8)
        kept: list[tuple[Path, int]] = []
        unreadable: list[str] = []
        for path, label in candidates:
            try:
                images[len(kept)] = read_image(path, self.size, channels)
            except Exception as e:  # Pillow reports corrupt files through many exception types
                unreadable.append(f"{path} ({type(e).__name__}: {e})")
                continue
            kept.append((path, label))
        _warn_unreadable(unreadable)
        labels = np.array([label for _, label in kept], dtype=np.int64)
        emptied = [c for i, c in enumerate(classes) if not np.any(labels == i)]
        if emptied:
            raise DataError(
                f"{self.root}: no readable image in class folder(s) {', '.join(emptied)}"
            )
        self.samples = kept
        super().__init__(images[: len(kept)], labels, classes, transform)

    def __repr__(self) -> str:
        c, (h, w) = self.images.shape[1], self.size
        return f"ImageFolder({str(self.root)!r}, {len(self)} images {c}x{h}x{w}, {len(self.classes)} classes)"


def scan(root: Path, allow_empty: bool = False) -> dict[str, list[Path]]:
    """The image files of each class folder of `root`, by class name in sorted order.

    A class folder without images is an error unless `allow_empty`.
    """
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DataError(
            f"{root}: expected one sub-folder per class (like {root}/cat/1.png, "
            f"{root}/dog/2.png), found none"
        )
    files = {
        d.name: sorted(
            p for p in d.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith(".")
        )
        for d in class_dirs
    }
    empty = [name for name, found in files.items() if not found]
    if empty and not allow_empty:
        raise DataError(
            f"{root}: class folder(s) {', '.join(empty)} hold no images "
            f"(looked for {' '.join(IMAGE_EXTENSIONS)}); add images or remove the folder"
        )
    return files


def _warn_unreadable(unreadable: list[str]) -> None:
    for entry in unreadable[:_MAX_WARNINGS]:
        warnings.warn(f"skipping unreadable image {entry}", stacklevel=3)
    if len(unreadable) > _MAX_WARNINGS:
        warnings.warn(
            f"skipped {len(unreadable) - _MAX_WARNINGS} more unreadable images", stacklevel=3
        )
