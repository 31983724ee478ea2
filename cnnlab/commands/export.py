"""Export a checkpoint's model to PyTorch: model.py (the architecture in torch.nn, and a
loader when run) plus its weights as weights.npz, and weights.pt when PyTorch is installed.
A model trained with --normalize keeps its Normalize layer, so it takes raw pixels.

examples:
  cnnlab export runs/first -o first_in_pytorch
  python first_in_pytorch/model.py                # prints the model, loaded
"""
from __future__ import annotations

import argparse

from ..cli import UsageError
from . import _common

HELP = "write a checkpoint's model as PyTorch code plus weights"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a checkpoint file or a run folder")
    p.add_argument("-o", "--out", required=True, help="folder to write model.py and the weights into")
    p.add_argument("--class-name", default="Net", help="the model class's name in model.py (default: Net)")


def run(args: argparse.Namespace) -> int:
    from ..export import export_for_pytorch

    if not args.class_name.isidentifier():
        raise UsageError(f"--class-name must be a Python name, got {args.class_name!r}")
    ckpt = _common.checkpoint(args.checkpoint)
    model = _common.model_from(ckpt, args.checkpoint)
    try:
        files = export_for_pytorch(args.out, model, class_name=args.class_name)
    except ValueError as e:   # a layer PyTorch lacks, or a model that cannot be written out
        raise UsageError(f"{args.checkpoint}: {e}") from e
    except OSError as e:
        raise UsageError(f"cannot write to {args.out}: {e}") from e
    for f in files:
        print(f"wrote {f}")
    if len(files) == 2:
        print("(PyTorch is not installed here: weights.npz only; model.py loads it)")
    return 0
