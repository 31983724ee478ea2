"""cnnlab.save / cnnlab.load: round trips, no pickle, clear errors, atomic writes."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

import cnnlab as torch
import cnnlab.nn as nn
from cnnlab import optim


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.bn(self.conv1(x)).mean((2, 3)))


def test_state_dict_round_trip(tmp_path):
    torch.manual_seed(0)
    net = Small()
    net(torch.randn(3, 1, 5, 5))   # move the running statistics off their defaults
    path = tmp_path / "net.npz"
    torch.save(net.state_dict(), path)
    loaded = torch.load(path)
    assert list(loaded) == list(net.state_dict())
    for k, v in net.state_dict().items():
        assert isinstance(loaded[k], torch.Tensor)
        assert loaded[k].dtype == v.dtype and tuple(loaded[k].shape) == tuple(v.shape), k
        np.testing.assert_array_equal(loaded[k].numpy(), v.numpy(), err_msg=k)
    other = Small()
    other.load_state_dict(loaded)
    x = torch.randn(2, 1, 5, 5)
    np.testing.assert_array_equal(other.eval()(x).numpy(), net.eval()(x).numpy())


def test_nested_checkpoint_round_trip(tmp_path):
    net = Small()
    opt = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    net(torch.randn(2, 1, 5, 5)).sum().backward()
    opt.step()
    checkpoint = {
        "model": net.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": 7,
        "lr": 0.0125,
        "best": None,
        "done": True,
        "name": "ConvNet — run 3",
        "history": [0.9, 0.7, 0.55],
        "shape": (64, 1, 28, 28),
        "confusion": np.arange(9, dtype=np.int32).reshape(3, 3),
        "runs": [{"seed": 1, "acc": np.float64(0.5)}, {"seed": 2, "tags": ["a", "b"]}],
        "double": torch.tensor(np.array([1.0, 2.0])),
    }
    path = tmp_path / "ckpt.npz"
    torch.save(checkpoint, path)
    back = torch.load(path)
    assert back["epoch"] == 7 and back["lr"] == 0.0125 and back["best"] is None and back["done"] is True
    assert back["name"] == "ConvNet — run 3"
    assert back["history"] == [0.9, 0.7, 0.55]
    assert tuple(back["shape"]) == (64, 1, 28, 28)
    assert isinstance(back["confusion"], np.ndarray) and back["confusion"].dtype == np.int32
    np.testing.assert_array_equal(back["confusion"], checkpoint["confusion"])
    assert back["runs"][0]["acc"] == 0.5 and back["runs"][1]["tags"] == ["a", "b"]
    assert back["double"].dtype == np.float64
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(back["model"][k].numpy(), v.numpy())
    # the optimizer state comes back usable: it continues exactly like the original
    net2 = Small()
    net2.load_state_dict(back["model"])
    opt2 = optim.SGD(net2.parameters(), lr=0.5)
    opt2.load_state_dict(back["optimizer"])
    x = torch.randn(2, 1, 5, 5)
    for n, o in ((net, opt), (net2, opt2)):
        o.zero_grad()
        n(x).sum().backward()
        o.step()
    for (k, a), b in zip(net.state_dict().items(), net2.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)


def test_the_file_holds_no_pickle(tmp_path):
    path = tmp_path / "net.npz"
    torch.save({"model": Small().state_dict(), "meta": {"epoch": 1, "names": ["a"]}}, path)
    with np.load(path, allow_pickle=False) as z:   # would raise on any object (pickled) member
        for name in z.files:
            assert z[name].dtype != object
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            assert info.filename.endswith(".npy")
            with zf.open(info) as f:
                assert f.read(6) == b"\x93NUMPY"


def test_unsupported_objects_are_refused(tmp_path):
    with pytest.raises(TypeError):
        torch.save({"fn": lambda x: x}, tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.95])
def test_truncated_file(tmp_path, cut):
    good = tmp_path / "good.npz"
    torch.save(Small().state_dict(), good)
    data = good.read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ValueError, match="truncated.npz"):
        torch.load(bad)


def test_corrupt_file(tmp_path):
    good = tmp_path / "good.npz"
    torch.save({"w": torch.randn(100, 100)}, good)
    data = bytearray(good.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = b"\xff" * 64
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt.npz"):
        torch.load(bad)


def test_an_npz_that_cnnlab_did_not_write(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weight=np.zeros(3))
    with pytest.raises(ValueError, match="foreign.npz"):
        torch.load(path)


@pytest.mark.parametrize("content", [b"this is not a checkpoint at all" * 4, "npy"])
def test_a_file_that_is_not_an_archive(tmp_path, content):
    path = tmp_path / "notes.npz"
    if content == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match="notes.npz"):
        torch.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        torch.load(tmp_path / "nope.npz")


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "net.npz"
    torch.save({"version": 1, "w": torch.ones(3)}, path)
    before = path.read_bytes()

    def half_written(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half of an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", half_written)
    monkeypatch.setattr(np, "savez_compressed", half_written)
    with pytest.raises(OSError, match="disk full"):
        torch.save({"version": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]
    assert torch.load(path)["version"] == 1


def test_save_creates_the_folder(tmp_path):
    path = tmp_path / "runs" / "a" / "net.npz"
    torch.save({"x": 1}, path)
    assert torch.load(path) == {"x": 1}


def test_load_state_dict_from_a_file_of_another_architecture(tmp_path):
    path = tmp_path / "other.npz"
    torch.save(nn.Sequential(nn.Conv2d(1, 8, 5), nn.Linear(8, 2)).state_dict(), path)
    with pytest.raises(ValueError) as err:
        Small().load_state_dict(torch.load(path))
    msg = str(err.value)
    assert "0.weight" in msg and "conv1.weight" in msg


def test_write_atomically_keeps_the_old_file_when_the_writer_fails(tmp_path):
    from cnnlab.serialization import write_atomically

    path = tmp_path / "sub" / "metrics.json"
    write_atomically(path, lambda f: f.write(b"old"))
    assert path.read_bytes() == b"old"

    def broken(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, broken)
    assert path.read_bytes() == b"old"
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_arrays_of_every_kind_round_trip_through_a_stream():
    import io

    values = {"empty": np.zeros((0, 3), np.float32), "scalar": np.array(2.5), "flags": np.array([True, False]),
              "ints": np.arange(6, dtype=np.int64).reshape(2, 3), "words": np.array(["conv", "pool"]),
              "tensor0d": torch.tensor(np.array(7.0, np.float32)), "half": torch.tensor(np.ones(2, np.float16))}
    buf = io.BytesIO()
    torch.save(values, buf)
    buf.seek(0)
    back = torch.load(buf)
    for k, v in values.items():
        want = v.numpy() if isinstance(v, torch.Tensor) else v
        got = back[k].numpy() if isinstance(back[k], torch.Tensor) else back[k]
        assert type(back[k]) is type(v) and got.dtype == want.dtype and got.shape == want.shape, k
        np.testing.assert_array_equal(got, want, err_msg=k)


def test_a_recompressed_or_foreign_ordered_archive_still_loads(tmp_path):
    """Members compressed by another zip tool, or written big-endian or in Fortran order by
    NumPy itself, are read correctly: only their headers say so."""
    import io

    path = tmp_path / "net.npz"
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    torch.save({"w": torch.tensor(w), "m": np.asfortranarray(w.astype(">f8"))}, path)
    with zipfile.ZipFile(path) as zf:
        parts = {name: zf.read(name) for name in zf.namelist()}
    for name in parts:   # rewrite the plain array as big-endian and Fortran-ordered
        if name != "__cnnlab__.npy" and np.load(io.BytesIO(parts[name])).dtype == np.float64:
            f = io.BytesIO()
            np.lib.format.write_array(f, np.asfortranarray(w.astype(">f8")))
            parts[name] = f.getvalue()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in parts.items():
            zf.writestr(name, blob)
    back = torch.load(path)
    np.testing.assert_array_equal(back["w"].numpy(), w)
    np.testing.assert_array_equal(back["m"], w)
    assert back["m"].dtype == np.dtype(">f8")


def test_a_damaged_file_gives_one_checkpoint_error_without_numpys_advice(tmp_path):
    from cnnlab.serialization import CheckpointError

    path = tmp_path / "pickled.npz"
    np.savez(path, __cnnlab__=np.frombuffer(b'{"format": "cnnlab", "version": 1, "root": {"__ndarray__": "x"}}',
                                            np.uint8), x=np.array([object()], dtype=object))
    with pytest.raises(CheckpointError) as err:
        torch.load(path)
    text = str(err.value)
    assert "pickled.npz" in text and "pickled data" in text and "allow_pickle" not in text and "\n" not in text
