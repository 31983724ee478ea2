"""Train a model from the zoo on a dataset, with a progress bar, a line per epoch,
and a checkpoint plus metrics (JSON and CSV) in --out.

examples:
  cnnlab train                                   # convnet on the embedded MNIST sample, 1 epoch,
                                                 # the best recipe measured (Adam lr 1e-2, batch 32, cosine, normalized)
  cnnlab train --model convnet --data mnist-sample --epochs 2 --batch-size 64 \\
               --optimizer adam --lr 1e-3 --device cpu --seed 0 --out runs/first
  cnnlab train --model modern --data shapes --epochs 3 --model-arg width=16
  cnnlab train --model convnet --data mnist --schedule none --no-normalize   # plain pixels, a constant rate
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
    from ..recipe import BEST_LR, DEFAULT_LR, OPTIMIZERS, SCHEDULES, Recipe

    d = Recipe()   # the defaults are the recipe's: the best measured
    best = ", ".join(f"{m} {lr:g}" for m, lr in BEST_LR.items())
    p.add_argument("--model", default=d.model, help="convnet, simplecnn, cifarcnn, fcnet, lenet5, modern "
                                                    "(default %(default)s)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra model argument, e.g. width=16 (repeatable)")
    p.add_argument("--data", default=d.data,
                   help="mnist-sample (default), shapes, shapes-rgb, mnist, fashion-mnist, cifar10 or a folder")
    p.add_argument("--size", type=int, default=d.size, help="image side for a folder dataset (default %(default)s)")
    p.add_argument("--channels", type=int, default=d.channels, choices=[1, 3],
                   help="folder datasets: 1 grey or 3 RGB")
    p.add_argument("--epochs", type=int, default=d.epochs, help="(default %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="(default %(default)s)")
    p.add_argument("--optimizer", default=d.optimizer, choices=OPTIMIZERS, help="(default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr,
                   help=f"learning rate (default: the best measured for the model: {best}; others {DEFAULT_LR:g})")
    p.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum (default %(default)s)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--schedule", default=d.schedule, choices=SCHEDULES,
                   help="learning-rate schedule (default %(default)s). cosine: per step, a linear warm-up over "
                        "the first 2%% of steps, then a cosine from --lr down to 0 at the end of the run; "
                        "step: x0.1 after every third of the epochs")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=d.normalize,
                   help="feed the model (x - mean) / std per channel, measured on the training images, as its "
                        "first layer (so evaluate, predict, export and --resume apply it too; default on)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=d.augment,
                   help="random training-image changes: shifts for 1-channel images, padded crops "
                        "and horizontal flips for RGB (default off)")
    p.add_argument("--device", default=d.device, help="cpu or cuda")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", help="run folder (default runs/MODEL-DATA-TIME)")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from its checkpoint (or run folder)")
    p.add_argument("--limit", type=int, default=d.limit, metavar="N",
                   help="use only N training and N validation images, spread over each set (a quick try)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, only the epoch lines")


def _recipe(args: argparse.Namespace):
    """The Recipe the options describe, checked (a bad setting is named by its option)."""
    from ..recipe import Recipe, SettingError

    recipe = Recipe(model=args.model, model_args=_common.model_kwargs(args.model_arg), data=args.data,
                    size=args.size, channels=args.channels, limit=args.limit, seed=args.seed,
                    epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                    momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule,
                    normalize=args.normalize, augment=args.augment, device=args.device)
    try:
        recipe.check()
    except SettingError as e:
        text = str(e)
        if text.startswith(e.setting):   # "lr must be > 0" -> "--lr must be > 0"
            text = "--" + e.setting.replace("_", "-") + text[len(e.setting):]
        raise UsageError(text) from e
    return recipe


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
    from cnnlab import recipe as recipes
    from cnnlab.train import TrainingDiverged, save_checkpoint

    recipe = _recipe(args)
    ckpt = _common.checkpoint(args.resume) if args.resume else None
    if ckpt is not None:  # the run's own settings win over the options
        recipe = recipes.recipe_from_checkpoint(ckpt, base=recipe)
    # a resumed run reuses the statistics it started with, so its inputs do not move
    stats = ckpt.get("extra", {}).get("normalize") if ckpt is not None else None
    data = _common.usage(recipes.load_data, recipe, stats)
    progress = _Progress(args.quiet)
    if ckpt is not None:
        _common.check_fits(ckpt, data.shape, len(data.classes), args.resume)
        ckpt_file = _common.checkpoint_file(args.resume)
        out = Path(args.out or ckpt_file.parent)
        r = _common.usage(recipes.resume_run, ckpt_file, recipe, data, args.epochs, [progress.callback])
        print(f"resuming {out} at epoch {r.epoch + 1}, step {r.step + 1}")
    else:
        model = _common.usage(recipes.build_model, recipe, data)
        r = recipes.build_run(recipe, data, model, [progress.callback])
        out = Path(args.out or _common.default_out(recipe.model, recipe.data))
        n_params = sum(p.numel() for p in model.parameters())
        print(f"{recipe.model} ({n_params:,} parameters) on {recipe.data}: {len(data.train):,} training and "
              f"{len(data.val):,} validation images of shape {list(data.shape)}, {len(data.classes)} classes")
        print(f"{recipe.optimizer} lr {recipe.resolved_lr():g}, {recipe.schedule} schedule, "
              f"{'normalized' if recipe.normalize else 'plain'} inputs{', augmented' if recipe.augment else ''}, "
              f"batch {recipe.batch_size}, {recipe.epochs} epoch(s)")
    extra = recipes.checkpoint_extra(recipe, data)
    out.mkdir(parents=True, exist_ok=True)
    config = {**{k: v for k, v in vars(args).items() if not k.startswith("_")}, **recipe.to_dict(),
              "lr": recipe.resolved_lr()}
    (out / "config.json").write_text(json.dumps(config, indent=1, default=str))

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
