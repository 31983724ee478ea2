"""Classify image files with a trained checkpoint: the top classes with probabilities.

examples:
  cnnlab predict runs/first assets/samples/mnist_7.png
  cnnlab predict runs/first/checkpoint.npz a.png b.jpg --top 5
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import UsageError
from . import _common

HELP = "classify image files with a checkpoint"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a checkpoint file or a run folder")
    p.add_argument("images", nargs="+", help="PNG or JPEG files")
    p.add_argument("--top", type=int, default=3, help="how many classes to show (default 3)")


def run(args: argparse.Namespace) -> int:
    import cnnlab
    from cnnlab.data import load_image

    if args.top < 1:
        raise UsageError(f"--top must be >= 1, got {args.top}")
    ckpt = _common.checkpoint(args.checkpoint)
    info = ckpt.get("extra", {})
    shape = info.get("input_shape")
    classes = info.get("classes")
    if not shape or not classes:
        raise UsageError(f"{args.checkpoint} does not record its input shape and classes (made by cnnlab train?)")
    model = _common.model_from(ckpt, args.checkpoint)
    model.eval()
    for path in args.images:
        if not Path(path).is_file():
            raise UsageError(f"no such image: {path}")
        try:
            image = load_image(path, size=(shape[1], shape[2]), channels=shape[0])
        except Exception as e:  # Pillow raises many kinds for a bad file
            raise UsageError(f"cannot read image {path}: {e}") from e
        x = cnnlab.as_tensor(image).reshape(1, *shape)
        with cnnlab.no_grad():
            probs = cnnlab.nn.functional.softmax(model(x), dim=1).numpy()[0]
        order = probs.argsort()[::-1][: args.top]
        print(f"{path}: " + ", ".join(f"{classes[i]} {probs[i]:.1%}" for i in order))
    return 0
