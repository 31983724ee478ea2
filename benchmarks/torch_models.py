"""The zoo's architectures written in PyTorch, for side-by-side benchmarks.

Parameter names match cnnlab's, so a cnnlab state_dict loads into them.
"""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F


class ConvNet(nn.Module):
    def __init__(self, in_channels=1, num_classes=10, input_size=28):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1)
        self.max1 = nn.MaxPool2d(2, 2, 0)
        self.conv2 = nn.Conv2d(16, 32, 3, 1, 0)
        self.max2 = nn.MaxPool2d(2, 2, 1)
        self.conv3 = nn.Conv2d(32, 64, 1, 1, 0)
        self.conv4 = nn.Conv2d(64, 4, 5, 1, 0)
        self.flatten = nn.Flatten()
        s = ((input_size // 2) - 2) // 2 + 1 - 4
        self.linear1 = nn.Linear(4 * s * s, num_classes)

    def forward(self, x):
        x = self.max2(self.conv2(self.max1(self.conv1(x))))
        return self.linear1(self.flatten(self.conv4(self.conv3(x))))


class SimpleCNN(nn.Module):
    def __init__(self, in_channels=3, num_classes=10, input_size=32):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 18, 3, 1, 1)
        self.pool = nn.MaxPool2d(2, 2, 0)
        self.features = 18 * (input_size // 2) ** 2
        self.fc1 = nn.Linear(self.features, 64)
        self.fc2 = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x))).view(-1, self.features)
        return self.fc2(F.relu(self.fc1(x)))


def _block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class ModernCNN(nn.Module):
    def __init__(self, in_channels=1, num_classes=10, input_size=28, width=32, dropout=0.25):
        super().__init__()
        w = width
        self.features = nn.Sequential(*_block(in_channels, w), *_block(w, w), nn.MaxPool2d(2),
                                      *_block(w, 2 * w), *_block(2 * w, 2 * w), nn.MaxPool2d(2))
        s = input_size // 4
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * w * s * s, 128),
                                        nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class CifarCNN(nn.Module):
    def __init__(self, in_channels=3, num_classes=10, input_size=32):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_channels, 32, 3, 1, 1), nn.ReLU(), nn.Dropout(0.3),
                                      nn.Conv2d(32, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2))
        s = input_size // 2
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * s * s, 512), nn.ReLU(), nn.Dropout(0.5),
                                        nn.Linear(512, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def build(name, **kwargs):
    return {"convnet": ConvNet, "simplecnn": SimpleCNN, "modern": ModernCNN, "cifarcnn": CifarCNN}[name](**kwargs)
