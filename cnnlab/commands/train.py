"""Train a model from the zoo on a dataset, with a progress bar, a line per epoch,
and a checkpoint plus metrics (JSON and CSV) in --out.

examples:
  cnnlab train                                   # convnet on the embedded MNIST sample, 1 epoch
  cnnlab train --model convnet --data mnist-sample --epochs 2 --batch-size 64 \\
               --optimizer adam --lr 1e-3 --device cpu --seed 0 --out runs/first
  cnnlab train --model modern --data shapes --epochs 3 --model-arg width=16
  cnnlab train --model convnet --data mnist --lr 1e-2 --schedule cosine --normalize
  cnnlab train --resume runs/first --epochs 4     # continue the same run to epoch 4

Ctrl-C stops after the current step, saves the checkpoint and exits; a second
Ctrl-C aborts at once.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from ..cli import UsageError
from . import _common

HELP = "train a model (progress bar, checkpoint and metrics in --out)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="convnet", help="convnet, simplecnn, cifarcnn, fcnet, lenet5, modern (default convnet)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra model argument, e.g. width=16 (repeatable)")
    p.add_argument("--data", default="mnist-sample",
                   help="mnist-sample (default), shapes, shapes-rgb, mnist, fashion-mnist, cifar10 or a folder")
    p.add_argument("--size", type=int, default=28, help="image side for a folder dataset (default 28)")
    p.add_argument("--channels", type=int, default=1, choices=[1, 3], help="folder datasets: 1 grey or 3 RGB")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--optimizer", default="adam", choices=["sgd", "adam", "adamw"])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", default="none", choices=["none", "step", "cosine"],
                   help="learning-rate schedule. cosine: per step, a linear warm-up over the first 2%% of "
                        "steps, then a cosine from --lr down to 0 at the end of the run; "
                        "step: x0.1 after every third of the epochs")
    p.add_argument("--normalize", action="store_true",
                   help="feed the model (x - mean) / std per channel, measured on the training images "
                        "(kept in the checkpoint; evaluate and predict apply it too)")
    p.add_argument("--augment", action="store_true",
                   help="random training-image changes: shifts for 1-channel images, padded crops "
                        "and horizontal flips for RGB")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run folder (default runs/MODEL-DATA-TIME)")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from its checkpoint (or run folder)")
    p.add_argument("--limit", type=int, default=0, metavar="N",
                   help="use only N training and N validation images, spread over each set (a quick try)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, only the epoch lines")


def _optimizer(args, params):
    from .. import optim

    if args.optimizer == "sgd":
        return optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    if args.optimizer == "adamw":
        return optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay or 1e-2)
    return optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay)


def _check(args) -> None:
    if args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not args.lr > 0:
        raise UsageError(f"--lr must be > 0, got {args.lr}")
    if args.device not in ("cpu", "cuda"):
        raise UsageError(f"--device must be cpu or cuda, got {args.device!r}")
    if args.device == "cuda":
        from .. import cuda

        reason = cuda.unavailable_reason()
        if reason:
            raise UsageError(f"--device cuda: {reason}; use --device cpu")


class _Progress:
    """The progress bar (tqdm) and the per-epoch line."""

    def __init__(self, quiet: bool):
        from ..train import Callback

        self.quiet = quiet
        self.bar = None
        outer = self

        class CB(Callback):
            def on_step_end(self, run, m):
                outer.step(m)

            def on_epoch_end(self, run, m):
                outer.epoch(run, m)

        self.callback = CB()

    def step(self, m) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=m.batches, initial=m.batch - 1, desc=f"epoch {m.epoch}", unit="batch",
                            dynamic_ncols=True, leave=False)
        self.bar.update(1)
        if m.batch % 5 == 0 or m.batch == m.batches:
            self.bar.set_postfix_str(f"loss {m.loss:.4f} acc {m.accuracy:.1%} {m.images_per_s:,.0f} img/s")

    def epoch(self, run, m) -> None:
        self.close()
        line = f"epoch {m.epoch}/{run.epochs}: train loss {m.train_loss:.4f} acc {m.train_accuracy:.2%}"
        if m.val_accuracy is not None:
            line += f" | val loss {m.val_loss:.4f} acc {m.val_accuracy:.2%}"
        print(line + f" | {m.elapsed:.1f} s", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run(args: argparse.Namespace) -> int:
    _check(args)
    import cnnlab
    from cnnlab.data import DataLoader
    from cnnlab.train import Run, TrainingDiverged, resume, save_checkpoint

    ckpt = _common.checkpoint(args.resume) if args.resume else None
    if ckpt is not None:  # the run's own settings win over the defaults
        info = ckpt.get("extra", {})
        for key in ("data", "seed", "batch_size", "size", "channels", "limit", "augment"):
            if key in info:
                setattr(args, key, info[key])
        args.normalize = bool(info.get("normalize"))
        args.model = ckpt["model"]["name"]
    cnnlab.manual_seed(args.seed)
    train_ds = _common.dataset(args.data, True, args.size, args.channels, args.seed)
    val_ds = _common.dataset(args.data, False, args.size, args.channels, args.seed)
    if args.limit:
        from cnnlab.data import Subset

        if args.limit < 1:
            raise UsageError(f"--limit must be >= 1, got {args.limit}")
        import numpy as np

        # spread over the whole set, so a sorted dataset still gives every class
        train_ds = Subset(train_ds, np.unique(np.linspace(0, len(train_ds) - 1, args.limit).astype(int)))
        val_ds = Subset(val_ds, np.unique(np.linspace(0, len(val_ds) - 1, args.limit).astype(int)))
    shape = _common.input_spec(train_ds)
    classes = list(getattr(train_ds, "classes", [])) or [str(i) for i in range(10)]
    # a resumed run reuses the statistics it started with, so its inputs do not move
    norm_stats = None
    if args.normalize:
        norm_stats = (ckpt or {}).get("extra", {}).get("normalize") or _common.channel_stats(train_ds)
    norm = _common.normalization(norm_stats)
    _common.set_transform(train_ds, (_common.augmentation(shape) if args.augment else []) + ([norm] if norm else []))
    _common.set_transform(val_ds, [norm] if norm else [])
    train_loader = DataLoader(train_ds, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    val_loader = DataLoader(val_ds, batch_size=max(256, args.batch_size))
    progress = _Progress(args.quiet)
    if ckpt is not None:
        _common.check_fits(ckpt, shape, len(classes), args.resume)
        ckpt_file = _common.checkpoint_file(args.resume)
        out = Path(args.out or ckpt_file.parent)
        try:
            r = resume(ckpt_file, train_loader, args.epochs, val_loader, [progress.callback], args.device)
        except ValueError as e:
            raise UsageError(str(e)) from e
        print(f"resuming {out} at epoch {r.epoch + 1}, step {r.step + 1}")
    else:
        model = _common.build_model(args.model, shape, len(classes), _common.model_kwargs(args.model_arg))
        opt = _optimizer(args, model.parameters())
        sched, interval = None, "epoch"
        if args.schedule == "step":
            sched = cnnlab.optim.lr_scheduler.StepLR(opt, step_size=max(1, args.epochs // 3), gamma=0.1)
        elif args.schedule == "cosine":
            # per step: over one or two epochs a per-epoch cosine would barely move
            total = args.epochs * len(train_loader)
            sched = cnnlab.optim.lr_scheduler.WarmupCosineLR(opt, T_max=total, warmup=max(1, total // 50))
            interval = "step"
        r = Run(model, train_loader, opt, None, args.epochs, val_loader, [progress.callback], args.device, sched,
                interval)
        out = Path(args.out or _common.default_out(args.model, args.data))
        n_params = sum(p.numel() for p in model.parameters())
        print(f"{args.model} ({n_params:,} parameters) on {args.data}: {len(train_ds):,} training and "
              f"{len(val_ds):,} validation images of shape {list(shape)}, {len(classes)} classes")
    extra = {"data": args.data, "seed": args.seed, "batch_size": args.batch_size, "size": args.size,
             "channels": args.channels, "limit": args.limit, "input_shape": list(shape), "classes": classes,
             "normalize": norm_stats, "augment": bool(args.augment)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({k: v for k, v in vars(args).items() if not k.startswith("_")},
                                                indent=1, default=str))

    def on_sigint(signum, frame):  # first Ctrl-C: finish the step, save, exit
        print("\nstopping after this step (Ctrl-C again to abort)...", file=sys.stderr, flush=True)
        r.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_sigint)
    status = 0
    start = time.perf_counter()
    try:
        r.run()
    except TrainingDiverged as e:
        progress.close()
        print(f"cnnlab train: {e}", file=sys.stderr)
        status = 1
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.close()
        save_checkpoint(out / "checkpoint.npz", r, extra)
        r.history.write(out)
    what = "stopped" if r.status == "stopped" else r.status
    print(f"{what} after {r.step} steps in {time.perf_counter() - start:.1f} s; checkpoint and metrics in {out}/")
    return 130 if r.status == "stopped" and status == 0 else status
