"""CIFAR-10 in its official binary version (no pickle is ever loaded).

Each `.bin` file is a run of 3,073-byte records: one label byte (0..9), then the
32 x 32 red plane, the green plane and the blue plane, row-major -- already C x H x W.
"""
from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np

from .dataset import CachedDataset
from .download import RemoteFile, cache_dir, copy_atomically, ensure_files, manual_instructions, verify
from .errors import DataError

RECORD_BYTES = 1 + 3 * 32 * 32
MEMBERS_DIR = "cifar-10-batches-bin"  # the folder inside the official archive


class CIFAR10(CachedDataset):
    """CIFAR-10: 32 x 32 colour photos in ten classes, 50,000 for training, 10,000 for test.

    Args:
        root: the data folder; the files live in `root/cifar10/`. Default: `cache_dir()`.
        train: the five training batches, else the test batch.
        download: fetch `cifar-10-binary.tar.gz` (162 MB) first, check its md5, and
            unpack the six `.bin` files from it.
        transform: applied to each float32 image (values 0..1) on the way out.

    The `.bin` files are read from `root/cifar10/cifar-10-batches-bin/` (the archive's
    own layout) or straight from `root/cifar10/`; an archive put there by hand is
    verified and unpacked on first use. CIFAR-10 is by Alex Krizhevsky, Vinod Nair and
    Geoffrey Hinton (University of Toronto).

    >>> train = CIFAR10(train=True, download=True)     # doctest: +SKIP
    """

    title = "CIFAR-10"
    folder_name = "cifar10"
    mirrors = ["https://www.cs.toronto.edu/~kriz/"]
    archive = RemoteFile("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", 170_052_171)
    train_files = [f"data_batch_{i}.bin" for i in range(1, 6)]
    test_files = ["test_batch.bin"]
    classes = [
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ]  # fmt: skip

    def _load(self, folder: Path, download: bool) -> tuple[np.ndarray, np.ndarray]:
        if not all(_find(folder, n) for n in self.train_files + self.test_files):
            archive = folder / self.archive.name
            if download:
                ensure_files(self.title, folder, self.all_files(), self.mirrors)
            elif archive.is_file():
                verify(archive, self.archive)
            if archive.is_file():
                unpack_archive(archive, folder, self.train_files + self.test_files)
        names = self.train_files if self.train else self.test_files
        paths = [_find(folder, name) for name in names]
        missing = [name for name, path in zip(names, paths) if path is None]
        if missing:
            raise DataError(
                f"{self.title} files not found in {folder}: missing {', '.join(missing)}. "
                "Pass download=True (or run `cnnlab datasets download cifar10`) to fetch "
                "them.\n" + manual_instructions(folder, self.all_files(), self.mirrors)
            )
        batches = [read_cifar_batch(path, len(self.classes)) for path in paths]
        return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])

    @classmethod
    def all_files(cls) -> list[RemoteFile]:
        """The published files: the one archive."""
        return [cls.archive]

    @classmethod
    def has_split(cls, folder: Path, train: bool) -> bool:
        names = cls.train_files if train else cls.test_files
        return all(_find(folder, n) for n in names) or (folder / cls.archive.name).is_file()

    @classmethod
    def is_ready(cls, root: str | os.PathLike | None = None, unpacked: bool = False) -> bool:
        """Whether the `.bin` files are in place (or, unless `unpacked`, the archive)."""
        folder = cache_dir(root) / cls.folder_name
        if all(_find(folder, n) for n in cls.train_files + cls.test_files):
            return True
        return not unpacked and (folder / cls.archive.name).is_file()


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / MEMBERS_DIR / name, folder / name):
        if candidate.is_file():
            return candidate
    return None


def read_cifar_batch(path: str | os.PathLike, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary file as uint8 images N x 3 x 32 x 32 and int64 labels N."""
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0 or data.size % RECORD_BYTES:
        raise DataError(
            f"{path}: expected whole CIFAR-10 records of {RECORD_BYTES} bytes (1 label + "
            f"3072 pixels), got {data.size} bytes"
            + (f" ({data.size // RECORD_BYTES} records and {data.size % RECORD_BYTES} "
               "bytes over: truncated?)" if data.size else "")
        )
    records = data.reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels >= n_classes)
    if len(bad):
        raise DataError(
            f"{path}: record {bad[0]} has label {labels[bad[0]]}, expected 0..{n_classes - 1} "
            "(is this the CIFAR-10 binary version?)"
        )
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def unpack_archive(archive: Path, folder: Path, names: list[str]) -> None:
    """Copy the named `.bin` members out of the official archive, each written atomically.

    Only regular files with exactly the expected names are read, so a crafted archive
    cannot write anywhere else.
    """
    wanted = {f"{MEMBERS_DIR}/{name}" for name in names}
    out = folder / MEMBERS_DIR
    out.mkdir(parents=True, exist_ok=True)
    found = set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    copy_atomically(tar.extractfile(member), out / Path(member.name).name)
                    found.add(member.name)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{archive}: cannot unpack it ({e})") from None
    if found != wanted:
        missing = ", ".join(sorted(Path(n).name for n in wanted - found))
        raise DataError(f"{archive}: the archive lacks {missing}")
