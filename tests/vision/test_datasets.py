"""cnnlab.vision.datasets: torchvision's items and attributes over cnnlab's checked loaders."""
from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
from datafiles import MNIST_DIR, cifar_records, idx_bytes, mnist_mirror, needs_shared, write_mnist_folder
from PIL import Image

import cnnlab
from cnnlab.data import DataError, DownloadError
from cnnlab.utils.data import DataLoader
from cnnlab.vision import datasets, transforms

try:
    import torch
    import torchvision
except ImportError:
    torch = torchvision = None
needs_torchvision = pytest.mark.skipif(torchvision is None, reason="torchvision is not installed")


def test_mnist_items_are_pil_images_and_ints(tmp_path, data_root):
    images, labels = write_mnist_folder(tmp_path / "mnist", n=12)
    ds = datasets.MNIST(tmp_path, train=True)
    img, target = ds[3]
    assert isinstance(img, Image.Image) and img.mode == "L" and img.size == (28, 28)
    assert np.array_equal(np.asarray(img), images[3]) and target == labels[3] and type(target) is int
    assert ds.data.dtype == cnnlab.uint8 and tuple(ds.data.shape) == (12, 28, 28)
    assert ds.targets.dtype == cnnlab.int64 and ds.targets.tolist() == labels.tolist()
    assert ds.classes[3] == "3 - three" and ds.class_to_idx["9 - nine"] == 9 and len(ds) == 12
    tensor_ds = datasets.MNIST(tmp_path, transform=transforms.ToTensor(), target_transform=lambda y: y + 100)
    x, y = tensor_ds[3]
    assert isinstance(x, cnnlab.Tensor) and x.dtype == cnnlab.float32 and tuple(x.shape) == (1, 28, 28)
    np.testing.assert_array_equal(x.numpy()[0], images[3] / np.float32(255))
    assert y == labels[3] + 100 and x.unsqueeze(0).shape == (1, 1, 28, 28)
    assert "Number of datapoints: 12" in repr(tensor_ds)


def test_torchvision_folder_layout_and_the_cache_are_found(tmp_path, data_root):
    images, _ = write_mnist_folder(tmp_path / "tv" / "FashionMNIST" / "raw", n=5, split="t10k")
    ds = datasets.FashionMNIST(tmp_path / "tv", train=False)
    assert len(ds) == 5 and ds.classes[0] == "T-shirt/top"
    assert np.array_equal(ds.data.numpy(), images)
    cached, _ = write_mnist_folder(data_root / "mnist", n=4)  # where `cnnlab datasets download` puts it
    assert np.array_equal(datasets.MNIST(tmp_path / "elsewhere").data.numpy(), cached)


def test_missing_files_say_how_to_get_them(tmp_path, data_root):
    with pytest.raises(DataError, match="download=True") as err:
        datasets.MNIST(tmp_path)
    assert "Offline? Put these files by hand" in str(err.value)


def test_download_checks_the_files_and_fails_clearly_offline(tmp_path, data_root, monkeypatch):
    mnist_mirror(tmp_path, monkeypatch)
    ds = datasets.MNIST(tmp_path / "root", train=False, download=True)
    assert len(ds) == 4 and (tmp_path / "root" / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()
    monkeypatch.setattr(cnnlab.data.MNIST, "mirrors", [(tmp_path / "no-such-mirror").as_uri()])
    with pytest.raises(DownloadError, match="Offline"):
        datasets.MNIST(tmp_path / "other", train=True, download=True)


def write_cifar(folder, n=7):
    data, images, labels = cifar_records(n)
    out = folder / "cifar10" / "cifar-10-batches-bin"
    out.mkdir(parents=True)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (out / name).write_bytes(data)
    return images, labels


def test_cifar10_items_data_and_targets_as_torchvision(tmp_path, data_root):
    images, labels = write_cifar(tmp_path)
    ds = datasets.CIFAR10(tmp_path, train=False)
    assert isinstance(ds.data, np.ndarray) and ds.data.shape == (7, 32, 32, 3) and ds.data.dtype == np.uint8
    assert ds.targets == labels.tolist() and ds.classes[0] == "airplane"
    img, target = ds[2]
    assert img.mode == "RGB" and np.array_equal(np.asarray(img), images[2].transpose(1, 2, 0))
    x = transforms.ToTensor()(img)
    np.testing.assert_array_equal(x.numpy(), images[2] / np.float32(255))
    assert len(datasets.CIFAR10(tmp_path, train=True)) == 35


def test_whole_batch_path_equals_sample_by_sample(tmp_path, data_root):
    write_cifar(tmp_path, n=9)
    pipeline = transforms.Compose([transforms.Pad(1, fill=3), transforms.CenterCrop(30), transforms.ToTensor(),
                                   transforms.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))])
    ds = datasets.CIFAR10(tmp_path, train=False, transform=pipeline)
    assert hasattr(ds, "get_batch")  # the DataLoader transforms whole batches

    class SampleBySample(datasets.CIFAR10):
        def __getitem__(self, i):
            return super().__getitem__(i)

    slow = SampleBySample(tmp_path, train=False, transform=pipeline)
    assert not hasattr(slow, "get_batch")
    for (xa, ya), (xb, yb) in zip(DataLoader(ds, batch_size=4), DataLoader(slow, batch_size=4)):
        assert xa.dtype == xb.dtype == cnnlab.float32 and ya.dtype == yb.dtype == cnnlab.int64
        np.testing.assert_allclose(xa.numpy(), xb.numpy(), rtol=1e-6, atol=1e-6)
        assert ya.tolist() == yb.tolist()
    augmented = datasets.CIFAR10(tmp_path, train=False, transform=transforms.Compose(
        [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor()]))
    first = [x.numpy() for x, _ in DataLoader(augmented, 9, seed=3)]
    assert np.array_equal(first[0], next(iter(DataLoader(augmented, 9, seed=3)))[0].numpy())
    assert not hasattr(datasets.CIFAR10(tmp_path, train=False), "get_batch")  # PIL items: no batching
    with pytest.raises(TypeError, match="PIL"):
        next(iter(DataLoader(datasets.CIFAR10(tmp_path, train=False), batch_size=2)))


def test_image_folder_reads_lazily_at_full_size(tmp_path):
    for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        Image.new("RGB", (5, 3), colour).save(tmp_path / cls / "a.png")
        Image.new("L", (4, 4), 9).save(tmp_path / cls / "b.png")
    ds = datasets.ImageFolder(tmp_path)
    assert ds.classes == ["cat", "dog"] and ds.class_to_idx == {"cat": 0, "dog": 1} and ds.targets == [0, 0, 1, 1]
    img, label = ds[2]
    assert img.mode == "RGB" and img.size == (5, 3) and img.getpixel((0, 0)) == (0, 0, 255) and label == 1
    assert ds[1][0].mode == "RGB" and ds[1][0].getpixel((0, 0)) == (9, 9, 9)
    sized = datasets.ImageFolder(tmp_path, transform=transforms.Compose([transforms.Resize((8, 8)), transforms.ToTensor()]))
    x, y = next(iter(DataLoader(sized, batch_size=4)))
    assert tuple(x.shape) == (4, 3, 8, 8) and y.tolist() == [0, 0, 1, 1]
    only_png_a = datasets.ImageFolder(tmp_path, is_valid_file=lambda p: p.endswith("a.png"))
    assert len(only_png_a) == 2 and only_png_a.samples[1][0].endswith("a.png")


@needs_torchvision
def test_mnist_matches_torchvision_on_the_same_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 9), ("t10k", 4)):
        (raw / f"{split}-images-idx3-ubyte").write_bytes(idx_bytes(rng.integers(0, 256, (n, 28, 28))))
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(idx_bytes(rng.integers(0, 10, n)))
    t = [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    tv_t = torchvision.transforms.Compose([torchvision.transforms.ToTensor(),
                                           torchvision.transforms.Normalize((0.1307,), (0.3081,))])
    ours = datasets.MNIST(str(tmp_path), train=True, transform=transforms.Compose(t))
    theirs = torchvision.datasets.MNIST(str(tmp_path), train=True, transform=tv_t)
    assert ours.classes == theirs.classes and len(ours) == len(theirs)
    np.testing.assert_array_equal(ours.data.numpy(), theirs.data.numpy())
    np.testing.assert_array_equal(ours.targets.numpy(), theirs.targets.numpy())
    for i in (0, 8):
        (xa, ya), (xb, yb) = ours[i], theirs[i]
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        assert ya == yb
    (xa, ya), (xb, yb) = next(iter(DataLoader(ours, 9))), next(iter(torch.utils.data.DataLoader(theirs, 9)))
    np.testing.assert_array_equal(xa.numpy(), xb.numpy())  # the whole-batch path too
    np.testing.assert_array_equal(ya.numpy(), yb.numpy())


@needs_shared(MNIST_DIR)
def test_real_mnist_through_the_torchvision_face(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (folder / name).symlink_to((MNIST_DIR / name).resolve())
    ds = datasets.MNIST(tmp_path, train=True, transform=transforms.ToTensor())
    assert len(ds) == 60000 and ds.targets[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    raw = gzip.decompress((MNIST_DIR / "train-images-idx3-ubyte.gz").read_bytes())
    assert hashlib.md5(raw).hexdigest() == "6bbc9ace898e44ae57da46a324031adb"
    x, _ = ds[0]
    np.testing.assert_array_equal(x.numpy()[0] * 255, np.frombuffer(raw, np.uint8, 784, 16).reshape(28, 28))


def test_old_mnist_attribute_names_warn_and_alias_data_and_targets(tmp_path, data_root):
    images, labels = write_mnist_folder(tmp_path / "mnist", n=6, split="t10k")
    ds = datasets.MNIST(tmp_path, train=False)
    for old, new in (("train_data", "data"), ("test_data", "data"),
                     ("train_labels", "targets"), ("test_labels", "targets")):
        with pytest.warns(UserWarning, match=f"^{old} has been renamed {new}$") as caught:
            value = getattr(ds, old)
        assert value is getattr(ds, new) and caught[0].filename == __file__   # points at the caller
    with pytest.warns(UserWarning):
        np.testing.assert_array_equal(ds.test_data.numpy(), images)
        assert ds.test_labels.tolist() == labels.tolist() and tuple(ds.train_data[0].shape) == (28, 28)
    # MorvanZhou's 401_CNN.py idiom: the test images as one float batch in [0, 1]
    with pytest.warns(UserWarning):
        test_x = cnnlab.unsqueeze(ds.test_data, dim=1).type(cnnlab.float32)[:4] / 255.0
    np.testing.assert_allclose(test_x.numpy()[:, 0], images[:4] / 255.0, rtol=1e-6)


@needs_torchvision
def test_old_mnist_attribute_names_as_torchvision_has_them(tmp_path):
    import warnings

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for split, n in (("train", 5), ("t10k", 3)):   # torchvision wants both splits in place
        (raw / f"{split}-images-idx3-ubyte").write_bytes(idx_bytes(rng.integers(0, 256, (n, 28, 28))))
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(idx_bytes(rng.integers(0, 10, n)))
    ours, theirs = datasets.MNIST(str(tmp_path), train=True), torchvision.datasets.MNIST(str(tmp_path), train=True)
    for old in ("train_data", "test_data", "train_labels", "test_labels"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mine, ref = getattr(ours, old).numpy(), getattr(theirs, old).numpy()
        np.testing.assert_array_equal(mine, ref)
        assert mine.dtype == ref.dtype and mine.shape == ref.shape
        assert [(str(w.message), w.category) for w in caught] == [(str(caught[1].message), caught[1].category)] * 2
