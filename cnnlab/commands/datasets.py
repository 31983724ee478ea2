"""List, inspect and download the datasets cnnlab can train on.

Examples:
  cnnlab datasets                        what is ready here and what needs downloading
  cnnlab datasets info mnist-sample      size, classes, counts per class, a digit in text
  cnnlab datasets info shapes --val      the validation split
  cnnlab datasets download mnist         fetch MNIST into the data folder, checksums checked
  cnnlab datasets info ./my_pictures --size 32 --channels 3

Names: mnist-sample and shapes/shapes-rgb are built in; mnist, fashion-mnist and cifar10
are downloaded on request; a folder with one sub-folder of images per class also works.
Downloads go to the data folder: --root, else $CNNLAB_DATA, else the user cache folder.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ..cli import UsageError

HELP = "list, inspect and download datasets"

_SHADES = " .:-=+*#%@"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", nargs="?", default="list", choices=["list", "info", "download"],
        help="list (default), info NAME or download NAME",
    )
    parser.add_argument("name", nargs="?", help="a dataset name or a folder of class folders")
    parser.add_argument("--root", help="data folder for downloaded datasets")
    parser.add_argument("--val", action="store_true", help="info: the validation/test split")
    parser.add_argument("--size", type=int, default=28, help="folders: image side (default 28)")
    parser.add_argument(
        "--channels", type=int, default=1, choices=[1, 3], help="folders: 1 grey, 3 RGB"
    )
    parser.add_argument(
        "--show", type=int, default=1, metavar="N", help="info: draw N images as text (default 1)"
    )


def run(args: argparse.Namespace) -> int:
    from cnnlab import data

    try:
        if args.action == "list":
            _list(data, args.root)
        elif args.name is None:
            raise UsageError(f"`{args.action}` needs a dataset name, e.g. `cnnlab datasets {args.action} mnist`")
        elif args.action == "download":
            _download(data, args.name, args.root)
        else:
            _info(data, args)
    except data.DataError as e:
        print(f"cnnlab datasets: {e}", file=sys.stderr)
        return 1
    return 0


def _list(data, root) -> None:
    infos = data.available(root)
    statuses = ["ready" if i.ready else i.detail for i in infos]
    name_width = max(len(i.name) for i in infos)
    status_width = max(map(len, statuses))
    for info, status in zip(infos, statuses):
        print(f"{info.name:<{name_width}}  {status:<{status_width}}  {info.description}")
    print(f"\ndata folder: {data.cache_dir(root)}")


def _download(data, name: str, root) -> None:
    key = data.catalog.canonical_name(name)
    if key not in ("mnist", "fashion-mnist", "cifar10"):
        if key is None:
            raise UsageError(f"unknown dataset {name!r}: downloadable ones are mnist, fashion-mnist, cifar10")
        print(f"{key} is built in: nothing to download")
        return
    for train in (True, False):
        ds = data.get_dataset(key, train, root=root, download=True)
    print(f"{key} is ready in {ds.folder()}")


def _info(data, args) -> None:
    start = time.perf_counter()
    try:
        ds = data.get_dataset(
            args.name, not args.val, root=args.root, size=args.size, channels=args.channels
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    seconds = time.perf_counter() - start
    image, _ = ds[0]
    split = "validation/test" if args.val else "training"
    shape = " x ".join(map(str, image.shape))
    print(f"{args.name} ({split} split): {len(ds):,} images of {shape}, "
          f"{len(ds.classes)} classes, loaded in {seconds:.2f} s")
    counts = np.bincount(_labels(ds), minlength=len(ds.classes))
    width = max(len(c) for c in ds.classes)
    for label, (name, count) in enumerate(zip(ds.classes, counts)):
        print(f"  {label:>3}  {name:<{width}}  {count:>7,}")
    for i in range(min(args.show, len(ds))):
        image, label = ds[i]
        print(f"\nimage {i}: label {label} ({ds.classes[label]})")
        print(ascii_art(image))


def _labels(ds) -> np.ndarray:
    targets = getattr(ds, "targets", None)
    if targets is not None:
        return np.asarray(targets)
    return np.array([ds[i][1] for i in range(len(ds))])


def ascii_art(image: np.ndarray) -> str:
    """A C x H x W image in 0..1 as text, two characters per pixel (square-ish cells)."""
    grey = np.clip(np.asarray(image, dtype=np.float32).mean(axis=0), 0, 1)
    levels = np.minimum((grey * len(_SHADES)).astype(int), len(_SHADES) - 1)
    return "\n".join("".join(_SHADES[v] * 2 for v in row) for row in levels)
