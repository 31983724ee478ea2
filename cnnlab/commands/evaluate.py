"""Evaluate a checkpoint on a dataset: accuracy, per-class accuracy and the confusion matrix.

examples:
  cnnlab evaluate runs/first                      # the run's own dataset, validation split
  cnnlab evaluate runs/first/checkpoint.npz --data mnist-sample --split train
"""
from __future__ import annotations

import argparse

import numpy as np

from ..cli import UsageError
from . import _common

HELP = "accuracy, per-class accuracy and confusion matrix of a checkpoint"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a checkpoint file or a run folder")
    p.add_argument("--data", help="dataset name or folder (default: the one it was trained on)")
    p.add_argument("--split", default="val", choices=["val", "train"])
    p.add_argument("--batch-size", type=int, default=500)


def confusion_text(confusion: np.ndarray, classes: list[str]) -> str:
    short = [c[:6] for c in classes]
    width = max(6, len(str(confusion.max())) + 1)
    head = " " * 8 + "".join(f"{s:>{width}}" for s in short) + "   <- predicted"
    rows = [f"{short[i]:>6}  " + "".join(f"{v:>{width}}" for v in confusion[i]) for i in range(len(classes))]
    return "\n".join([head, *rows])


def run(args: argparse.Namespace) -> int:
    from cnnlab.data import DataLoader
    from cnnlab.recipe import image_shape, load_split, recipe_from_checkpoint
    from cnnlab.train import evaluate

    ckpt = _common.checkpoint(args.checkpoint)
    name = args.data or ckpt.get("extra", {}).get("data")
    if not name:
        raise UsageError("the checkpoint does not say which data it was trained on; pass --data")
    recipe = recipe_from_checkpoint(ckpt)
    recipe.data = name
    # the whole split as stored: the model normalises its inputs itself, and is never shown the augmentation
    ds = _common.usage(load_split, recipe, args.split == "train")
    shape = _common.usage(image_shape, ds)
    classes = list(getattr(ds, "classes", [])) or ckpt["extra"].get("classes", [])
    _common.check_fits(ckpt, shape, len(classes), args.checkpoint)
    model = _common.model_from(ckpt, args.checkpoint)
    r = evaluate(model, DataLoader(ds, batch_size=args.batch_size), num_classes=len(classes))
    print(f"{name} ({args.split}, {len(ds):,} images): loss {r.loss:.4f}, accuracy {r.accuracy:.2%}")
    print("\nper-class accuracy:")
    for c, acc, n in zip(classes, r.per_class_accuracy, r.confusion.sum(axis=1)):
        print(f"  {c:>12}  {acc:7.2%}  ({n} images)")
    print("\nconfusion matrix (rows: true class):")
    print(confusion_text(r.confusion, classes))
    return 0
