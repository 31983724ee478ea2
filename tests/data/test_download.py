"""Download into the cache: checksums, atomic writes, offline messages."""
from __future__ import annotations

import gzip
import hashlib
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from datafiles import MNIST_DIR, mnist_mirror, needs_shared, write_mnist_folder

from cnnlab.data import MNIST, ChecksumError, DataError, DownloadError, cache_dir
from cnnlab.data.download import RemoteFile, ensure_files, fetch_file, verify


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_cache_dir_argument_then_environment_then_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    default = cache_dir()
    assert default.name == "datasets" and "cnnlab" in str(default)
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_fetch_from_a_file_url_renames_into_place(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "f.bin").write_bytes(b"hello")
    dest = tmp_path / "cache"
    path = fetch_file(RemoteFile("f.bin", md5(b"hello")), dest, [mirror.as_uri()])
    assert path == dest / "f.bin" and path.read_bytes() == b"hello"
    assert leftovers(dest) == ["f.bin"]


def test_checksum_mismatch_names_file_and_md5_and_keeps_nothing(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "f.bin").write_bytes(b"tampered")
    dest = tmp_path / "cache"
    expected = md5(b"hello")
    with pytest.raises(ChecksumError) as err:
        fetch_file(RemoteFile("f.bin", expected), dest, [mirror.as_uri()])
    message = str(err.value)
    assert "f.bin" in message and expected in message and md5(b"tampered") in message
    assert leftovers(dest) == []


def test_the_next_mirror_is_tried_after_a_bad_one(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir(), bad.mkdir()
    (good / "f.bin").write_bytes(b"hello")
    (bad / "f.bin").write_bytes(b"hel")  # a truncated copy
    dest = tmp_path / "cache"
    missing = (tmp_path / "nowhere").as_uri()
    fetch_file(RemoteFile("f.bin", md5(b"hello")), dest, [missing, bad.as_uri(), good.as_uri()])
    assert leftovers(dest) == ["f.bin"]


def test_interrupted_download_leaves_no_partial_file(tmp_path):
    def dies_half_way(url, out):
        out.write(b"half of it")
        raise ConnectionResetError("connection reset by peer")

    dest = tmp_path / "cache"
    with pytest.raises(DownloadError, match="connection reset"):
        fetch_file(RemoteFile("f.bin", md5(b"hello")), dest, ["https://example.invalid/"], fetch=dies_half_way)
    assert leftovers(dest) == []


def test_offline_error_says_where_to_put_the_files_by_hand(tmp_path):
    def offline(url, out):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    specs = [RemoteFile("a.gz", "0" * 32), RemoteFile("b.gz", "1" * 32)]
    folder = tmp_path / "cache" / "thing"
    with pytest.raises(DownloadError) as err:
        ensure_files("Thing", folder, specs, ["https://example.invalid/thing/"], fetch=offline)
    message = str(err.value)
    assert "name resolution" in message and f"by hand into {folder}" in message
    assert "a.gz  (md5 " + "0" * 32 in message and "b.gz" in message and "CNNLAB_DATA" in message
    assert leftovers(folder) == []


def test_recompressed_gzip_is_accepted_by_its_decompressed_md5(tmp_path):
    content = b"IDX content" * 1000
    official = gzip.compress(content, compresslevel=9, mtime=0)
    recompressed = gzip.compress(content, compresslevel=1, mtime=12345)
    assert official != recompressed
    spec = RemoteFile("x.gz", md5(official), raw_md5=md5(content))
    (tmp_path / "x.gz").write_bytes(recompressed)
    verify(tmp_path / "x.gz", spec)  # no error
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"other content", mtime=0))
    with pytest.raises(ChecksumError, match=md5(content)):
        verify(tmp_path / "x.gz", spec)


def test_truncated_gzip_fails_verification_with_a_clear_message(tmp_path):
    content = np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    data = gzip.compress(content)
    spec = RemoteFile("x.gz", md5(data), raw_md5=md5(content))
    (tmp_path / "x.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ChecksumError, match="x.gz.*not a complete gzip file"):
        verify(tmp_path / "x.gz", spec)


def test_mnist_download_end_to_end(tmp_path, monkeypatch, data_root):
    mnist_mirror(tmp_path, monkeypatch)
    assert not MNIST.is_ready()
    ds = MNIST(download=True)
    assert len(ds) == 10 and not MNIST.is_ready()  # only the split asked for
    assert len(MNIST(train=False, download=True)) == 4
    assert MNIST.is_ready()
    assert leftovers(data_root / "mnist") == sorted(s.name for s in MNIST.all_files())


def test_corrupt_file_in_cache_is_fetched_again(tmp_path, monkeypatch, data_root):
    mirror = mnist_mirror(tmp_path, monkeypatch)
    folder = data_root / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    ds = MNIST(download=True)
    assert len(ds) == 10
    good = (mirror / "train-images-idx3-ubyte.gz").read_bytes()
    assert (folder / "train-images-idx3-ubyte.gz").read_bytes() == good


def test_mnist_mirror_serving_a_truncated_gzip(tmp_path, monkeypatch, data_root):
    mirror = tmp_path / "mirror"
    write_mnist_folder(mirror, n=10)
    path = mirror / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-200])
    monkeypatch.setattr(MNIST, "mirrors", [mirror.as_uri()])
    with pytest.raises(ChecksumError, match="f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        MNIST(download=True)
    assert leftovers(data_root / "mnist") == []


@needs_shared(MNIST_DIR)
def test_shared_mnist_files_pass_the_official_checksums():
    """The shared images file is re-compressed: only its content matches the official md5."""
    images_spec, labels_spec = MNIST.files["train"]
    verify(MNIST_DIR / labels_spec.name, labels_spec)
    with pytest.raises(ChecksumError):
        verify(MNIST_DIR / images_spec.name, RemoteFile(images_spec.name, images_spec.md5))
    verify(MNIST_DIR / images_spec.name, images_spec)


def test_data_error_hierarchy():
    assert issubclass(ChecksumError, DataError) and issubclass(DownloadError, DataError)
    assert issubclass(DataError, RuntimeError)
