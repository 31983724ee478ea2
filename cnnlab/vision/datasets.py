"""torchvision.datasets under cnnlab: MNIST, FashionMNIST, CIFAR10 and ImageFolder.

They read through cnnlab.data's checked, offline-friendly loaders and hand out what
torchvision's do: `(PIL image, int)` without a transform, so `transforms.ToTensor()`
makes the float32 C x H x W Tensor. `.data`, `.targets`, `.classes` and
`.class_to_idx` are torchvision's too.

Where the files are looked for, in order: `root/mnist/` (cnnlab's layout; likewise
`fashion-mnist/`, `cifar10/`), `root/MNIST/raw/` (torchvision's, so an existing
torchvision download is used as it is; not for CIFAR-10, whose torchvision copy is
pickled), then cnnlab's data cache (`$CNNLAB_DATA`, `cnnlab datasets download ...`).
If none holds the split, `download=True` fetches it into `root/mnist/` with its
published checksum checked; without a network (or without `download`) the error says
which files to put where.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from ..data import cifar as _cifar
from ..data import folder as _folder
from ..data import mnist as _mnist
from ..data.collate import to_tensor
from ..data.dataset import Dataset
from ..data.download import cache_dir
from .transforms import batch_pipeline


class VisionDataset(Dataset):
    """Base class: `root`, `transform` (on the image) and `target_transform` (on the label)."""

    _repr_extra: str = ""

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        transforms: Callable | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
    ) -> None:
        self.root = root
        self.transform, self.target_transform, self.transforms = transform, target_transform, transforms

    def _finish(self, img: Any, target: Any) -> tuple[Any, Any]:
        if self.transforms is not None:
            return self.transforms(img, target)
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __repr__(self) -> str:
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}"]
        if self.root is not None:
            lines.append(f"    Root location: {self.root}")
        if self._repr_extra:
            lines.append(f"    {self._repr_extra}")
        for name in ("transform", "target_transform"):
            if getattr(self, name) is not None:
                lines.append(f"    {name.replace('_', ' ').capitalize()}: {getattr(self, name)!r}")
        return "\n".join(lines)


class _ArrayVision(VisionDataset):
    """A dataset held as one uint8 array: the DataLoader can transform whole batches.

    `get_batch` exists only while the transform is a pipeline of batch-able steps and
    `__getitem__` is this class's own (a subclass that changes items keeps its meaning).
    """

    cnnlab_loader: type = _mnist.MNIST
    torchvision_folder = ""
    classes: list[str] = []

    def __init__(
        self,
        root: str | os.PathLike | None,
        train: bool = True,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = train
        folder = self._existing_folder()
        # Files already in place are read as they are (offline, and a torchvision folder
        # holds them unpacked); only a split found nowhere is downloaded, into root/<name>/.
        loaded = self.cnnlab_loader(root=cache_dir(root), train=train, download=download and folder is None,
                                    folder=folder)
        self._set_arrays(loaded.images, loaded.targets)
        self._repr_extra = f"Split: {'Train' if train else 'Test'}"

    def _existing_folder(self) -> Path | None:
        """The first of root/<cnnlab name>, root/<torchvision name>/raw and cnnlab's cache
        that holds this split, or None (then root/<cnnlab name> is where it belongs)."""
        loader = self.cnnlab_loader
        candidates = [cache_dir(self.root) / loader.folder_name]
        if self.torchvision_folder and self.root is not None:
            candidates.append(Path(self.root).expanduser() / self.torchvision_folder / "raw")
        candidates.append(cache_dir() / loader.folder_name)
        return next((c for c in candidates if loader.has_split(c, self.train)), None)

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.data)

    def _pixels(self, indices: Any) -> np.ndarray:
        """uint8 N x C x H x W pixels of `indices`, from `.data` (which users may replace)."""
        raise NotImplementedError

    @property
    def get_batch(self) -> Callable:
        steps = batch_pipeline(self.transform) if self.transform is not None else None
        own_items = type(self).__getitem__ is _ArrayVision.__getitem__
        if steps is None or self.transforms is not None or self.target_transform is not None or not own_items:
            raise AttributeError("get_batch")  # the DataLoader then goes sample by sample

        def get_batch(indices: np.ndarray, rng: np.random.Generator | None = None) -> tuple:
            rng = rng if rng is not None else np.random.default_rng()
            x = self._pixels(indices)
            for step in steps:
                x = step.batch(x, rng)
            return x, np.asarray([self._target(int(i)) for i in indices], dtype=np.int64)

        return get_batch

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self._finish(self._image(int(index)), self._target(int(index)))

    def _target(self, index: int) -> int:
        # Through NumPy: indexing a Tensor element by element would go through autograd.
        targets = self.targets
        return int(targets.numpy()[index] if hasattr(targets, "numpy") else targets[index])

    def _image(self, index: int) -> Image.Image:
        raise NotImplementedError


class MNIST(_ArrayVision):
    """MNIST digits as torchvision gives them: items `(PIL 'L' image 28 x 28, int)`;
    `data` a uint8 Tensor N x 28 x 28, `targets` an int64 Tensor."""

    cnnlab_loader = _mnist.MNIST
    torchvision_folder = "MNIST"
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
               "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]  # fmt: skip

    def _set_arrays(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.data = to_tensor(images[:, 0])
        self.targets = to_tensor(labels.astype(np.int64))

    # torchvision's names from before `data`/`targets`, still common in older tutorials;
    # like torchvision they answer for either split and warn that they were renamed.
    train_data = property(lambda self: _renamed(self, "train_data", "data"))
    test_data = property(lambda self: _renamed(self, "test_data", "data"))
    train_labels = property(lambda self: _renamed(self, "train_labels", "targets"))
    test_labels = property(lambda self: _renamed(self, "test_labels", "targets"))

    def _image(self, index: int) -> Image.Image:
        return Image.fromarray(_numpy(self.data)[index], mode="L")

    def _pixels(self, indices: Any) -> np.ndarray:
        return _numpy(self.data)[indices][:, None]


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando), in MNIST's form."""

    cnnlab_loader = _mnist.FashionMNIST
    torchvision_folder = "FashionMNIST"
    classes = list(_mnist.FashionMNIST.classes)


class CIFAR10(_ArrayVision):
    """CIFAR-10 as torchvision gives it: items `(PIL RGB image 32 x 32, int)`; `data` a
    uint8 NumPy array N x 32 x 32 x 3, `targets` a list of ints. Read from the official
    binary version (cnnlab never unpickles), so a torchvision `cifar-10-batches-py`
    folder is not used."""

    cnnlab_loader = _cifar.CIFAR10
    classes = list(_cifar.CIFAR10.classes)

    def _set_arrays(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.data = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
        self.targets = labels.tolist()

    def _image(self, index: int) -> Image.Image:
        return Image.fromarray(self.data[index])

    def _pixels(self, indices: Any) -> np.ndarray:
        return np.asarray(self.data)[indices].transpose(0, 3, 1, 2)


def _renamed(dataset: Any, old: str, new: str) -> Any:
    warnings.warn(f"{old} has been renamed {new}", UserWarning, stacklevel=3)
    return getattr(dataset, new)


def _numpy(data: Any) -> np.ndarray:
    return data.numpy() if hasattr(data, "numpy") else np.asarray(data)


IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def pil_loader(path: str) -> Image.Image:
    """Open an image file as RGB, as torchvision's default loader does."""
    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")


default_loader = pil_loader


class ImageFolder(VisionDataset):
    """Images in one sub-folder per class (sorted names are the classes), read lazily:
    items `(loader(path), class index)`, by default a PIL RGB image at its own size.

    The folders are scanned by cnnlab.data's ImageFolder rules (nested folders too; an
    empty class is an error). `samples`/`imgs` list `(path, class index)`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        loader: Callable[[str], Any] = default_loader,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        files = _folder.scan(Path(root), allow_empty=allow_empty)
        self.classes = list(files)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.samples = [
            (str(path), self.class_to_idx[name])
            for name, paths in files.items()
            for path in paths
            if is_valid_file is None or is_valid_file(str(path))
        ]
        self.imgs = self.samples
        self.targets = [label for _, label in self.samples]
        self.loader = loader

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, target = self.samples[index]
        return self._finish(self.loader(path), target)


__all__ = ["CIFAR10", "FashionMNIST", "IMG_EXTENSIONS", "ImageFolder", "MNIST", "VisionDataset",
           "default_loader", "pil_loader"]
