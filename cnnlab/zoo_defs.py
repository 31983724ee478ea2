"""The zoo's architectures, each written once, for whichever library runs this file.

Imported as a module it builds them with cnnlab. `cnnlab.zoo_twin.zoo_classes(torch)` executes
this same source with the names `torch`, `nn`, `F` and `Normalize` bound to PyTorch, which
gives the PyTorch twins (same parameter names, same state-dict keys, same forward); the
PyTorch export copies each model's `forward` from here too. So what the classes below may
use is the API the two libraries share, and a `forward` must use only its module's own
layers and attributes, `F`, `torch` and plain Python (the export carries nothing else).
"""
from __future__ import annotations

from typing import Any

if "nn" not in globals():   # a plain import; zoo_twin.zoo_classes(lib) binds these names itself
    import cnnlab as torch
    from cnnlab.nn.geometry import conv_output_size   # plain arithmetic, the same for both libraries
    from cnnlab import nn
    from cnnlab.nn import Normalize
    from cnnlab.nn import functional as F

ZOO: dict[str, type] = {}


def register(name: str):
    def deco(cls):
        ZOO[name] = cls
        cls.zoo_name = name
        return cls
    return deco


def _normalize_first(module, args):
    return (module.normalize(args[0]),) + tuple(args[1:])


class ZooModel(nn.Module):
    """A zoo model remembers the keyword arguments it was built with (`config`).

    normalize={"mean": [...], "std": [...]} (one value per input channel) makes a first
    child `normalize`, applied to the input before the model's forward, so the model takes
    raw pixels; it is kept in `config` and in the state dict (normalize.mean, normalize.std).
    """

    zoo_name = ""

    def __init__(self, normalize: dict[str, Any] | None = None, **config: Any):
        super().__init__()
        self.config = dict(config)
        if normalize is None:
            return
        mean, std = [float(v) for v in normalize["mean"]], [float(v) for v in normalize["std"]]
        if "in_channels" in config and len(mean) != config["in_channels"]:
            raise ValueError(f"normalize has {len(mean)} channel means, the model takes "
                             f"{config['in_channels']} channels")
        self.config["normalize"] = {"mean": mean, "std": std}
        self.normalize = Normalize(mean, std)
        # PyTorch's own hook for "before forward": each model's forward stays the tutorial's
        self.register_forward_pre_hook(_normalize_first)


@register("convnet")
class ConvNet(ZooModel):
    """Seed 004's ConvNet: four convolutions, two max-pools and one linear layer (13,686
    parameters on 28x28 digits). `input_size` sizes the last layer for other images.
    It has no activation function, as seed 004 wrote it: the whole model is linear between
    its max-pools, and every feature map it shows is before activation.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: int = 28,
                 normalize: dict[str, Any] | None = None):
        super().__init__(normalize, in_channels=in_channels, num_classes=num_classes, input_size=input_size)
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

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self.max1(self.conv1(inputs))
        x = self.max2(self.conv2(x))
        x = self.conv4(self.conv3(x))
        x = self.flatten(x)
        return self.linear1(x)


@register("simplecnn")
class SimpleCNN(ZooModel):
    """Seed 000's SimpleCNN for 32x32 colour images: conv 3->18 (3x3, padding 1), ReLU,
    max-pool 2, then 4608 -> 64 -> 10 fully connected."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, input_size: int = 32,
                 normalize: dict[str, Any] | None = None):
        super().__init__(normalize, in_channels=in_channels, num_classes=num_classes, input_size=input_size)
        self.conv1 = nn.Conv2d(in_channels, 18, kernel_size=3, stride=1, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2, padding=0)
        self.features = 18 * (input_size // 2) ** 2
        self.fc1 = nn.Linear(self.features, 64)
        self.fc2 = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = x.view(-1, self.features)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


@register("cifarcnn")
class CifarCNN(ZooModel):
    """Seed 002's CIFAR-10 network: conv 3->32 (3x3, padding 1), ReLU, dropout 0.3,
    conv 32->32, ReLU, max-pool 2, then 8192 -> 512 (ReLU, dropout 0.5) -> classes.
    The tutorial says it should reach "above 70%" on CIFAR-10."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, input_size: int = 32,
                 normalize: dict[str, Any] | None = None):
        super().__init__(normalize, in_channels=in_channels, num_classes=num_classes, input_size=input_size)
        self.features = nn.Sequential(nn.Conv2d(in_channels, 32, 3, 1, 1), nn.ReLU(), nn.Dropout(0.3),
                                      nn.Conv2d(32, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2))
        s = input_size // 2
        if s < 1:
            raise ValueError(f"cifarcnn: input_size {input_size} is too small")
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * s * s, 512), nn.ReLU(), nn.Dropout(0.5),
                                        nn.Linear(512, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register("fcnet")
class FCNet(ZooModel):
    """Seed 004's fully connected comparison: flatten, 784 -> 16 -> 10 with ReLUs."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: int = 28, hidden: int = 16,
                 normalize: dict[str, Any] | None = None):
        super().__init__(normalize, in_channels=in_channels, num_classes=num_classes, input_size=input_size,
                         hidden=hidden)
        self.fc1 = nn.Linear(in_channels * input_size * input_size, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        # seed 004 applies ReLU to the logits too; kept so the comparison is the tutorial's
        return F.relu(self.fc2(x))


@register("lenet5")
class LeNet5(ZooModel):
    """LeNet-5 (LeCun et al. 1998) with ReLU and max-pooling, as usually taught today:
    conv 6@5x5 (padding 2 on 28x28), pool, conv 16@5x5, pool, 120 -> 84 -> classes."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: int = 28,
                 normalize: dict[str, Any] | None = None):
        super().__init__(normalize, in_channels=in_channels, num_classes=num_classes, input_size=input_size)
        pad = 2 if input_size == 28 else 0
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=pad)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool2 = nn.MaxPool2d(2)
        s = conv_output_size(input_size, 5, 1, pad)
        s = conv_output_size(s, 2, 2)
        s = conv_output_size(s, 5)
        s = conv_output_size(s, 2, 2)
        if s < 1:
            raise ValueError(f"lenet5: input_size {input_size} is too small")
        self.fc1 = nn.Linear(16 * s * s, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def _block(cin: int, cout: int, stride: int = 1) -> list:
    return [nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def _two_stages(cin: int, w: int) -> list:
    """(conv3x3-BN-ReLU) x2 + max-pool at w channels, then the same at 2w: modern's and vgg's features."""
    return [*_block(cin, w), *_block(w, w), nn.MaxPool2d(2), *_block(w, 2 * w), *_block(2 * w, 2 * w),
            nn.MaxPool2d(2)]


@register("modern")
class ModernCNN(ZooModel):
    """A small modern CNN: two stages of (conv3x3-BN-ReLU) x2 + max-pool, then dropout and
    a 128-unit hidden layer. `width` scales the channels (32, 64 by default)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: int = 28, width: int = 32,
                 dropout: float = 0.25, normalize: dict[str, Any] | None = None):
        super().__init__(normalize, in_channels=in_channels, num_classes=num_classes, input_size=input_size,
                         width=width, dropout=dropout)
        w = width
        self.features = nn.Sequential(*_two_stages(in_channels, w))
        s = input_size // 4
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * w * s * s, 128),
                                        nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register("vgg")
class VGGStyle(ZooModel):
    """A VGG-style net for 32x32 colour images: conv 3->32, 32->32, max-pool, conv 32->64,
    64->64, max-pool (3x3 convolutions, each followed by batch norm and ReLU), then one linear
    layer. The modern net's features without its hidden layer and dropout; `width` scales the
    channels (32, 64 by default)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, input_size: int = 32, width: int = 32,
                 normalize: dict[str, Any] | None = None):
        super().__init__(normalize, in_channels=in_channels, num_classes=num_classes, input_size=input_size,
                         width=width)
        s = input_size // 4
        if s < 1:
            raise ValueError(f"vgg: input_size {input_size} is too small (needs at least 4)")
        self.features = nn.Sequential(*_two_stages(in_channels, width))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * s * s, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _basic_block(cin: int, cout: int, stride: int) -> list:
    """A basic residual block's main path: conv3x3 (stride)-BN-ReLU-conv3x3-BN."""
    return [*_block(cin, cout, stride), nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)]


def _shortcut(cin: int, cout: int) -> list:
    """The projection shortcut of a downsampling block: 1x1 convolution, stride 2, and batch norm."""
    return [nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout)]


@register("cifarresnet")
class CifarResNet(ZooModel):
    """A small ResNet for CIFAR-sized images (He et al. 2016, section 4.2, one block per stage):
    a 3x3 stem conv to `width` channels, then basic blocks at width, 2*width (stride 2) and
    4*width (stride 2), batch norm after every conv, 1x1 stride-2 projection shortcuts where
    the shape changes, global average pooling and one linear layer (16, 32, 64 by default).

    Each block is a Sequential (its main path) plus a Sequential shortcut, added in forward:
    the layers stay standard ones, so the model exports to PyTorch like the others."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, input_size: int = 32, width: int = 16,
                 normalize: dict[str, Any] | None = None):
        super().__init__(normalize, in_channels=in_channels, num_classes=num_classes, input_size=input_size,
                         width=width)
        w = width
        self.stem = nn.Sequential(*_block(in_channels, w))
        self.block1 = nn.Sequential(*_basic_block(w, w, 1))
        self.block2 = nn.Sequential(*_basic_block(w, 2 * w, 2))
        self.shortcut2 = nn.Sequential(*_shortcut(w, 2 * w))
        self.block3 = nn.Sequential(*_basic_block(2 * w, 4 * w, 2))
        self.shortcut3 = nn.Sequential(*_shortcut(2 * w, 4 * w))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = F.relu(self.block1(x) + x)
        x = F.relu(self.block2(x) + self.shortcut2(x))
        x = F.relu(self.block3(x) + self.shortcut3(x))
        return self.fc(self.flatten(self.pool(x)))


def _pooling_group(cin: int, cout: int) -> list:
    """conv3x3, max-pool, BN, ReLU, conv3x3, BN, ReLU: the first convolution sees the larger
    plane, the second the pooled one (the layout of the fast CIFAR-10 speedrun nets)."""
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


@register("cifarfast")
class CifarFast(ZooModel):
    """A net for a short CIFAR-10 budget, after the published speedrun nets (Page's
    DAWNBench ResNet, Jordan's airbench): a 3x3 stem of `width` channels, then three groups
    that each halve the plane with a max-pool between their two convolutions (2*width,
    4*width and 4*width channels: 16/32/64/64 by default), a global max-pool and one linear
    layer whose logits are scaled down by `logit_scale` (a small scale keeps early steps
    gentle at a high learning rate). No residual connections: at this depth batch norm
    alone trains it."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, input_size: int = 32, width: int = 16,
                 logit_scale: float = 0.125, normalize: dict[str, Any] | None = None):
        super().__init__(normalize, in_channels=in_channels, num_classes=num_classes, input_size=input_size,
                         width=width, logit_scale=logit_scale)
        s = input_size // 8
        if s < 1:
            raise ValueError(f"cifarfast: input_size {input_size} is too small (needs at least 8)")
        w = width
        self.features = nn.Sequential(*_block(in_channels, w), *_pooling_group(w, 2 * w),
                                      *_pooling_group(2 * w, 4 * w), *_pooling_group(4 * w, 4 * w),
                                      nn.MaxPool2d(s), nn.Flatten())
        self.fc = nn.Linear(4 * w, num_classes, bias=False)
        self.logit_scale = logit_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x)) * self.logit_scale
