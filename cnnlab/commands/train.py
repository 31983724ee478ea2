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
  cnnlab train --resume runs/first --epochs 4 --lr 1e-3   # ... with a new learning rate

The run folder gets a checkpoint after every epoch and every --save-every seconds
within one, each save atomic: whatever stops the process, checkpoint.npz holds the
last save. Ctrl-C (SIGINT) or SIGTERM stops after the current step, saves and exits
with status 130 (SIGINT) or 143 (SIGTERM); a second one aborts at once, keeping the
last save. An existing run is never replaced without --overwrite.
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

# the options that make up a run's recipe (each notes in args._given that it was typed, so that
# a resumed run can tell them from defaults) and, of them, those a resumed run can change
RECIPE_OPTIONS = ("model", "data", "size", "channels", "epochs", "batch_size", "optimizer", "lr", "momentum",
                  "nesterov", "weight_decay", "label_smoothing", "schedule", "normalize", "augment", "tta", "device",
                  "seed", "limit", "holdout", "root")
RESUME_CAN_CHANGE = ("epochs", "lr", "device", "root")


class _Given(argparse.Action):
    """Stores the value and notes that the option was given (a resumed run must tell a
    setting typed by the user from a default)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _note(namespace, self.dest)


class _GivenFlag(argparse.BooleanOptionalAction):
    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        _note(namespace, self.dest)


def _note(namespace: argparse.Namespace, dest: str) -> None:
    namespace._given = getattr(namespace, "_given", set()) | {dest}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..recipe import BEST_LR, DEFAULT_LR, OPTIMIZERS, SCHEDULES, Recipe

    d = Recipe()   # the defaults are the recipe's: the best measured
    best = ", ".join(f"{m} {lr:g}" for m, lr in BEST_LR.items())

    def setting(flag: str, **kw) -> None:
        dest = flag[2:].replace("-", "_")
        p.add_argument(flag, action=_GivenFlag if kw.get("type") is bool else _Given,
                       default=getattr(d, dest), **{k: v for k, v in kw.items() if k != "type" or v is not bool})

    setting("--model", help="convnet, simplecnn, cifarcnn, fcnet, lenet5, modern, vgg, cifarresnet, cifarfast "
                            "(default %(default)s)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra model argument, e.g. width=16 (repeatable)")
    setting("--data", help="mnist-sample (default), shapes, shapes-rgb, mnist, fashion-mnist, cifar10 or a folder")
    setting("--root", help="data folder for the downloadable datasets (default: the cache folder)")
    setting("--size", type=int, help="image side for a folder dataset (default %(default)s)")
    setting("--channels", type=int, choices=[1, 3], help="folder datasets: 1 grey or 3 RGB")
    setting("--epochs", type=int, help="(default %(default)s; with --resume: the run's own)")
    setting("--batch-size", type=int, help="(default %(default)s)")
    setting("--optimizer", choices=OPTIMIZERS, help="(default %(default)s)")
    setting("--lr", type=float,
            help=f"learning rate (default: the best measured for the model: {best}; others {DEFAULT_LR:g}); "
                 f"with --resume: the rate from the next step on, its schedule going on from there")
    setting("--momentum", type=float, help="SGD momentum (default %(default)s)")
    setting("--nesterov", type=bool, help="SGD: Nesterov momentum (default off)")
    setting("--weight-decay", type=float, help="(default %(default)s)")
    setting("--label-smoothing", type=float, metavar="S",
            help="train against (1 - S) x the one-hot label + S / classes, as PyTorch's CrossEntropyLoss "
                 "does (default %(default)s)")
    setting("--schedule", choices=SCHEDULES,
            help="learning-rate schedule (default %(default)s). cosine: per step, a linear warm-up over "
                 "the first 2%% of steps, then a cosine from --lr down to 0 at the end of the run; "
                 "step: x0.1 after every third of the epochs")
    setting("--normalize", type=bool,
            help="feed the model (x - mean) / std per channel, measured on the training images, as its "
                 "first layer (so evaluate, predict, export and --resume apply it too; default on)")
    setting("--augment", type=bool, help="random training-image changes: shifts for 1-channel images, padded "
                                         "crops and horizontal flips for RGB (default off)")
    setting("--tta", type=bool, help="validate on the mean of each image's logits and its mirror image's "
                                     "(test-time augmentation; not for digits; default off)")
    setting("--device", help="cpu or cuda")
    setting("--seed", type=int)
    p.add_argument("--out", help="run folder (default runs/MODEL-DATA-TIME; with --resume: the run's own)")
    p.add_argument("--overwrite", action="store_true", help="let --out replace the run already in that folder")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from its checkpoint (or run folder)")
    p.add_argument("--save-every", type=float, default=300.0, metavar="SECONDS",
                   help="within an epoch, save the run when this long has passed since the last save "
                        "(default %(default)g; 0: after every step); it is always saved after each epoch")
    setting("--limit", type=int, metavar="N",
            help="use only N training and N validation images, spread over each set (a quick try)")
    setting("--holdout", type=int, metavar="N",
            help="validate on the last N images of the training split, trained on the rest, instead of "
                 "the dataset's test split (which then need not exist; e.g. --holdout 10000 for MNIST)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, only the epoch lines")


def _given(args: argparse.Namespace) -> dict[str, object]:
    """The recipe options given on the command line, by recipe field name."""
    given: dict[str, object] = {k: getattr(args, k) for k in RECIPE_OPTIONS if k in getattr(args, "_given", ())}
    if args.model_arg:
        given["model_args"] = _common.model_kwargs(args.model_arg)
    return given


def _recipe(args: argparse.Namespace, base=None):
    """The Recipe the options describe (over `base`, else the defaults), checked (a bad
    setting is named by its option)."""
    from ..recipe import Recipe, SettingError

    recipe = Recipe.from_dict({**(base or Recipe()).to_dict(), **_given(args)})
    try:
        recipe.check()
    except SettingError as e:
        text = str(e)
        if text.startswith(e.setting):   # "lr must be > 0" -> "--lr must be > 0"
            text = "--" + e.setting.replace("_", "-") + text[len(e.setting):]
        raise UsageError(text) from e
    return recipe


def _resumed_recipe(args: argparse.Namespace, ckpt: dict):
    """The recipe of the run being resumed, with what may change (--epochs, --lr, --device,
    --root) taken from the options; any other option that differs from the run is refused."""
    from ..recipe import recipe_from_checkpoint

    run_recipe = recipe_from_checkpoint(ckpt)
    planned = (ckpt.get("extra", {}).get("recipe") or {}).get("epochs")
    run_recipe.epochs = int(planned) if isinstance(planned, int) and planned > 0 else max(1, int(ckpt["epoch"]))
    own = run_recipe.to_dict()
    clashes = [f"--{k.replace('_', '-').replace('model-args', 'model-arg')} {_shown(v)} (the run has {_shown(own[k])})"
               for k, v in _given(args).items() if k not in RESUME_CAN_CHANGE and not _same(k, v, own[k])]
    if clashes:
        raise UsageError(f"--resume continues {args.resume} as it was made, so {'; '.join(clashes)} cannot "
                         f"change: leave {'it' if len(clashes) == 1 else 'them'} out, or start a new run with --out")
    return _recipe(args, run_recipe)


def _same(key: str, given: object, own: object) -> bool:
    from ..recipe import _key

    return _key(str(given)) == _key(str(own)) if key == "model" else given == own


def _shown(value: object) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items()) or "(none)"
    return str(value)


def _out_folder(args: argparse.Namespace, recipe, own: Path | None) -> tuple[Path, list[Path]]:
    """The run folder to write and the files of the run it replaces (--overwrite; they go
    once the new run is ready to start), refusing a folder that holds another run without
    --overwrite, or a file. `own`: the folder being resumed."""
    from ..checkpoint import RUN_FILES, remove_temporaries

    out = Path(args.out) if args.out else own or Path(_common.default_out(recipe.model, recipe.data))
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; name a folder for the run")
    present = [n for n in RUN_FILES if (out / n).exists()]
    is_own = own is not None and out.resolve() == own.resolve()
    if present and not is_own:
        if not args.overwrite:
            raise UsageError(f"{out} already holds a run ({', '.join(present)}); continue it with --resume {out}, "
                             f"or pass --overwrite to replace it")
    if out.is_dir():
        remove_temporaries(out)   # left by a save that was killed
    return out, [out / n for n in present] if not is_own else []


class _Progress:
    """The progress bar (tqdm), the per-epoch line and the end of the first run's compiling."""

    def __init__(self, quiet: bool):
        from ..train import Callback

        self.quiet = quiet
        self.bar = None
        self.compiled = 0.0   # compile seconds already told
        outer = self

        class CB(Callback):
            def on_step_end(self, run, m):
                outer.step(run, m)

            def on_epoch_end(self, run, m):
                outer.epoch(run, m)

        self.callback = CB()

    def step(self, run, m) -> None:
        if run.compile_seconds > self.compiled + 0.5:
            self.close()
            from .._config import QUIET

            if not QUIET:
                print(f"cnnlab: kernels compiled in {run.compile_seconds - self.compiled:.1f} s "
                      f"(not counted in the epoch times)", file=sys.stderr, flush=True)
            self.compiled = run.compile_seconds
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
        line += f" | {m.seconds:.1f} s | {m.images_per_s:,.0f} img/s"  # the bar's definition, over the epoch
        if run.compile_seconds > self.compiled + 0.5:   # validation compiled kernels of its own
            line += f" (+ {run.compile_seconds - self.compiled:.1f} s compiling kernels)"
            self.compiled = run.compile_seconds
        print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class _Signals:
    """SIGINT and SIGTERM while training: the first stops the run after its step (it is
    then saved), a second aborts at once (the last save stands). `exit_status` is the
    conventional 128 + signal number of the first, or None."""

    KINDS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}

    def __init__(self, run) -> None:
        self.run, self.first = run, None
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.KINDS}

    def _handle(self, signum, frame) -> None:
        if self.first is not None:
            raise KeyboardInterrupt
        self.first = signum
        print(f"\n{self.KINDS[signum]}: stopping after this step and saving ({self.KINDS[signum]} again to abort)...",
              file=sys.stderr, flush=True)
        self.run.stop()

    @property
    def exit_status(self) -> int | None:
        return None if self.first is None else 128 + int(self.first)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _save(autosave, run) -> None:
    """Save the run unless its last save already holds this state; a failed save is one line."""
    from ..checkpoint import SaveError

    if autosave.saved != (run.epoch, run.step):
        try:
            autosave.save(run)
        except SaveError as e:
            raise UsageError(str(e)) from e


def run(args: argparse.Namespace) -> int:
    from cnnlab import recipe as recipes
    from cnnlab.checkpoint import Autosave

    if args.save_every < 0:
        raise UsageError(f"--save-every must be >= 0 seconds, got {args.save_every:g}")
    ckpt = _common.checkpoint(args.resume) if args.resume else None
    if ckpt is not None:  # the run's own settings, with what may change
        recipe = _resumed_recipe(args, ckpt)
        ckpt_file = _common.checkpoint_file(args.resume)
        done, batch = int(ckpt["epoch"]), int(ckpt["batch_in_epoch"])
        if done >= recipe.epochs and batch == 0:
            print(f"{args.resume} is finished: {done} of {done} epochs done; pass --epochs N with N > {done} "
                  f"to train it further")
            return 0
        # the run's own folder, unless the checkpoint is a file saved elsewhere (from the app)
        out, replaced = _out_folder(args, recipe, ckpt_file.parent if ckpt_file.name == "checkpoint.npz" else None)
    else:
        recipe = _recipe(args)
        out, replaced = _out_folder(args, recipe, None)
    # a resumed run reuses the statistics it started with, so its inputs do not move
    stats = ckpt.get("extra", {}).get("normalize") if ckpt is not None else None
    data = _common.usage(recipes.load_data, recipe, stats)
    progress = _Progress(args.quiet)
    extra = recipes.checkpoint_extra(recipe, data)
    autosave = Autosave(out, extra, every=args.save_every)
    callbacks = [progress.callback, autosave]
    if ckpt is not None:
        _common.check_fits(ckpt, data.shape, len(data.classes), args.resume)
        r = _common.usage(recipes.resume_run, ckpt_file, recipe, data, recipe.epochs, callbacks)
        print(f"resuming {out} at epoch {r.epoch + 1}, step {r.step + 1}")
        if args.lr is not None:
            was = r.lr
            recipes.change_lr(r, args.lr)
            schedule = "" if r.scheduler is None else f"; the {recipe.schedule} schedule goes on from there"
            print(f"learning rate {args.lr:g} from now on (was {was:.3g}{schedule})")
        if out.resolve() == ckpt_file.parent.resolve() and ckpt_file.name == "checkpoint.npz":
            autosave.saved = (r.epoch, r.step)   # the folder already holds this state
    else:
        model = _common.usage(recipes.build_model, recipe, data)
        r = recipes.build_run(recipe, data, model, callbacks)
        n_params = sum(p.numel() for p in model.parameters())
        held = f" (the training split's last {recipe.holdout:,}, held out)" if recipe.holdout else ""
        print(f"{recipe.model} ({n_params:,} parameters) on {recipe.data}: {len(data.train):,} training and "
              f"{len(data.val):,} validation images{held} of shape {list(data.shape)}, {len(data.classes)} classes")
        print(f"{recipe.optimizer} lr {recipe.resolved_lr():g}, {recipe.schedule} schedule, "
              f"{'normalized' if recipe.normalize else 'plain'} inputs{', augmented' if recipe.augment else ''}"
              f"{', nesterov' if recipe.nesterov else ''}"
              f"{f', label smoothing {recipe.label_smoothing:g}' if recipe.label_smoothing else ''}"
              f"{', mirror-averaged validation' if recipe.tta else ''}, "
              f"batch {recipe.batch_size}, {recipe.epochs} epoch(s)")
    for old in replaced:   # --overwrite, now that the new run is ready
        old.unlink()
    _write_config(out, args, recipe)
    return _train(r, out, autosave, progress)


def _write_config(out: Path, args: argparse.Namespace, recipe) -> None:
    """config.json: what this invocation runs (the recipe as it is, not the options as typed)."""
    from ..serialization import write_atomically

    config = {**{k: v for k, v in vars(args).items() if not k.startswith("_")}, **recipe.to_dict(),
              "lr": recipe.resolved_lr(), "out": str(out),
              "model_arg": [f"{k}={v}" for k, v in recipe.model_args.items()]}
    try:
        write_atomically(out / "config.json", lambda f: f.write(json.dumps(config, indent=1, default=str).encode()))
    except OSError as e:
        raise UsageError(f"cannot write {out / 'config.json'}: {e.strerror or e}") from e


def _train(r, out: Path, autosave, progress) -> int:
    from cnnlab.checkpoint import SaveError
    from cnnlab.train import TrainingDiverged

    signals = _Signals(r)
    start = time.perf_counter()
    try:
        r.run()
    except TrainingDiverged as e:
        progress.close()
        print(f"cnnlab train: {e}", file=sys.stderr)
        if autosave.saved is None and not (out / "checkpoint.npz").exists():
            _save(autosave, r)   # the state the guard restored: better than nothing
        else:
            print(f"cnnlab train: {out / 'checkpoint.npz'} keeps the last save before the divergence",
                  file=sys.stderr)
        return 1
    except SaveError as e:
        raise UsageError(str(e)) from e
    except KeyboardInterrupt:
        progress.close()
        what = (f"{out / 'checkpoint.npz'} holds the last save (epoch {autosave.saved[0]}, step {autosave.saved[1]})"
                if autosave.saved else "before the first save")
        print(f"\ncnnlab train: aborted; {what}", file=sys.stderr)
        return signals.exit_status or 130
    finally:
        signals.restore()
        progress.close()
    _save(autosave, r)
    what = "stopped" if r.status == "stopped" else r.status
    print(f"{what} after {r.step} steps in {time.perf_counter() - start:.1f} s; checkpoint and metrics in {out}/")
    return (signals.exit_status or 130) if r.status == "stopped" else 0
