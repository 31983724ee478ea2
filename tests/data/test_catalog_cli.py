"""Datasets by name, available(), and the `cnnlab datasets` command."""
from __future__ import annotations

import pytest
from datafiles import mnist_mirror, write_mnist_folder

from cnnlab.cli import main
from cnnlab.data import NAMES, MNIST, available, get_dataset
from cnnlab.data.catalog import canonical_name


def test_names_and_spellings():
    assert NAMES == ("mnist-sample", "shapes", "shapes-rgb", "mnist", "fashion-mnist", "cifar10")
    for spelling, name in [("MNIST", "mnist"), ("fashion_mnist", "fashion-mnist"),
                           ("FashionMNIST", "fashion-mnist"), ("CIFAR-10", "cifar10"),
                           ("mnist_sample", "mnist-sample"), ("shapes-RGB", "shapes-rgb")]:
        assert canonical_name(spelling) == name
    assert canonical_name("imagenet") is None


def test_unknown_name_is_a_value_error_listing_the_choices():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet': choose one of mnist-sample"):
        get_dataset("imagenet")


def test_downloadable_by_name_from_a_root(tmp_path):
    write_mnist_folder(tmp_path / "mnist", n=8)
    ds = get_dataset("mnist", root=tmp_path)
    assert isinstance(ds, MNIST) and len(ds) == 8


def test_available_reports_ready_and_missing(data_root):
    before = {i.name: i for i in available()}
    assert list(before) == list(NAMES)
    assert before["mnist-sample"].ready and before["shapes"].ready and before["shapes-rgb"].ready
    assert not before["mnist"].ready and before["mnist"].detail == "needs download (12 MB)"
    assert before["mnist"].location == str(data_root / "mnist")
    assert not before["cifar10"].ready
    write_mnist_folder(data_root / "mnist", split="train")
    write_mnist_folder(data_root / "mnist", split="t10k")
    after = {i.name: i for i in available()}
    assert after["mnist"].ready and not after["fashion-mnist"].ready


def test_cli_list(data_root, capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in NAMES:
        assert name in out
    assert "needs download" in out and str(data_root) in out


def test_cli_info_draws_a_digit(capsys):
    assert main(["datasets", "info", "mnist-sample", "--val", "--show", "2"]) == 0
    out = capsys.readouterr().out
    assert "2,000 images of 1 x 28 x 28" in out and "image 1: label" in out
    assert "@@" in out and out.count("    200") == 10


def test_cli_errors(data_root, capsys):
    assert main(["datasets", "info"]) == 2
    assert "needs a dataset name" in capsys.readouterr().err
    assert main(["datasets", "info", "imagenet"]) == 2
    assert "unknown dataset" in capsys.readouterr().err
    assert main(["datasets", "info", "mnist"]) == 1  # not downloaded: a clear message, no traceback
    err = capsys.readouterr().err
    assert "download=True" in err and "train-images-idx3-ubyte.gz" in err
    assert main(["datasets", "download", "shapes"]) == 0
    assert "nothing to download" in capsys.readouterr().out


def test_cli_download_from_a_mirror(tmp_path, monkeypatch, capsys):
    mnist_mirror(tmp_path, monkeypatch)
    assert main(["datasets", "download", "mnist", "--root", str(tmp_path / "cache")]) == 0
    assert "mnist is ready" in capsys.readouterr().out
    assert MNIST.is_ready(tmp_path / "cache")
