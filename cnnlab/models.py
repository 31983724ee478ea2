"""The model zoo: the tutorials' networks, LeNet-5 and a small modern CNN.

Every model is built by name with keyword arguments and can describe itself as
JSON, so a checkpoint rebuilds its model without code:

>>> m = cnnlab.models.create("convnet", in_channels=1, num_classes=10)
>>> cnnlab.models.describe(m)
{'name': 'convnet', 'kwargs': {'in_channels': 1, 'num_classes': 10, 'input_size': 28}}
>>> cnnlab.models.from_description(cnnlab.models.describe(m))   # the same architecture
"""
from __future__ import annotations

from typing import Any, Callable

from . import nn
from .nn import functional as F
from .nn.functional import conv_output_size
from .tensor import Tensor, flatten

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def deco(cls):
        _REGISTRY[name] = cls
        cls.zoo_name = name
        return cls
    return deco


class ZooModel(nn.Module):
    """A zoo model remembers the keyword arguments it was built with."""

    zoo_name = ""

    def __init__(self, **kwargs: Any):
        super().__init__()
        self.config = dict(kwargs)


@register("convnet")
class ConvNet(ZooModel):
    """Seed 004's ConvNet: four convolutions, two max-pools and one linear layer (13,686
    parameters on 28x28 digits). `input_size` sizes the last layer for other images.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: int = 28):
        super().__init__(in_channels=in_channels, num_classes=num_classes, input_size=input_size)
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1)
        self.max1 = nn.MaxPool2d(2, 2, 0)
        self.conv2 = nn.Conv2d(16, 32, 3, 1, 0)
        self.max2 = nn.MaxPool2d(2, 2, 1)
        self.conv3 = nn.Conv2d(32, 64, 1, 1, 0)
        self.conv4 = nn.Conv2d(64, 4, 5, 1, 0)
        self.flatten = nn.Flatten()
        s = conv_output_size(input_size, 3, 1, 1)
        s = conv_output_size(s, 2, 2)
        s = conv_output_size(s, 3)
        s = conv_output_size(s, 2, 2, 1)
        s = conv_output_size(s, 5)
        if s < 1:
            raise ValueError(f"convnet: input_size {input_size} is too small (needs at least 14)")
        self.linear1 = nn.Linear(4 * s * s, num_classes)

    def forward(self, inputs: Tensor) -> Tensor:
        x = self.conv1(inputs)
        x = self.max1(x)
        x = self.conv2(x)
        x = self.max2(x)
        x = self.conv3(x)
        x = self.conv4(x)
        x = self.flatten(x)
        return self.linear1(x)


@register("simplecnn")
class SimpleCNN(ZooModel):
    """Seed 000's SimpleCNN for 32x32 colour images: conv 3->18 (3x3, padding 1), ReLU,
    max-pool 2, then 4608 -> 64 -> 10 fully connected."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, input_size: int = 32):
        super().__init__(in_channels=in_channels, num_classes=num_classes, input_size=input_size)
        self.conv1 = nn.Conv2d(in_channels, 18, kernel_size=3, stride=1, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2, padding=0)
        self.features = 18 * (input_size // 2) ** 2
        self.fc1 = nn.Linear(self.features, 64)
        self.fc2 = nn.Linear(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.conv1(x))
        x = self.pool(x)
        x = x.view(-1, self.features)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


@register("cifarcnn")
class CifarCNN(ZooModel):
    """Seed 002's CIFAR-10 network: conv 3->32 (3x3, padding 1), ReLU, dropout 0.3,
    conv 32->32, ReLU, max-pool 2, then 8192 -> 512 (ReLU, dropout 0.5) -> classes.
    The tutorial says it should reach "above 70%" on CIFAR-10."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, input_size: int = 32):
        super().__init__(in_channels=in_channels, num_classes=num_classes, input_size=input_size)
        self.features = nn.Sequential(nn.Conv2d(in_channels, 32, 3, 1, 1), nn.ReLU(), nn.Dropout(0.3),
                                      nn.Conv2d(32, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2))
        s = input_size // 2
        if s < 1:
            raise ValueError(f"cifarcnn: input_size {input_size} is too small")
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * s * s, 512), nn.ReLU(), nn.Dropout(0.5),
                                        nn.Linear(512, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


@register("fcnet")
class FCNet(ZooModel):
    """Seed 004's fully connected comparison: flatten, 784 -> 16 -> 10 with ReLUs."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: int = 28, hidden: int = 16):
        super().__init__(in_channels=in_channels, num_classes=num_classes, input_size=input_size, hidden=hidden)
        self.fc1 = nn.Linear(in_channels * input_size * input_size, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = flatten(x, 1)
        x = F.relu(self.fc1(x))
        # seed 004 applies ReLU to the logits too; kept so the comparison is the tutorial's
        return F.relu(self.fc2(x))


@register("lenet5")
class LeNet5(ZooModel):
    """LeNet-5 (LeCun et al. 1998) with ReLU and max-pooling, as usually taught today:
    conv 6@5x5 (padding 2 on 28x28), pool, conv 16@5x5, pool, 120 -> 84 -> classes."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: int = 28):
        super().__init__(in_channels=in_channels, num_classes=num_classes, input_size=input_size)
        pad = 2 if input_size == 28 else 0
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=pad)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool2 = nn.MaxPool2d(2)
        s = (((input_size + 2 * pad - 4) // 2) - 4) // 2
        if s < 1:
            raise ValueError(f"lenet5: input_size {input_size} is too small")
        self.fc1 = nn.Linear(16 * s * s, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        x = flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


@register("modern")
class ModernCNN(ZooModel):
    """A small modern CNN: two stages of (conv3x3-BN-ReLU) x2 + max-pool, then dropout and
    a 128-unit hidden layer. `width` scales the channels (32, 64 by default)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: int = 28, width: int = 32,
                 dropout: float = 0.25):
        super().__init__(in_channels=in_channels, num_classes=num_classes, input_size=input_size, width=width,
                         dropout=dropout)
        w = width
        self.features = nn.Sequential(*_block(in_channels, w), *_block(w, w), nn.MaxPool2d(2),
                                      *_block(w, 2 * w), *_block(2 * w, 2 * w), nn.MaxPool2d(2))
        s = input_size // 4
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * w * s * s, 128),
                                        nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


# ------------------------------------------------------------------ building
def names() -> list[str]:
    return sorted(_REGISTRY) + ["sequential"]


def create(name: str, **kwargs: Any) -> nn.Module:
    """Build a zoo model by name ('convnet', 'simplecnn', 'cifarcnn', 'fcnet', 'lenet5', 'modern')."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    try:
        return _REGISTRY[key](**kwargs)
    except TypeError as e:
        raise ValueError(f"model {name!r}: {e}") from e


# layer types a Sequential description may hold, with the constructor argument names it records
_LAYER_ARGS: dict[str, tuple[str, ...]] = {
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "bias"),
    "MaxPool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "AvgPool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    "SumPool2d": ("kernel_size", "stride", "padding", "ceil_mode"),
    "AdaptiveAvgPool2d": ("output_size",),
    "Linear": ("in_features", "out_features", "bias"),
    "BatchNorm2d": ("num_features", "eps", "momentum"),
    "BatchNorm1d": ("num_features", "eps", "momentum"),
    "Dropout": ("p",),
    "Flatten": ("start_dim", "end_dim"),
    "ReLU": (), "Sigmoid": (), "Tanh": (), "Identity": (),
    "LeakyReLU": ("negative_slope",),
    "Softmax": ("dim",), "LogSoftmax": ("dim",),
}


def _layer_args(m: nn.Module) -> dict[str, Any]:
    args = {}
    for a in _LAYER_ARGS[type(m).__name__]:
        v = getattr(m, a)
        if a == "bias":
            v = v is not None
        args[a] = list(v) if isinstance(v, tuple) else v
    return args


def describe(model: nn.Module) -> dict[str, Any]:
    """JSON-ready description: {'name', 'kwargs'} for a zoo model, {'name': 'sequential',
    'layers': [{'type', 'args'}, ...]} for a Sequential of standard layers."""
    if isinstance(model, ZooModel):
        return {"name": model.zoo_name, "kwargs": dict(model.config)}
    if isinstance(model, nn.Sequential):
        layers = []
        for m in model:
            kind = type(m).__name__
            if kind not in _LAYER_ARGS:
                raise ValueError(f"describe: a Sequential with a {kind} layer cannot be described as JSON")
            layers.append({"type": kind, "args": _layer_args(m)})
        return {"name": "sequential", "layers": layers}
    raise ValueError(f"describe: {type(model).__name__} is neither a zoo model nor a Sequential of standard layers")


def from_description(desc: dict[str, Any]) -> nn.Module:
    """Rebuild a model from `describe`'s output (fresh weights)."""
    if not isinstance(desc, dict) or "name" not in desc:
        raise ValueError(f"not a model description: {desc!r}")
    if desc["name"] == "sequential":
        return build_sequential(desc["layers"])
    return create(desc["name"], **desc.get("kwargs", {}))


def build_sequential(layers: list[dict[str, Any]]) -> nn.Sequential:
    """nn.Sequential from [{'type': 'Conv2d', 'args': {...}}, ...]; unknown types are refused."""
    mods = []
    for i, spec in enumerate(layers):
        kind = spec.get("type")
        if kind not in _LAYER_ARGS:
            raise ValueError(f"layer {i}: unknown type {kind!r}; choose one of {', '.join(_LAYER_ARGS)}")
        args = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.get("args", {}).items()}
        try:
            mods.append(getattr(nn, kind)(**args))
        except (TypeError, ValueError) as e:
            raise ValueError(f"layer {i} ({kind}): {e}") from e
    return nn.Sequential(*mods)
