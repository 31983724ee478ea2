"""MNIST and Fashion-MNIST loaders on small IDX files written here in the official format."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
from datafiles import idx_bytes, small_mnist, write_idx_gz, write_mnist_folder

from cnnlab.data import MNIST, DataError, DataLoader, FashionMNIST
from cnnlab.data.idx import read_idx, write_idx


def test_mnist_reads_official_idx_gz(data_root):
    images, labels = write_mnist_folder(data_root / "mnist", n=30)
    ds = MNIST(train=True)  # root from $CNNLAB_DATA
    assert len(ds) == 30 and ds.classes == [str(d) for d in range(10)]
    np.testing.assert_array_equal(ds.images[:, 0], images)
    np.testing.assert_array_equal(ds.targets, labels)
    image, label = ds[7]
    assert image.shape == (1, 28, 28) and image.dtype == np.float32
    np.testing.assert_allclose(image[0], images[7] / 255, rtol=1e-6)
    assert label == labels[7]
    x, y = next(iter(DataLoader(ds, batch_size=30)))
    np.testing.assert_allclose(x.numpy()[:, 0], images / 255, rtol=1e-6)


def test_test_split_and_explicit_root_and_fashion(tmp_path):
    images, labels = write_mnist_folder(tmp_path / "mnist", n=12, split="t10k", seed=3)
    ds = MNIST(root=tmp_path, train=False)
    np.testing.assert_array_equal(ds.targets, labels)
    fimages, flabels = write_mnist_folder(tmp_path / "fashion-mnist", n=9, seed=4)
    fashion = FashionMNIST(root=tmp_path)
    np.testing.assert_array_equal(fashion.images[:, 0], fimages)
    assert fashion.classes[9] == "Ankle boot" and len(fashion.classes) == 10


def test_unpacked_idx_files_are_read_too(tmp_path):
    images, labels = small_mnist(5)
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes(idx_bytes(images))
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    np.testing.assert_array_equal(MNIST(root=tmp_path).images[:, 0], images)


def test_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(DataError) as err:
        MNIST(root=tmp_path, train=False)
    message = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in message and "download=True" in message
    assert str(tmp_path / "mnist") in message and "f68b3c2dcbeaaa9fbdd348bbdeb94873" in message


def test_wrong_magic_number_names_file_and_numbers(tmp_path):
    images, labels = small_mnist(4)
    write_idx_gz(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", images)
    # the labels file written with the images' magic number
    write_idx_gz(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", labels, magic=2051)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: expected IDX magic number 2049, got 2051"):
        MNIST(root=tmp_path)


def test_truncated_gzip_is_reported(tmp_path):
    write_mnist_folder(tmp_path / "mnist", n=20)
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: the gzip stream ends early"):
        MNIST(root=tmp_path)


def test_header_that_promises_more_than_the_file_holds(tmp_path):
    images, labels = small_mnist(6)
    folder = tmp_path / "mnist"
    write_idx_gz(folder / "train-labels-idx1-ubyte.gz", labels)
    raw = idx_bytes(images)[:-100]  # a whole gzip of a cut-short IDX file
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    with pytest.raises(DataError, match=r"shape \(6, 28, 28\).*truncated"):
        MNIST(root=tmp_path)


def test_image_and_label_counts_must_match(tmp_path):
    images, labels = small_mnist(6)
    write_idx_gz(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", images)
    write_idx_gz(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", labels[:5])
    with pytest.raises(DataError, match="6 images but .* 5 labels"):
        MNIST(root=tmp_path)


def test_labels_out_of_range(tmp_path):
    images, labels = small_mnist(3)
    labels[1] = 12
    write_idx_gz(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", images)
    write_idx_gz(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", labels)
    with pytest.raises(DataError, match="labels must be 0..9, found 12"):
        MNIST(root=tmp_path)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
def test_idx_round_trip_all_types(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == "uint8":
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "a.idx.gz"):
        write_idx(tmp_path / name, array)
        back = read_idx(tmp_path / name)
        assert back.dtype == array.dtype and back.flags.writeable
        np.testing.assert_array_equal(back, array)


def test_write_idx_matches_the_official_layout(tmp_path):
    array = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    write_idx(tmp_path / "x", array, compress=False)
    assert (tmp_path / "x").read_bytes() == idx_bytes(array)
    write_idx(tmp_path / "y.gz", array)
    write_idx(tmp_path / "z.gz", array)
    assert (tmp_path / "y.gz").read_bytes() == (tmp_path / "z.gz").read_bytes()  # no time stamp
