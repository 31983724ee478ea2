"""Print the torchinfo-style summary table of a zoo model (or of a checkpoint's model).

examples:
  cnnlab summary convnet                      # seed 004's table: 13,686 parameters
  cnnlab summary simplecnn --input 3,32,32 --batch 64
  cnnlab summary runs/first/checkpoint.npz
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import UsageError
from . import _common

HELP = "the torchinfo-style table of a model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a zoo model name (convnet, simplecnn, cifarcnn, fcnet, lenet5, modern) or a checkpoint")
    p.add_argument("--input", default=None, help="C,H,W of one image (default 1,28,28; simplecnn 3,32,32)")
    p.add_argument("--batch", type=int, default=64, help="batch size shown in the shapes (default 64)")
    p.add_argument("--classes", type=int, default=10)


def run(args: argparse.Namespace) -> int:
    import cnnlab

    if Path(args.model).exists():
        ckpt = _common.checkpoint(args.model)
        model = _common.model_from(ckpt, args.model)
        shape = tuple(ckpt.get("extra", {}).get("input_shape", ()))
        if args.input:
            shape = _parse(args.input)
        if not shape:
            raise UsageError("the checkpoint does not record its input shape; pass --input C,H,W")
    else:
        shape = _parse(args.input) if args.input else ((3, 32, 32) if args.model == "simplecnn" else (1, 28, 28))
        model = _common.build_model(args.model, shape, args.classes, {})
    if args.batch < 1:
        raise UsageError(f"--batch must be >= 1, got {args.batch}")
    try:
        print(cnnlab.summary(model, input_size=(args.batch, *shape)))
    except ValueError as e:
        raise UsageError(str(e)) from e
    return 0


def _parse(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 1:
        raise UsageError(f"--input expects C,H,W such as 1,28,28, got {text!r}")
    return parts  # type: ignore[return-value]
