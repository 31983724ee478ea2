"""Evaluate a checkpoint on a dataset: accuracy, per-class accuracy and the confusion matrix.

examples:
  cnnlab evaluate runs/first                      # the run's own dataset, validation split
  cnnlab evaluate runs/first/checkpoint.npz --data mnist-sample --split train
  cnnlab evaluate runs/first --data my-photos/    # a folder of your own: all of it
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..cli import UsageError
from . import _common

HELP = "accuracy, per-class accuracy and confusion matrix of a checkpoint"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a checkpoint file or a run folder")
    p.add_argument("--data", help="dataset name or folder (default: the one it was trained on)")
    p.add_argument("--root", help="data folder for the downloadable datasets (default: the cache folder)")
    p.add_argument("--split", choices=["val", "train", "all"],
                   help="which images: the validation or training split, or all of them (default: all of a "
                        "folder given with --data, else val)")
    p.add_argument("--batch-size", type=int, default=500)


def confusion_text(confusion: np.ndarray, classes: list[str]) -> str:
    short = [c[:6] for c in classes]
    width = max(6, len(str(confusion.max())) + 1)
    head = " " * 8 + "".join(f"{s:>{width}}" for s in short) + "   <- predicted"
    rows = [f"{short[i]:>6}  " + "".join(f"{v:>{width}}" for v in confusion[i]) for i in range(len(classes))]
    return "\n".join([head, *rows])


def run(args: argparse.Namespace) -> int:
    from cnnlab.data import DataLoader
    from cnnlab.recipe import image_shape, load_evaluation_split, recipe_from_checkpoint
    from cnnlab.train import evaluate

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    ckpt = _common.checkpoint(args.checkpoint)
    name = args.data or ckpt.get("extra", {}).get("data")
    if not name:
        raise UsageError("the checkpoint does not say which data it was trained on; pass --data")
    recipe = recipe_from_checkpoint(ckpt)
    recipe.data = name
    recipe.root = args.root or recipe.root
    # a folder of one's own is evaluated whole; a named dataset (or the run's own) on its validation split
    split = args.split or ("all" if args.data and _is_folder(args.data) else "val")
    # the whole split as stored: the model normalises its inputs itself, and is never shown the augmentation
    ds = _common.usage(load_evaluation_split, recipe, split)
    shape = _common.usage(image_shape, ds)
    classes = list(getattr(ds, "classes", [])) or ckpt["extra"].get("classes", [])
    _common.check_fits(ckpt, shape, len(classes), args.checkpoint)
    model = _common.model_from(ckpt, args.checkpoint)
    r = evaluate(model, DataLoader(ds, batch_size=args.batch_size), num_classes=len(classes), flip=recipe.tta)
    print(f"{name} ({split}, {len(ds):,} images): loss {r.loss:.4f}, accuracy {r.accuracy:.2%}")
    print("\nper-class accuracy:")
    for c, acc, n in zip(classes, r.per_class_accuracy, r.confusion.sum(axis=1)):
        print(f"  {c:>12}  {acc:7.2%}  ({n} images)")
    print("\nconfusion matrix (rows: true class):")
    print(confusion_text(r.confusion, classes))
    return 0


def _is_folder(data: str) -> bool:
    from cnnlab.data.catalog import canonical_name

    return canonical_name(data) is None and Path(data).expanduser().is_dir()
