"""CIFAR-10 binary version on small record files written here in the official format."""
from __future__ import annotations

import hashlib
import io
import tarfile

import numpy as np
import pytest
from datafiles import cifar_records

from cnnlab.data import CIFAR10, ChecksumError, DataError
from cnnlab.data.download import RemoteFile


def write_batches(folder, n_per_file=3):
    """Five training files and a test file; returns all images and labels per split."""
    folder.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = [], []
    for i in range(1, 6):
        data, images, labels = cifar_records(n_per_file, seed=i)
        (folder / f"data_batch_{i}.bin").write_bytes(data)
        train_images.append(images)
        train_labels.append(labels)
    data, test_images, test_labels = cifar_records(4, seed=99)
    (folder / "test_batch.bin").write_bytes(data)
    return (np.concatenate(train_images), np.concatenate(train_labels)), (test_images, test_labels)


def test_reads_records_in_label_red_green_blue_order(data_root):
    (train_x, train_y), (test_x, test_y) = write_batches(data_root / "cifar10" / "cifar-10-batches-bin")
    train = CIFAR10()
    assert len(train) == 15 and train.classes[0] == "airplane" and train.classes[9] == "truck"
    np.testing.assert_array_equal(train.images, train_x)
    np.testing.assert_array_equal(train.targets, train_y)
    image, label = train[4]
    assert image.shape == (3, 32, 32) and image.dtype == np.float32 and label == train_y[4]
    # channel 0 is the first 1024 pixel bytes of the record: the red plane
    np.testing.assert_allclose(image[0].ravel(), train_x[4, 0].ravel() / 255, rtol=1e-6)
    test = CIFAR10(train=False)
    np.testing.assert_array_equal(test.images, test_x)
    np.testing.assert_array_equal(test.targets, test_y)


def test_bin_files_straight_in_the_dataset_folder(tmp_path):
    write_batches(tmp_path / "cifar10")
    assert len(CIFAR10(root=tmp_path)) == 15


def test_a_record_cut_short_is_reported(tmp_path):
    write_batches(tmp_path / "cifar10")
    path = tmp_path / "cifar10" / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"data_batch_3.bin: expected whole CIFAR-10 records of 3073 bytes.*truncated"):
        CIFAR10(root=tmp_path)


def test_bad_label_byte_is_reported(tmp_path):
    write_batches(tmp_path / "cifar10")
    data, _, _ = cifar_records(2)
    data = bytes([200]) + data[1:]
    (tmp_path / "cifar10" / "test_batch.bin").write_bytes(data)
    with pytest.raises(DataError, match="test_batch.bin: record 0 has label 200"):
        CIFAR10(root=tmp_path, train=False)


def test_missing_files_say_where_to_put_the_archive(tmp_path):
    with pytest.raises(DataError) as err:
        CIFAR10(root=tmp_path)
    message = str(err.value)
    assert "cifar-10-binary.tar.gz" in message and str(tmp_path / "cifar10") in message
    assert "c32a1d4ab5d03f1284b67883e8d87530" in message


def official_like_archive(path, extra_member=None):
    """A tar.gz laid out like cifar-10-binary.tar.gz, holding small batches."""
    files = {}
    for i in range(1, 6):
        files[f"data_batch_{i}.bin"] = cifar_records(2, seed=i)[0]
    files["test_batch.bin"] = cifar_records(3, seed=9)[0]
    files["batches.meta.txt"] = b"airplane\nautomobile\n"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra_member:
            info = tarfile.TarInfo(extra_member)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_fetches_verifies_and_unpacks(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    md5 = official_like_archive(mirror / "cifar-10-binary.tar.gz", extra_member="../../escape.txt")
    monkeypatch.setattr(CIFAR10, "archive", RemoteFile("cifar-10-binary.tar.gz", md5))
    monkeypatch.setattr(CIFAR10, "mirrors", [mirror.as_uri()])
    root = tmp_path / "data"
    train = CIFAR10(root=root, download=True)
    assert len(train) == 10 and len(CIFAR10(root=root, train=False)) == 3
    assert sorted(p.name for p in (root / "cifar10" / "cifar-10-batches-bin").iterdir()) == sorted(
        [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    )
    assert not (tmp_path / "escape.txt").exists() and not (root / "escape.txt").exists()


def test_archive_with_wrong_checksum_is_refused_and_not_kept(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    official_like_archive(mirror / "cifar-10-binary.tar.gz")
    monkeypatch.setattr(CIFAR10, "mirrors", [mirror.as_uri()])  # the real md5 cannot match
    root = tmp_path / "data"
    with pytest.raises(ChecksumError, match="c32a1d4ab5d03f1284b67883e8d87530"):
        CIFAR10(root=root, download=True)
    assert list((root / "cifar10").iterdir()) == []


def test_archive_put_by_hand_is_unpacked_on_first_use(tmp_path, monkeypatch):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    md5 = official_like_archive(folder / "cifar-10-binary.tar.gz")
    monkeypatch.setattr(CIFAR10, "archive", RemoteFile("cifar-10-binary.tar.gz", md5))
    assert CIFAR10.is_ready(tmp_path) and not CIFAR10.is_ready(tmp_path, unpacked=True)
    assert len(CIFAR10(root=tmp_path, train=False)) == 3
    assert CIFAR10.is_ready(tmp_path, unpacked=True)
