"""What a training run is made of: the one place the command line and the app decide the
data and its split, the limit, the seed, the loaders, the optimizer, the schedule, the
normalisation, the augmentation and what a checkpoint records about the run.

>>> recipe = default_recipe("convnet")          # the best recipe measured for the model
>>> run = build_run(recipe)                      # data, model, loaders, optimizer, schedule
>>> run.run().epochs[-1]["val_accuracy"]         # ~0.96 on the embedded MNIST sample

Normalisation is part of the model (a first `nn.Normalize` layer holding the channel mean
and std of the training images), so whatever runs the model -- evaluate, predict, an
export, a resumed run, the app -- feeds it what it learned on without being told.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from . import data as datasets
from . import models, nn, optim
from .data import ConcatDataset, DataLoader, Dataset, Subset
from .data.transforms import apply
from .optim.lr_scheduler import StepLR, WarmupCosineLR
from .train import Callback, Run

OPTIMIZERS = ("adam", "sgd", "adamw")
SCHEDULES = ("none", "step", "cosine")
DEVICES = ("cpu", "cuda")

# The learning rate that did best with Adam, a per-step cosine and normalised inputs: for
# convnet, lenet5, fcnet and modern one epoch on the embedded MNIST sample, for the CIFAR
# networks (simplecnn, cifarcnn) CIFAR-10 over many epochs, cifarfast two epochs of full
# MNIST at width 8, batch 128 (README, benchmarks/RESULTS.md).
BEST_LR: dict[str, float] = {"convnet": 1e-2, "lenet5": 1e-2, "fcnet": 1e-2, "modern": 3e-3, "simplecnn": 2e-3,
                             "cifarcnn": 1e-3, "cifarfast": 5e-3}
DEFAULT_LR = 1e-3


class SettingError(ValueError):
    """A recipe setting that cannot be used; `setting` names the field."""

    def __init__(self, setting: str, message: str):
        super().__init__(message)
        self.setting = setting


@dataclass
class Recipe:
    """Everything a training run is made of. `lr=None` means the best measured for the model."""

    model: str = "convnet"                       # a zoo name, or "custom" with `layers`
    layers: list[dict[str, Any]] | None = None   # a custom model, in models.build_sequential's format
    model_args: dict[str, Any] = field(default_factory=dict)
    data: str = "mnist-sample"                   # a catalogue name or a folder
    size: int = 28                               # folder datasets: image side
    channels: int = 1                            # folder datasets: 1 grey, 3 RGB
    root: str | None = None                      # download/cache folder
    limit: int = 0                               # use only N training and N validation images; 0: all
    holdout: int = 0                             # validate on the last N training images instead of the test split
    seed: int = 0
    epochs: int = 1
    batch_size: int = 32                         # 32 beat 64 on the sample: 96.5-96.7% vs 95.3-96.8% over seeds 0-2
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float = 0.9                        # SGD only
    nesterov: bool = False                       # SGD only: Nesterov momentum
    weight_decay: float = 0.0
    label_smoothing: float = 0.0                 # cross-entropy against (1 - s) * one-hot + s / classes
    schedule: str = "cosine"                     # none | step | cosine (per step, 2% warm-up)
    normalize: bool = True
    augment: bool = False
    tta: bool = False                            # validation: mean of each image's and its mirror's logits
    device: str = "cpu"

    def check(self) -> None:
        """Raise SettingError (a ValueError) naming the first setting that cannot be used."""
        if self.model == "custom":
            if not self.layers:
                raise SettingError("model", "a custom model needs its layer list")
        elif _key(self.model) not in models.names() or _key(self.model) == "sequential":
            raise SettingError("model", f"unknown model {self.model!r}; choose one of "
                                        f"{', '.join(n for n in models.names() if n != 'sequential')} or custom")
        else:
            check_model_args(self.model, self.model_args)
        for name in ("epochs", "batch_size", "size"):
            if int(getattr(self, name)) < 1:
                raise SettingError(name, f"{name} must be >= 1, got {getattr(self, name)}")
        if self.limit < 0:
            raise SettingError("limit", f"limit must be >= 1, got {self.limit}")
        if self.holdout < 0:
            raise SettingError("holdout", "holdout must be 0 (use the test split) or a count >= 1, "
                                          f"got {self.holdout}")
        if self.channels not in (1, 3):
            raise SettingError("channels", f"channels must be 1 or 3, got {self.channels}")
        if self.optimizer not in OPTIMIZERS:
            raise SettingError("optimizer", f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.lr is not None and not 0 < self.lr < math.inf:
            raise SettingError("lr", f"lr must be > 0 and finite, got {self.lr}")
        for name in ("momentum", "weight_decay"):
            if not 0 <= getattr(self, name) < math.inf:
                raise SettingError(name, f"{name} must be >= 0 and finite, got {getattr(self, name)}")
        if not 0 <= self.label_smoothing < 1:
            raise SettingError("label_smoothing", f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise SettingError("nesterov", "nesterov momentum needs --optimizer sgd and --momentum > 0, "
                                           f"got {self.optimizer} with momentum {self.momentum:g}")
        if self.schedule not in SCHEDULES:
            raise SettingError("schedule", f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.device not in DEVICES:
            raise SettingError("device", f"device must be cpu or cuda, got {self.device!r}")
        if self.device == "cuda":
            from . import cuda

            reason = cuda.unavailable_reason()
            if reason:
                raise SettingError("device", f"device cuda: {reason}; use the cpu")

    def resolved_lr(self) -> float:
        """The learning rate the run uses: `lr`, or the best measured for the model."""
        return float(self.lr) if self.lr is not None else best_lr(self.model)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Recipe":
        """A Recipe from `to_dict`'s output; unknown keys are ignored, numbers typed as text converted."""
        kwargs = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            value, default = d[f.name], getattr(cls, f.name, None)
            if isinstance(default, bool):
                kwargs[f.name] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            elif isinstance(default, (int, float, str)) and not isinstance(value, bool) and value is not None:
                try:
                    kwargs[f.name] = type(default)(value)
                except (TypeError, ValueError):
                    raise SettingError(f.name, f"{f.name} = {value!r} is not a valid "
                                               f"{type(default).__name__}") from None
            elif f.name == "lr" and value is not None:
                kwargs[f.name] = float(value)
            else:
                kwargs[f.name] = value
        return cls(**kwargs)


def _key(model: str) -> str:
    return model.lower().replace("-", "").replace("_", "")


def check_model_args(model: str, args: dict[str, Any]) -> None:
    """SettingError unless every extra argument is one the zoo model takes, of the type of
    its default (`width=abc` would otherwise fail deep inside the constructor)."""
    import cnnlab

    cls = models.define(cnnlab).get(_key(model))
    if cls is None:
        return
    signature = inspect.signature(cls.__init__).parameters
    params = {k: p for k, p in signature.items()
              if k not in ("self", *_DATA_ARGS) and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.values())
    for key, value in args.items():
        if key not in params and not takes_any:
            raise SettingError("model_args", f"--model-arg {key}: {model} takes no argument {key!r} "
                                             f"(it takes {', '.join(params) or 'none'})")
        default = params[key].default if key in params else None
        kinds = {bool: (bool,), int: (int,), float: (int, float)}.get(type(default))
        if kinds and (not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)):
            raise SettingError("model_args", f"--model-arg {key} expects {type(default).__name__} "
                                             f"(like {default!r}), got {value!r}")


def best_lr(model: str) -> float:
    return BEST_LR.get(_key(model), DEFAULT_LR)


def default_recipe(model: str = "convnet", data: str = "mnist-sample") -> Recipe:
    """The best recipe measured for `model` on `data`: Adam at the model's best learning
    rate, a per-step cosine schedule and normalised inputs, one epoch."""
    return Recipe(model=model, data=data, lr=best_lr(model))


# ----------------------------------------------------------------------------- data
@dataclass
class Data:
    """A recipe's two splits and what the model needs to know about them."""

    train: Dataset
    val: Dataset
    shape: tuple[int, int, int]          # (channels, height, width) of one image
    classes: list[str]
    stats: dict[str, list[float]] | None  # {"mean": [...], "std": [...]} per channel, or None


class Augmented(Dataset):
    """A dataset seen through a transform, leaving the dataset itself untouched (so loaded
    splits can be shared); keeps the batched fast path of the DataLoader."""

    def __init__(self, dataset: Dataset, transform: Any):
        self.dataset, self.transform = dataset, transform

    @property
    def classes(self) -> list[str]:
        return self.dataset.classes

    @property
    def targets(self) -> np.ndarray:
        return self.dataset.targets

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        image, label = self.dataset[index]
        return apply(self.transform, image), label

    def get_batch(self, indices: np.ndarray, rng: np.random.Generator | None = None):
        images, labels = self.dataset.get_batch(indices, rng)
        return apply(self.transform, images, rng), labels


_LOADED: dict[tuple, Dataset] = {}   # splits already read in this process (the app reloads often)
_KEEP = 4


def load_split(recipe: Recipe, train: bool) -> Dataset:
    """The whole training (or validation) split the recipe names, as stored: no limit, no
    augmentation (loaded once per process)."""
    if recipe.holdout:
        return _held_out(load_split(replace(recipe, holdout=0), True), recipe.holdout, train)
    key = (recipe.data, train, recipe.size, recipe.channels, recipe.seed, recipe.root)
    if key not in _LOADED:
        if len(_LOADED) >= _KEEP:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = datasets.get_dataset(recipe.data, train=train, size=recipe.size, channels=recipe.channels,
                                            seed=recipe.seed, root=recipe.root)
    return _LOADED[key]


def _held_out(whole: Dataset, n: int, train: bool) -> Dataset:
    """The first len - n images of a training split (train) or its last n (validation).

    The dataset's own test split stays untouched: a recipe tuned on the held-out images can
    still be reported on data it never saw, and a dataset shipped without its test files
    (like ../shared/datasets/mnist) can be trained and validated at all. The last images,
    not a random draw, so that another tool can hold out exactly the same ones."""
    if n >= len(whole):
        raise SettingError("holdout", f"holdout {n} leaves no training images: the training split has {len(whole)}")
    cut = len(whole) - n
    return Subset(whole, np.arange(cut) if train else np.arange(cut, len(whole)))


SPLITS = ("train", "val", "all")


def load_evaluation_split(recipe: Recipe, split: str) -> Dataset:
    """The whole `split` ("train", "val" or "all": both together) of the recipe's data, as
    stored: no limit, no augmentation."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split != "all":
        return load_split(recipe, split == "train")
    return ConcatDataset([load_split(recipe, True), load_split(recipe, False)])   # classes: the first's


def image_shape(ds: Dataset) -> tuple[int, int, int]:
    """(channels, height, width) of the dataset's images."""
    shape = tuple(int(s) for s in getattr(ds[0][0], "shape", ()))
    if len(shape) != 3:
        raise ValueError(f"the dataset's images have shape {shape}, expected (channels, height, width)")
    return shape  # type: ignore[return-value]


def spread(ds: Dataset, limit: int) -> Dataset:
    """`limit` samples spread over the whole set, so a set sorted by class keeps every class."""
    if not limit or limit >= len(ds):
        return ds
    return Subset(ds, np.unique(np.linspace(0, len(ds) - 1, limit).astype(int)))


def load_data(recipe: Recipe, stats: dict[str, list[float]] | None = None) -> Data:
    """The recipe's training and validation splits (limited, augmented on the training side).
    `stats` reuses a run's normalisation statistics (a resumed run keeps the inputs it
    started with); otherwise they are measured on the training images when `normalize`."""
    train, val = spread(load_split(recipe, True), recipe.limit), spread(load_split(recipe, False), recipe.limit)
    if not len(train):
        raise ValueError(f"{recipe.data} has no training images")
    shape = image_shape(train)
    classes = list(getattr(train, "classes", [])) or [str(i) for i in range(10)]
    if recipe.normalize and stats is None:
        stats = channel_stats(train)
    if recipe.augment:
        train = Augmented(train, augmentation(shape))
    return Data(train, val, shape, classes, stats if recipe.normalize else None)  # type: ignore[arg-type]


def channel_stats(ds: Dataset) -> dict[str, list[float]]:
    """Per-channel mean and std of a dataset's images (0..1 pixels), in one float64 pass."""
    total = total_sq = None
    count = 0
    for x, _ in DataLoader(ds, batch_size=1000, seed=0):
        a = x.numpy().astype(np.float64)
        s1, s2 = a.sum(axis=(0, 2, 3)), (a * a).sum(axis=(0, 2, 3))
        total, total_sq = (s1, s2) if total is None else (total + s1, total_sq + s2)
        count += a.shape[0] * a.shape[2] * a.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    return {"mean": [float(m) for m in mean], "std": [float(max(s, 1e-6)) for s in std]}


def augmentation(shape: tuple[int, int, int]):
    """Shifts of up to 1/14 of the side for one-channel images (digits: flipping would
    change them), padded random crops and flips for colour ones."""
    from .data.transforms import Compose, RandomCrop, RandomHorizontalFlip, RandomShift

    c, h, _ = shape
    if c == 1:
        return Compose([RandomShift(max(1, h // 14))])
    return Compose([RandomCrop(h, padding=max(1, h // 8)), RandomHorizontalFlip()])


def make_loaders(recipe: Recipe, data: Data) -> tuple[DataLoader, DataLoader]:
    """Shuffled training batches (the order fixed by the seed) and validation batches."""
    return (DataLoader(data.train, batch_size=recipe.batch_size, shuffle=True, seed=recipe.seed),
            DataLoader(data.val, batch_size=max(256, recipe.batch_size)))


# ----------------------------------------------------------------------------- model and optimizer
def build_model(recipe: Recipe, data: Data) -> nn.Module:
    """Fresh weights (from the recipe's seed) for the data's shape and classes, with the
    normalisation as the model's first layer when the recipe normalises."""
    from .tensor import manual_seed

    manual_seed(recipe.seed)
    if recipe.model == "custom":
        model = models.build_sequential(recipe.layers or [])
        if data.stats is not None:
            model = nn.Sequential(nn.Normalize(data.stats["mean"], data.stats["std"]), *model)
        return model
    return zoo_model(recipe.model, data.shape, len(data.classes), recipe.model_args, data.stats)


def zoo_model(name: str, shape: tuple[int, int, int], num_classes: int, model_args: dict[str, Any] | None = None,
              stats: dict[str, list[float]] | None = None) -> nn.Module:
    """A zoo model sized for images of `shape`; `stats` makes normalisation its first layer."""
    c, h, w = shape
    if h != w:
        raise SettingError("model", f"the zoo models expect square images, the data has {h}x{w}")
    extra = {"normalize": stats} if stats is not None else {}
    return models.create(name, in_channels=c, num_classes=num_classes, input_size=h, **(model_args or {}), **extra)


def build_optimizer(recipe: Recipe, params) -> optim.Optimizer:
    lr = recipe.resolved_lr()
    if recipe.optimizer == "sgd":
        return optim.SGD(params, lr=lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay,
                         nesterov=recipe.nesterov)
    if recipe.optimizer == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=recipe.weight_decay or 1e-2)
    return optim.Adam(params, lr=lr, weight_decay=recipe.weight_decay)


def build_schedule(recipe: Recipe, optimizer: optim.Optimizer, steps_per_epoch: int) -> tuple[Any, str]:
    """(scheduler or None, when it steps: "epoch" or "step")."""
    if recipe.schedule == "step":
        return StepLR(optimizer, step_size=max(1, recipe.epochs // 3), gamma=0.1), "epoch"
    if recipe.schedule == "cosine":
        # per step: over one or two epochs a per-epoch cosine would barely move
        total = recipe.epochs * steps_per_epoch
        return WarmupCosineLR(optimizer, T_max=total, warmup=max(1, total // 50)), "step"
    return None, "epoch"


def run_device(recipe: Recipe) -> str | None:
    """The Run's device argument: None keeps the CPU."""
    return None if recipe.device == "cpu" else recipe.device


def build_run(recipe: Recipe, data: Data | None = None, model: nn.Module | None = None,
              callbacks: tuple[Callback, ...] | list[Callback] = ()) -> Run:
    """A Run ready to start: the recipe's data (loaded unless given), model (built unless
    given), loaders, optimizer and schedule."""
    recipe.check()
    data = data if data is not None else load_data(recipe)
    model = model if model is not None else build_model(recipe, data)
    train_loader, val_loader = make_loaders(recipe, data)
    opt = build_optimizer(recipe, model.parameters())
    sched, interval = build_schedule(recipe, opt, len(train_loader))
    loss = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing) if recipe.label_smoothing else None
    run = Run(model, train_loader, opt, loss, recipe.epochs, val_loader, callbacks, run_device(recipe), sched,
              interval)
    run.eval_flip = recipe.tta
    return run


# ----------------------------------------------------------------------------- checkpoints
def checkpoint_extra(recipe: Recipe, data: Data) -> dict[str, Any]:
    """What a checkpoint records about the run beside the model: enough to reload its data."""
    return {"data": recipe.data, "seed": recipe.seed, "batch_size": recipe.batch_size, "size": recipe.size,
            "channels": recipe.channels, "limit": recipe.limit, "input_shape": list(data.shape),
            "classes": list(data.classes), "normalize": data.stats, "augment": bool(recipe.augment),
            "recipe": recipe.to_dict()}


def recipe_from_checkpoint(ckpt: dict[str, Any], base: Recipe | None = None) -> Recipe:
    """The recipe a checkpoint was trained with; `epochs` and `device`, and whatever it does
    not record (older checkpoints record only the data settings), come from `base`."""
    extra = ckpt.get("extra", {})
    base = base or Recipe()
    d = base.to_dict()
    d.update(extra.get("recipe") or {})
    d["epochs"], d["device"] = base.epochs, base.device   # how much longer, and where, is the caller's choice
    for key in ("data", "seed", "batch_size", "size", "channels", "limit", "augment"):
        if key in extra:
            d[key] = extra[key]
    d["normalize"] = bool(extra.get("normalize"))
    desc = ckpt["model"]
    if desc["name"] == "sequential":
        layers = list(desc.get("layers") or [])
        if layers and layers[0].get("type") == "Normalize":   # the recipe adds it back from the statistics
            layers = layers[1:]
        d["model"], d["layers"] = "custom", layers
    else:
        d["model"] = desc["name"]
        d["model_args"] = {k: v for k, v in desc.get("kwargs", {}).items() if k not in _DATA_ARGS}
    return Recipe.from_dict(d)


_DATA_ARGS = ("in_channels", "num_classes", "input_size", "normalize")   # set by the data, not the user


def resume_run(path: str, recipe: Recipe, data: Data, epochs: int,
               callbacks: tuple[Callback, ...] | list[Callback] = (), lr: float | None = None) -> Run:
    """The run saved in checkpoint `path`, continued on `data` (load it with the recipe from
    `recipe_from_checkpoint` and the checkpoint's statistics) until `epochs` are done.
    `lr` replaces the run's learning rate (see `change_lr`)."""
    from .checkpoint import resume

    train_loader, val_loader = make_loaders(recipe, data)
    run = resume(path, train_loader, epochs, val_loader, callbacks, run_device(recipe))
    if lr is not None:
        change_lr(run, lr)
    return run


def change_lr(run: Run, lr: float) -> None:
    """Make `lr` the rate a run trains with from its next step. A schedule goes on from
    where it was, scaled to meet the new rate (its base rates scale alike), so a cosine
    that had run out does not shrink the new rate to nothing."""
    if not 0 < lr < math.inf:
        raise SettingError("lr", f"lr must be > 0 and finite, got {lr}")
    sched = run.scheduler
    for i, group in enumerate(run.optimizer.param_groups):
        if sched is not None:
            sched.base_lrs[i] = sched.base_lrs[i] * lr / group["lr"] if group["lr"] > 0 else float(lr)
            if "initial_lr" in group:
                group["initial_lr"] = sched.base_lrs[i]
        group["lr"] = float(lr)
