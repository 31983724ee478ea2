"""The tutorials' code, as printed in seeds 000 and 004, with only the imports changed."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import cnnlab as torch
import cnnlab.nn as nn
import cnnlab.nn.functional as F
import cnnlab.optim as optim


# ---------------------------------------------------------------- seed 000
class SimpleCNN(torch.nn.Module):
   def __init__(self):
      super(SimpleCNN, self).__init__()
      #Input channels = 3, output channels = 18
      self.conv1 = torch.nn.Conv2d(3, 18, kernel_size = 3, stride = 1, padding = 1)
      self.pool = torch.nn.MaxPool2d(kernel_size = 2, stride = 2, padding = 0)
      #4608 input features, 64 output features (see sizing flow below)
      self.fc1 = torch.nn.Linear(18 * 16 * 16, 64)
      #64 input features, 10 output features for our 10 defined classes
      self.fc2 = torch.nn.Linear(64, 10)

   # the seed prints forward below the class and stops before its last line, `return(x)`
   def forward(self, x):
      x = F.relu(self.conv1(x))
      x = self.pool(x)
      x = x.view(-1, 18 * 16 *16)
      x = F.relu(self.fc1(x))
      #Computes the second fully connected layer (activation applied later)
      #Size changes from (1, 64) to (1, 10)
      x = self.fc2(x)
      return(x)


# ---------------------------------------------------------------- seed 004
class ConvNet(nn.Module):
    def __init__(self):
        self.conv1 = nn.Conv2d(1, 16, 3, 1, 1)  # in_channels, out_channels, kernel_size, stride, padding
        self.max1 = nn.MaxPool2d(2, 2, 0)  # kernel_size, stride, padding
        self.conv2 = nn.Conv2d(16, 32, 3, 1, 0)
        self.max2 = nn.MaxPool2d(2, 2, 1)
        self.conv3 = nn.Conv2d(32, 64, 1, 1, 0)
        self.conv4 = nn.Conv2d(64, 4, 5, 1, 0)
        self.flatten = nn.Flatten()
        self.linear1 = nn.Linear(36, 10)
    def trainable_layers(self):
        """A utility property to easily access a list of all model layers."""
        return [self.conv1, self.conv2, self.conv3, self.conv4, self.linear1]
    def forward(self, inputs):
        """Implements the forward pass."""
        x = self.conv1(inputs)
        x = self.max1(x)
        x = self.conv2(x)
        x = self.max2(x)
        x = self.conv3(x)
        x = self.conv4(x)
        x = self.flatten(x)
        x = self.linear1(x)
        return x

    def print_weight_shapes(self):
        """Utility function to print the shapes of weights in trainable layers."""
        for layer in self.trainable_layers:
            print(f"Weight shape: {layer.weight.shape}; Bias shape: {layer.bias.shape}")


class FCNet(nn.Module):
    def __init__(self):
        self.fc1 = nn.Linear(28 * 28, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.flatten(x, 1) # flatten all dimensions except batch
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return x


SEEDS = [Path(__file__).resolve().parents[2] / ".." / "shared" / "seeds",
         Path(__file__).resolve().parents[2] / "shared" / "seeds"]


def seed_text(prefix: str) -> str:
    for folder in SEEDS:
        found = sorted(folder.glob(f"{prefix}_*.txt"))
        if found:
            return found[0].read_text(encoding="utf-8")
    pytest.skip(f"seed {prefix} not found in {[str(s) for s in SEEDS]}")


def seed_tables(text: str) -> list[list[str]]:
    """Every torchinfo table printed in the seed: its lines from the header to the total size."""
    lines = text.splitlines()
    tables = []
    for i, line in enumerate(lines):
        if line.startswith("Layer (type:depth-idx)"):
            end = next(j for j in range(i, len(lines)) if lines[j].startswith("Estimated Total Size"))
            tables.append([ln.rstrip() for ln in lines[i:end + 1]])
    return tables


def table_lines(summary) -> list[str]:
    return [ln.rstrip() for ln in str(summary).splitlines() if ln.strip() and set(ln.strip()) != {"="}]


# ------------------------------------------------------------------- shapes
def test_simple_cnn_sizing_flow():
    net = SimpleCNN()
    x = torch.randn(4, 3, 32, 32)
    assert tuple(net.conv1(x).shape) == (4, 18, 32, 32)                # (3, 32, 32) -> (18, 32, 32)
    assert tuple(net.pool(net.conv1(x)).shape) == (4, 18, 16, 16)     # -> (18, 16, 16)
    assert tuple(net(x).shape) == (4, 10)
    assert tuple(net(x[:1]).shape) == (1, 10)                          # "(1, 4608)" then "(1, 10)"
    assert sum(p.numel() for p in net.parameters()) == 3 * 18 * 9 + 18 + 4608 * 64 + 64 + 64 * 10 + 10


def test_convnet_forgets_super_init_and_still_works():
    net = ConvNet()
    assert [n for n, _ in net.named_parameters()][:2] == ["conv1.weight", "conv1.bias"]
    assert tuple(net(torch.zeros(64, 1, 28, 28)).shape) == (64, 10)
    assert tuple(FCNet()(torch.zeros(64, 1, 28, 28)).shape) == (64, 10)


def test_convnet_weight_shapes_as_printed_in_seed_004():
    printed = re.findall(r"Weight shape: torch\.Size\((\[[\d, ]+\])\); Bias shape: torch\.Size\((\[[\d, ]+\])\)",
                         seed_text("004"))
    assert len(printed) == 5
    got = [(str(list(layer.weight.shape)), str(list(layer.bias.shape))) for layer in ConvNet().trainable_layers()]
    assert got == printed


def test_seed000_import_line():
    from cnnlab.autograd import Variable   # noqa: F401


# ------------------------------------------------------------------ summary
def test_convnet_summary_is_seed_004s_table():
    expected = seed_tables(seed_text("004"))[0]
    got = table_lines(torch.summary(ConvNet(), input_size=(64, 1, 28, 28)))
    assert got == expected
    assert "Total params: 13,686" in expected


def test_fcnet_summary_is_seed_004s_table():
    expected = seed_tables(seed_text("004"))[1]
    s = torch.summary(FCNet(), input_size=(64, 1, 28, 28))
    assert table_lines(s) == expected
    assert "Total params: 12,730" in expected and s.total_params == 12_730


def test_summary_fields():
    s = torch.summary(ConvNet(), input_size=(64, 1, 28, 28))
    assert s.total_params == s.trainable_params == 13_686
    assert [r.output_shape for r in s.rows][0] == [64, 16, 28, 28]
    assert [r.output_shape for r in s.rows][-1] == [64, 10]


def test_summary_leaves_the_model_as_it_was():
    net = ConvNet()
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    torch.summary(net, input_size=(2, 1, 28, 28))
    assert net.training
    assert all(np.array_equal(before[k], v.numpy()) for k, v in net.state_dict().items())
    assert not net.conv1._forward_hooks


# ---------------------------------------------------------------- training
def bars(n: int, rng: np.random.Generator, size: int = 12):
    """Images with one bright bar: horizontal (class 0) or vertical (class 1), anywhere, plus noise."""
    x = rng.normal(0, 0.3, (n, 1, size, size)).astype(np.float32)
    y = rng.integers(0, 2, n)
    half = size // 2
    for i in range(n):
        at, lo = rng.integers(1, size - 1), rng.integers(0, size - half + 1)
        if y[i] == 0:
            x[i, 0, at, lo:lo + half] += 1.0
        else:
            x[i, 0, lo:lo + half, at] += 1.0
    return torch.tensor(x), torch.tensor(y)


def accuracy(net, x, y) -> float:
    with torch.no_grad():
        return float((net(x).argmax(1).numpy() == y.numpy()).mean())


def test_a_small_cnn_learns_a_toy_task():
    """Seed 004's training loop (CrossEntropyLoss, SGD with momentum 0.9) on horizontal vs vertical bars."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 2))
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x_test, y_test = bars(400, rng)
    acc_before = accuracy(net, x_test, y_test)
    losses = []
    for _ in range(80):
        inputs, labels = bars(32, rng)
        optimizer.zero_grad()
        loss = criterion(net(inputs), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    acc_after = accuracy(net, x_test, y_test)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10]), losses
    assert acc_after >= 0.9 and acc_after > acc_before + 0.25, (acc_before, acc_after)
