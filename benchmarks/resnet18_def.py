"""The textbook ResNet-18 (d2l's chapter on ResNet), written once for both libraries.

`build(lib)` takes the library module (`cnnlab` or `torch`) and returns the model, so
bench_engine.py and torch_alone.py time the same architecture with the same parameter
names (a cnnlab state_dict loads into the PyTorch twin). This file imports neither
library itself, so torch_alone.py can use it in a process where cnnlab never loads.

d2l resizes Fashion-MNIST to 96x96; the benchmark uses 28x28 single-channel inputs, where
the spatial sizes shrink to 14, 7, 4, 2 and 1 (stem, pool, stages 2-4): small planes with
many channels, the shapes the issue found on slow paths. `Y = Y + X` stands in for d2l's
`Y += X` (in-place ops are another helper's work; the arithmetic is the same).
"""
from __future__ import annotations

import types


def build(lib: types.ModuleType, in_channels: int = 1, num_classes: int = 10):
    nn, F = lib.nn, lib.nn.functional

    class Residual(nn.Module):
        def __init__(self, cin: int, cout: int, use_1x1conv: bool = False, strides: int = 1):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, kernel_size=3, padding=1, stride=strides)
            self.conv2 = nn.Conv2d(cout, cout, kernel_size=3, padding=1)
            self.conv3 = nn.Conv2d(cin, cout, kernel_size=1, stride=strides) if use_1x1conv else None
            self.bn1 = nn.BatchNorm2d(cout)
            self.bn2 = nn.BatchNorm2d(cout)

        def forward(self, X):
            Y = F.relu(self.bn1(self.conv1(X)))
            Y = self.bn2(self.conv2(Y))
            if self.conv3 is not None:
                X = self.conv3(X)
            Y = Y + X
            return F.relu(Y)

    def stage(cin: int, cout: int, first: bool):
        return nn.Sequential(Residual(cin, cout, use_1x1conv=not first, strides=1 if first else 2),
                             Residual(cout, cout))

    return nn.Sequential(
        nn.Sequential(nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3), nn.BatchNorm2d(64),
                      nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        stage(64, 64, True), stage(64, 128, False), stage(128, 256, False), stage(256, 512, False),
        nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, num_classes)))
