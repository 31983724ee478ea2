"""Worked examples from the seeds, with every number worked out by hand in the comments."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import cnnlab as torch
import cnnlab.nn as nn
import cnnlab.nn.functional as F

# d2l / seed 004: X = arange(9).reshape(3, 3), K = [[0, 1], [2, 3]]
X = torch.arange(9.0).reshape(1, 1, 3, 3)
K = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])


def test_d2l_cross_correlation():
    # 0*0 + 1*1 + 3*2 + 4*3 = 19    1*0 + 2*1 + 4*2 + 5*3 = 25
    # 3*0 + 4*1 + 6*2 + 7*3 = 37    4*0 + 5*1 + 7*2 + 8*3 = 43
    assert F.conv2d(X, K).numpy()[0, 0].tolist() == [[19, 25], [37, 43]]


def test_d2l_padding_1():
    # 3x3 padded to 5x5, a 2x2 kernel -> 4x4; the corner 0*0 + 0*1 + 0*2 + 0*3 = 0 (seed 004),
    # the last row [6, 7, 8, 0]: e.g. 6*1 + 7*0 ... bottom row only meets K's top row [0, 1].
    expected = [[0, 3, 8, 4], [9, 19, 25, 10], [21, 37, 43, 16], [6, 7, 8, 0]]
    assert F.conv2d(X, K, padding=1).numpy()[0, 0].tolist() == expected


def test_d2l_padding_1_stride_3_2():
    # seed 004: 0x0 + 0x1 + 1x2 + 2x3 = 8 and 0x0 + 6x1 + 0x2 + 0x3 = 6
    assert F.conv2d(X, K, padding=1, stride=(3, 2)).numpy()[0, 0].tolist() == [[0, 8], [6, 8]]


def test_the_same_through_the_layer():
    conv = nn.Conv2d(1, 1, kernel_size=2, padding=1, stride=(3, 2), bias=False)
    conv.load_state_dict({"weight": K})
    assert conv(X).numpy()[0, 0].tolist() == [[0, 8], [6, 8]]


def test_binary_image_feature_map():
    # seed 001: a 5x5 image of 0s and 1s and a 3x3 filter (ones at the corners and centre).
    img = torch.tensor([[1, 1, 1, 0, 0],
                        [0, 1, 1, 1, 0],
                        [0, 0, 1, 1, 1],
                        [0, 0, 1, 1, 0],
                        [0, 1, 1, 0, 0]], dtype=torch.float32).view(1, 1, 5, 5)
    filt = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=torch.float32).view(1, 1, 3, 3)
    # top-left: I00 + I02 + I11 + I20 + I22 = 1 + 1 + 1 + 0 + 1 = 4; centre:
    # I11 + I13 + I22 + I31 + I33 = 1 + 1 + 1 + 0 + 1 = 4; bottom-left: I20 + I22 + I31 + I40 + I42 = 2
    full = [[4, 3, 4], [2, 4, 3], [2, 3, 4]]
    assert F.conv2d(img, filt).numpy()[0, 0].tolist() == full
    # stride 2 keeps the corners of that map (seed 001's stride figure)
    assert F.conv2d(img, filt, stride=2).numpy()[0, 0].tolist() == [[4, 4], [2, 4]]


def test_d2l_pooling():
    # d2l 6.5: max over 2x2 windows of arange(9) -> [[4, 5], [7, 8]]; mean (0+1+3+4)/4 = 2 ...
    assert F.max_pool2d(X, 2, 1).numpy()[0, 0].tolist() == [[4, 5], [7, 8]]
    assert F.avg_pool2d(X, 2, 1).numpy()[0, 0].tolist() == [[2, 3], [5, 6]]


# seed 001's pooling: non-overlapping 2x2 windows over one feature map
GRID = torch.tensor([[1, 1, 2, 4],
                     [5, 6, 7, 8],
                     [3, 2, 1, 0],
                     [1, 2, 3, 4]], dtype=torch.float32).view(1, 1, 4, 4)


def test_seed001_max_pooling():
    # windows {1,1,5,6} {2,4,7,8} {3,2,1,2} {1,0,3,4}
    assert nn.MaxPool2d(2)(GRID).numpy()[0, 0].tolist() == [[6, 8], [3, 4]]


def test_seed001_average_pooling():
    # 13/4 = 3.25, 21/4 = 5.25, 8/4 = 2, 8/4 = 2
    assert nn.AvgPool2d(2)(GRID).numpy()[0, 0].tolist() == [[3.25, 5.25], [2, 2]]


def test_seed001_sum_pooling():
    # 1+1+5+6 = 13, 2+4+7+8 = 21, 3+2+1+2 = 8, 1+0+3+4 = 8
    assert nn.SumPool2d(2)(GRID).numpy()[0, 0].tolist() == [[13, 21], [8, 8]]


def test_max_pooling_with_padding_by_hand():
    # MaxPool2d(2, 2, 1) on 4x4: rows (and columns) group as {0}, {1, 2}, {3}
    # -> max(1)=1, max(1,2)=2, max(4)=4 / max(5,3)=5, max(6,7,2,1)=7, max(8,0)=8 / 1, max(2,3)=3, 4
    assert nn.MaxPool2d(2, 2, 1)(GRID).numpy()[0, 0].tolist() == [[1, 2, 4], [5, 7, 8], [1, 3, 4]]


def test_average_pooling_with_padding_by_hand():
    # the same windows; counting the padding zeros every window has 4 cells:
    # 1/4, (1+2)/4, 4/4 / (5+3)/4, (6+7+2+1)/4, (8+0)/4 / 1/4, (2+3)/4, 4/4
    with_pad = [[0.25, 0.75, 1.0], [2.0, 4.0, 2.0], [0.25, 1.25, 1.0]]
    assert nn.AvgPool2d(2, 2, 1)(GRID).numpy()[0, 0].tolist() == with_pad
    # without them: 1/1, 3/2, 4/1 / 8/2, 16/4, 8/2 / 1/1, 5/2, 4/1
    without = [[1.0, 1.5, 4.0], [4.0, 4.0, 4.0], [1.0, 2.5, 4.0]]
    assert nn.AvgPool2d(2, 2, 1, count_include_pad=False)(GRID).numpy()[0, 0].tolist() == without


def test_seed004_maxpool_2_2_1_turns_12x12_into_7x7():
    # floor((12 + 2*1 - 1*(2-1) - 1) / 2) + 1 = floor(12/2) + 1 = 7
    assert tuple(nn.MaxPool2d(2, 2, 1)(torch.zeros(64, 32, 12, 12)).shape) == (64, 32, 7, 7)


@pytest.mark.parametrize("n, k, p, s, expected", [
    (8, 3, 1, 1, 8),   # d2l: padding 1 with a 3x3 kernel keeps 8x8
    (8, 3, 1, 2, 4),   # d2l: ... and stride 2 halves it
    (8, 5, 2, 1, 8),   # d2l: kernel (5, 3) with padding (2, 1): rows
    (8, 3, 1, 1, 8),   #      ... and columns
    (8, 3, 0, 3, 2),   # d2l: kernel (3, 5), padding (0, 1), stride (3, 4): rows floor(5/3)+1 = 2
    (8, 5, 1, 4, 2),   #      ... columns floor(5/4)+1 = 2
])
def test_seed004_output_shape_formula(n, k, p, s, expected):
    # seed 004: floor((n - k + p_total + s) / s) with p_total = 2p rows of padding
    assert (n - k + 2 * p + s) // s == expected
    y = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=s, padding=p)
    assert tuple(y.shape[2:]) == (expected, expected)


def test_output_size_formula_over_a_grid():
    """floor((n + 2p - d(k-1) - 1)/s) + 1, against the layers' real output shapes."""
    checked = 0
    for n, k, s, p, d in itertools.product(range(1, 9), range(1, 5), range(1, 4), range(0, 3), range(1, 4)):
        if n + 2 * p < d * (k - 1) + 1:
            continue  # the window does not fit; test_errors covers that case
        expected = (n + 2 * p - d * (k - 1) - 1) // s + 1
        assert F.conv_output_size(n, k, s, p, d) == expected, (n, k, s, p, d)
        # a non-square input with its own numbers along W: n+1 wide, stride s, other settings the same
        ew = (n + 1 + 2 * p - d * (k - 1) - 1) // s + 1
        y = F.conv2d(torch.zeros(1, 1, n, n + 1), torch.zeros(2, 1, k, k), stride=s, padding=p, dilation=d)
        assert tuple(y.shape) == (1, 2, expected, ew), (n, k, s, p, d)
        if 2 * p <= d * (k - 1) + 1:  # pooling allows padding up to half the window
            assert tuple(F.max_pool2d(torch.zeros(1, 1, n, n + 1), k, s, p, d).shape) == (1, 1, expected, ew)
        checked += 1
    assert checked > 500
