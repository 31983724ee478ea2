"""Bad input raises ValueError (never a numba typing error) naming the layer, what it
expected and what it got; the model stays usable afterwards."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import cnnlab as torch
import cnnlab.nn as nn
import cnnlab.nn.functional as F


def raises(fn, *fragments):
    """fn() must raise a ValueError whose message holds every fragment; returns the message."""
    with pytest.raises(ValueError) as err:
        fn()
    msg = str(err.value)
    assert "numba" not in msg.lower() and "Traceback" not in msg, msg
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, kernel_size=5, dilation=2)
        self.pool = nn.MaxPool2d(2)
        self.bn = nn.BatchNorm2d(8)
        self.classifier = nn.Sequential(nn.Flatten(), nn.ReLU(), nn.Linear(8 * 4 * 4, 10))

    def forward(self, x):
        return self.classifier(self.bn(self.pool(self.conv1(x))))


GOOD = (2, 3, 17, 17)   # conv (dilated span 9) -> 9x9, pool -> 4x4


def test_the_good_input_works():
    assert tuple(Net()(torch.zeros(*GOOD)).shape) == (2, 10)


def test_wrong_channel_count():
    net = Net()
    raises(lambda: net(torch.zeros(2, 1, 17, 17)), "conv1 (Conv2d)", "3 channels", "got 1 channel", "[2, 1, 17, 17]")
    assert tuple(net(torch.zeros(*GOOD)).shape) == (2, 10)   # nothing was lost


def test_wrong_channel_count_unbatched():
    raises(lambda: Net()(torch.zeros(1, 17, 17)), "conv1 (Conv2d)", "3 channels", "got 1")


def test_input_smaller_than_the_dilated_kernel():
    # 5x5 kernel dilated by 2 spans 9 cells; an 8x8 input cannot hold it
    msg = raises(lambda: Net()(torch.zeros(2, 3, 8, 8)), "conv1 (Conv2d)", "8x8", "9")
    assert "dilated" in msg


def test_input_smaller_than_the_kernel_after_padding():
    conv = nn.Conv2d(1, 1, 7, padding=1)
    raises(lambda: conv(torch.zeros(1, 1, 4, 4)), "Conv2d", "4x4", "6x6", "7")
    raises(lambda: F.conv2d(torch.zeros(1, 1, 2, 9), torch.zeros(1, 1, 3, 3)), "conv2d", "2x9")
    raises(lambda: nn.Sequential(nn.MaxPool2d(3))(torch.zeros(1, 1, 2, 2)), "0 (MaxPool2d)", "2x2", "3")


def test_pooling_output_shrinking_to_nothing_inside_a_model():
    seq = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3))
    raises(lambda: seq(torch.zeros(1, 1, 6, 6)), "2 (Conv2d)", "2x2", "3")


@pytest.mark.parametrize("make, fragments", [
    (lambda: nn.Conv2d(1, 1, 3, stride=0), ["Conv2d", "stride", "0"]),
    (lambda: nn.Conv2d(1, 1, 3, stride=(1, 0)), ["Conv2d", "stride"]),
    (lambda: nn.Conv2d(1, 1, 3, padding=-1), ["Conv2d", "padding", "-1"]),
    (lambda: nn.Conv2d(1, 1, 3, dilation=0), ["Conv2d", "dilation"]),
    (lambda: nn.Conv2d(1, 1, 0), ["Conv2d", "kernel_size"]),
    (lambda: nn.Conv2d(0, 1, 3), ["Conv2d", "in_channels"]),
    (lambda: nn.Linear(0, 3), ["Linear", "in_features"]),
])
def test_bad_layer_arguments(make, fragments):
    raises(make, *fragments)


@pytest.mark.parametrize("call, fragments", [
    (lambda x: F.conv2d(x, torch.zeros(1, 1, 3, 3), stride=0), ["conv2d", "stride"]),
    (lambda x: F.conv2d(x, torch.zeros(1, 1, 3, 3), padding=-1), ["conv2d", "padding"]),
    (lambda x: F.conv2d(x, torch.zeros(1, 1, 3, 3), padding="same", stride=2), ["conv2d", "same", "stride"]),
    (lambda x: F.conv2d(x, torch.zeros(1, 1, 3, 3), padding="full"), ["conv2d", "full"]),
    (lambda x: F.max_pool2d(x, 2, stride=0), ["max_pool2d", "stride"]),
    (lambda x: F.avg_pool2d(x, 2, padding=-1), ["avg_pool2d", "padding"]),
    (lambda x: F.max_pool2d(x, 2, padding=2), ["max_pool2d", "padding", "half"]),
])
def test_bad_functional_arguments(call, fragments):
    raises(lambda: call(torch.zeros(1, 1, 6, 6)), *fragments)


def test_pool_stride_zero_inside_a_model():
    seq = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2, stride=0))
    raises(lambda: seq(torch.zeros(1, 1, 6, 6)), "1 (MaxPool2d)", "stride", "0")


@pytest.mark.parametrize("shape", [(17, 17), (3, 17), (1, 2, 3, 17, 17)])
def test_wrong_number_of_dimensions(shape):
    raises(lambda: Net()(torch.zeros(*shape)), "conv1 (Conv2d)", "4-D", f"{len(shape)}-D")


def test_wrong_ndim_for_batch_norm_and_pooling():
    raises(lambda: nn.BatchNorm2d(3)(torch.zeros(2, 3)), "BatchNorm2d", "4-D", "[2, 3]")
    raises(lambda: nn.MaxPool2d(2)(torch.zeros(4, 4)), "MaxPool2d", "4-D", "2-D")


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
def test_integer_input(dtype):
    x = torch.zeros(*GOOD, dtype=dtype)
    raises(lambda: Net()(x), "conv1 (Conv2d)", "float", str(np.dtype(dtype)))


@pytest.mark.parametrize("layer, shape", [
    (nn.Linear(4, 2), (3, 4)), (nn.ReLU(), (3, 4)), (nn.Sigmoid(), (3, 4)), (nn.Tanh(), (3, 4)),
    (nn.MaxPool2d(2), (1, 1, 4, 4)), (nn.AvgPool2d(2), (1, 1, 4, 4)), (nn.BatchNorm2d(1), (2, 1, 4, 4)),
    (nn.Softmax(dim=1), (3, 4)),
])
def test_integer_input_to_other_layers(layer, shape):
    raises(lambda: nn.Sequential(layer)(torch.zeros(*shape, dtype=torch.int64)),
           f"0 ({type(layer).__name__})", "int64")


def test_float64_input_into_a_float32_layer():
    raises(lambda: Net()(torch.zeros(*GOOD, dtype=torch.float64)), "conv1 (Conv2d)", "float64", "float32")
    raises(lambda: nn.Sequential(nn.Linear(4, 2))(torch.zeros(3, 4, dtype=torch.float64)),
           "0 (Linear)", "float64", "float32")


def test_float16_input_is_refused_clearly():
    x = torch.zeros(*GOOD).to(torch.float16)
    raises(lambda: Net().to(torch.float16)(x), "conv1 (Conv2d)", "float16")


def test_linear_with_the_wrong_feature_count_inside_sequential():
    seq = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(10, 2))
    raises(lambda: seq(torch.zeros(4, 1, 5, 5)), "2 (Linear)", "10 features", "[4, 18]")


def test_errors_name_the_attribute_path():
    bad = Net()
    bad.classifier = nn.Sequential(nn.Flatten(), nn.ReLU(), nn.Linear(100, 10))
    raises(lambda: bad(torch.zeros(*GOOD)), "classifier.2 (Linear)", "100 features", "[2, 128]")


def test_error_path_with_a_repeated_name():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = nn.Sequential(OrderedDict(block=nn.Conv2d(3, 2, 3)))

        def forward(self, x):
            return self.block(x)

    raises(lambda: M()(torch.zeros(1, 1, 5, 5)), "block.block (Conv2d)")


def test_batch_norm_wrong_channels_and_single_value():
    raises(lambda: nn.Sequential(nn.BatchNorm2d(3))(torch.zeros(2, 1, 4, 4)), "0 (BatchNorm2d)", "3 channels",
           "got 1")
    raises(lambda: nn.BatchNorm1d(3)(torch.zeros(1, 3)), "BatchNorm1d", "more than 1 value")


@pytest.mark.parametrize("labels, fragments", [
    ([0, 3, 1], ["target 3", "3 classes"]),
    ([0, -1, 1], ["target -1", "3 classes"]),
])
def test_labels_out_of_range(labels, fragments):
    loss = nn.CrossEntropyLoss()
    raises(lambda: loss(torch.zeros(3, 3), torch.tensor(labels)), "CrossEntropyLoss", *fragments)
    raises(lambda: F.nll_loss(torch.zeros(3, 3), torch.tensor(labels)), *fragments)


def test_float_labels():
    # float class indices with the batch's shape: not class probabilities either
    raises(lambda: nn.CrossEntropyLoss()(torch.zeros(3, 4), torch.tensor([0.0, 2.0, 1.0])),
           "CrossEntropyLoss", "[3, 4]", "[3]")
    raises(lambda: F.nll_loss(torch.zeros(3, 4), torch.tensor([0.0, 2.0, 1.0])), "nll_loss", "float32", "long")


def test_labels_of_the_wrong_shape():
    raises(lambda: F.cross_entropy(torch.zeros(3, 4), torch.tensor([[0], [1], [2]])), "3 targets", "[3, 1]")
    raises(lambda: F.cross_entropy(torch.zeros(3, 4), torch.tensor([0, 1])), "3 targets", "[2]")


def test_mse_loss_shape_mismatch():
    raises(lambda: nn.MSELoss()(torch.zeros(2, 3), torch.zeros(3, 2)), "MSELoss", "[2, 3]", "[3, 2]")


@pytest.mark.parametrize("shape", [(4, -1, 5), (7, -1), (5, 5), (-1, -1)])
def test_view_with_a_bad_shape(shape):
    shown = "[" + ", ".join(str(s) for s in shape) + "]"
    raises(lambda: torch.zeros(2, 3, 4).view(*shape), "view", shown, "[2, 3, 4]", "24")


def test_view_with_a_bad_shape_inside_a_model():
    class Tutorial(nn.Module):   # seed 000's view with the wrong image size (28x28 instead of 32x32)
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(18 * 16 * 16, 64)

        def forward(self, x):
            return self.fc1(x.view(-1, 18 * 16 * 16))

    raises(lambda: Tutorial()(torch.zeros(3, 18, 14, 14)), "Tutorial", "[-1, 4608]", "[3, 18, 14, 14]")


def test_a_numpy_array_instead_of_a_tensor():
    raises(lambda: Net()(np.zeros(GOOD, np.float32)), "conv1 (Conv2d)", "Tensor", "ndarray")
