"""cnnlab.vision.transforms: hand-worked values, and torchvision's outputs where installed."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import cnnlab
from cnnlab.vision import transforms as T
from cnnlab.vision.transforms import functional as F

try:
    import torch
    import torchvision.transforms as TT
except ImportError:  # CI has neither: the hand-worked tests still run
    torch = TT = None
needs_torchvision = pytest.mark.skipif(TT is None, reason="torchvision is not installed")

RNG = np.random.default_rng(0)
RGB = Image.fromarray(RNG.integers(0, 256, (13, 17, 3), dtype=np.uint8))
GREY = Image.fromarray(RNG.integers(0, 256, (13, 17), dtype=np.uint8))


def tensor(values, dtype=np.float32):
    return cnnlab.from_numpy(np.asarray(values, dtype=dtype))


def test_to_tensor_by_hand():
    pil = Image.fromarray(np.array([[0, 51], [255, 102]], np.uint8))
    t = T.ToTensor()(pil)
    assert isinstance(t, cnnlab.Tensor) and t.dtype == cnnlab.float32 and tuple(t.shape) == (1, 2, 2)
    np.testing.assert_array_equal(t.numpy()[0], np.array([[0, 51], [255, 102]], np.float32) / np.float32(255))
    rgb = T.ToTensor()(Image.fromarray(np.array([[[10, 20, 30]]], np.uint8)))
    assert tuple(rgb.shape) == (3, 1, 1) and rgb.numpy().ravel().tolist() == pytest.approx([10 / 255, 20 / 255, 30 / 255])
    hw = T.ToTensor()(np.full((2, 3), 255, np.uint8))
    assert tuple(hw.shape) == (1, 2, 3) and hw.numpy().max() == 1.0
    floats = T.ToTensor()(np.full((2, 3, 2), 7.0, np.float32))
    assert tuple(floats.shape) == (2, 2, 3) and floats.numpy().max() == 7.0  # not scaled
    assert T.ToTensor()(GREY).unsqueeze(0).shape == (1, 1, 13, 17)


def test_to_pil_image_and_back():
    t = tensor([[[0.0, 0.5], [1.0, 0.999]]])
    pil = T.ToPILImage()(t)
    assert pil.mode == "L" and np.asarray(pil).tolist() == [[0, 127], [255, 254]]  # 255 * x truncated
    rgb = T.ToPILImage()(T.ToTensor()(RGB))
    assert rgb.mode == "RGB" and np.array_equal(np.asarray(rgb), np.asarray(RGB))
    assert np.array_equal(T.PILToTensor()(RGB).numpy(), np.asarray(RGB).transpose(2, 0, 1))


def test_normalize_by_hand():
    x = tensor([[[1.0, 0.5]], [[0.0, 0.25]]])
    out = T.Normalize((0.5, 0.25), (0.5, 0.25))(x).numpy()
    np.testing.assert_array_equal(out, [[[1.0, 0.0]], [[-1.0, 0.0]]])
    with pytest.raises(TypeError, match="float"):
        T.Normalize((0.5,), (0.5,))(cnnlab.from_numpy(np.zeros((1, 2, 2), np.uint8)))


def test_pad_modes_by_hand():
    x = tensor([[[1, 2], [3, 4]]])
    assert T.Pad(1, fill=9)(x).numpy()[0].tolist() == [[9, 9, 9, 9], [9, 1, 2, 9], [9, 3, 4, 9], [9, 9, 9, 9]]
    assert T.Pad((1, 0))(x).numpy()[0].tolist() == [[0, 1, 2, 0], [0, 3, 4, 0]]
    assert T.Pad((1, 0, 0, 1), padding_mode="edge")(x).numpy()[0].tolist() == [[1, 1, 2], [3, 3, 4], [3, 3, 4]]
    assert T.Pad((1, 0, 0, 0), padding_mode="reflect")(x).numpy()[0].tolist() == [[2, 1, 2], [4, 3, 4]]
    assert T.Pad((1, 0, 0, 0), padding_mode="symmetric")(x).numpy()[0].tolist() == [[1, 1, 2], [3, 3, 4]]
    pil = T.Pad(2, fill=(255, 0, 0))(RGB)
    assert pil.size == (21, 17) and pil.getpixel((0, 0)) == (255, 0, 0) and pil.getpixel((2, 2)) == RGB.getpixel((0, 0))


def test_crops_flips_and_grey_by_hand():
    x = tensor(np.arange(25).reshape(1, 5, 5))
    assert T.CenterCrop(3)(x).numpy()[0].tolist() == [[6, 7, 8], [11, 12, 13], [16, 17, 18]]
    assert T.CenterCrop((1, 4))(x).numpy()[0].tolist() == [[10, 11, 12, 13]]  # round((5-4)/2) = 0
    assert T.CenterCrop(7)(x).numpy()[0, 0].tolist() == [0] * 7  # zero-padded first
    assert T.RandomHorizontalFlip(1.0)(x).numpy()[0, 0].tolist() == [4, 3, 2, 1, 0]
    assert T.RandomHorizontalFlip(0.0)(x) is x
    assert T.RandomVerticalFlip(1.0)(x).numpy()[0, :, 0].tolist() == [20, 15, 10, 5, 0]
    grey = T.Grayscale()(tensor([[[1.0]], [[0.5]], [[0.0]]])).numpy()
    assert grey.shape == (1, 1, 1) and grey[0, 0, 0] == pytest.approx(0.2989 + 0.587 * 0.5)
    pil_grey = T.Grayscale(num_output_channels=3)(Image.new("RGB", (1, 1), (100, 200, 50)))
    assert pil_grey.mode == "RGB" and pil_grey.getpixel((0, 0)) == (153,) * 3  # (299*100+587*200+114*50)/1000
    assert T.Lambda(lambda im: im.size)(RGB) == (17, 13)


def test_resize_sizes_and_pil_bilinear():
    assert F.resized_output_size(13, 17, 8) == (8, 10)  # shorter edge 8, 17*8/13 truncated
    assert F.resized_output_size(30, 20, [10]) == (15, 10)
    assert F.resized_output_size(30, 20, (7, 9)) == (7, 9)
    out = T.Resize(8)(RGB)
    assert out.size == (10, 8)
    assert np.array_equal(np.asarray(out), np.asarray(RGB.resize((10, 8), Image.Resampling.BILINEAR)))
    up = T.Resize((4, 6), interpolation=T.InterpolationMode.NEAREST)(tensor(np.arange(6).reshape(1, 2, 3)))
    assert up.numpy()[0].tolist() == [[0, 0, 1, 1, 2, 2]] * 2 + [[3, 3, 4, 4, 5, 5]] * 2
    smooth = T.Resize((4, 4))(tensor(np.full((2, 2, 2), 0.75)))
    np.testing.assert_allclose(smooth.numpy(), 0.75, rtol=1e-6)


def test_random_transforms_follow_manual_seed_and_stay_in_bounds():
    pipeline = T.Compose([T.RandomCrop(13, padding=4), T.RandomHorizontalFlip(), T.RandomRotation(20), T.ToTensor()])
    cnnlab.manual_seed(1)
    a = [pipeline(RGB).numpy() for _ in range(4)]
    cnnlab.manual_seed(1)
    b = [pipeline(RGB).numpy() for _ in range(4)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b)) and not np.array_equal(a[0], a[1])
    x = tensor(np.arange(16).reshape(1, 4, 4))
    for _ in range(20):
        out = T.RandomCrop(2)(x).numpy()[0]
        r, c = divmod(int(out[0, 0]), 4)
        assert out.tolist() == [[4 * r + c, 4 * r + c + 1], [4 * r + c + 4, 4 * r + c + 5]]
    padded = T.RandomCrop(4, padding=2)(x).numpy()
    assert padded.shape == (1, 4, 4) and set(np.unique(padded)) <= set(range(16))
    with pytest.raises(ValueError, match="larger than input"):
        T.RandomCrop(5)(x)
    rotated = T.RandomRotation((90, 90))(tensor(np.arange(9).reshape(1, 3, 3)))
    assert rotated.numpy()[0].tolist() == [[2, 5, 8], [1, 4, 7], [0, 3, 6]]  # counter-clockwise
    resized = T.RandomResizedCrop(6)(RGB)
    assert resized.size == (6, 6)


CASES = [
    ("Pad4", lambda m: m.Pad((1, 2, 3, 4), fill=7)),
    ("PadReflect", lambda m: m.Pad((2, 3), padding_mode="reflect")),
    ("PadEdge", lambda m: m.Pad(2, padding_mode="edge")),
    ("PadSymmetric", lambda m: m.Pad(3, padding_mode="symmetric")),
    ("PadNegative", lambda m: m.Pad((-1, 2, -2, 1))),
    ("ResizeShort", lambda m: m.Resize(8)),
    ("ResizeUp", lambda m: m.Resize((30, 21))),
    ("ResizeNearest", lambda m: m.Resize((7, 9), m.InterpolationMode.NEAREST)),
    ("CenterCrop", lambda m: m.CenterCrop(8)),
    ("CenterCropBig", lambda m: m.CenterCrop((16, 20))),
    ("Grey3", lambda m: m.Grayscale(3)),
    ("HFlip", lambda m: m.RandomHorizontalFlip(1.0)),
    ("Rotate90", lambda m: m.RandomRotation((90, 90))),
]


@needs_torchvision
@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("image", [RGB, GREY], ids=["rgb", "grey"])
def test_matches_torchvision_on_pil_and_tensor(name, make, image):
    ours, theirs = make(T)(image), make(TT)(image)
    assert ours.mode == theirs.mode and np.array_equal(np.asarray(ours), np.asarray(theirs))
    if name == "Grey3" and image.mode == "L":
        return  # torchvision's tensor path rejects 1 -> 3 here
    pixels = TT.ToTensor()(image).numpy()
    ours_t, theirs_t = make(T)(cnnlab.from_numpy(pixels.copy())), make(TT)(torch.from_numpy(pixels.copy()))
    tol = 2e-6 if name.startswith("Resize") else 0  # Pillow's float resampler vs PyTorch's antialias kernel
    np.testing.assert_allclose(ours_t.numpy(), theirs_t.numpy(), rtol=0, atol=tol)


@needs_torchvision
@pytest.mark.parametrize("image", [RGB, GREY], ids=["rgb", "grey"])
def test_conversions_match_torchvision(image):
    ours, theirs = T.ToTensor()(image), TT.ToTensor()(image)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    c = len(image.getbands())
    norm = (tuple(np.linspace(0.2, 0.5, c)), tuple(np.linspace(0.3, 0.9, c)))
    np.testing.assert_array_equal(T.Normalize(*norm)(ours).numpy(), TT.Normalize(*norm)(theirs).numpy())
    back, back_tv = T.ToPILImage()(ours), TT.ToPILImage()(theirs)
    assert back.mode == back_tv.mode and np.array_equal(np.asarray(back), np.asarray(back_tv))
    odd = np.linspace(0, 1, 3 * 5 * 4, dtype=np.float32).reshape(3, 5, 4)
    a, b = T.ToPILImage()(cnnlab.from_numpy(odd)), TT.ToPILImage()(torch.from_numpy(odd))
    assert np.array_equal(np.asarray(a), np.asarray(b))
