"""cnnlab.utils.data: PyTorch's torch.utils.data names, checked by hand and against PyTorch."""
from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import cnnlab
from cnnlab.utils.data import (
    BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler, SequentialSampler,
    Subset, SubsetRandomSampler, TensorDataset, WeightedRandomSampler, default_collate, random_split,
)

try:
    import torch
    import torch.utils.data as tud
except ImportError:  # CI has no PyTorch: the hand-worked tests still run
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def test_one_implementation_behind_both_names():
    import cnnlab.data as native

    assert DataLoader is native.DataLoader and Dataset is native.Dataset
    assert TensorDataset is native.TensorDataset and random_split is native.random_split
    assert cnnlab.utils.data.Subset is native.Subset


class Squares(Dataset):
    """A tutorial-style dataset: __len__ and __getitem__ returning (Tensor, int)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        image = cnnlab.full((1, 2, 2), float(i))
        return image, i * i


def test_custom_dataset_of_tensor_and_int_batches_into_tensors():
    loader = DataLoader(Squares(5), batch_size=2)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    images, labels = batches[0]
    assert isinstance(images, cnnlab.Tensor) and tuple(images.shape) == (2, 1, 2, 2)
    assert images.dtype == cnnlab.float32 and labels.dtype == cnnlab.int64
    assert labels.tolist() == [0, 1] and images.numpy()[1].ravel().tolist() == [1.0] * 4
    assert batches[2][1].tolist() == [16]
    assert images.unsqueeze(0).shape == (1, 2, 1, 2, 2)  # a Tensor, so Tensor methods work


def test_default_collate_rules_by_hand():
    assert default_collate([1, 2, 3]).dtype == cnnlab.int64
    floats = default_collate([0.5, 1.5])
    assert floats.dtype == cnnlab.float64 and floats.tolist() == [0.5, 1.5]
    assert default_collate([True, False]).dtype == cnnlab.bool
    assert default_collate(["a", "b"]) == ["a", "b"]
    arrays = default_collate([np.ones(3, np.uint8), np.zeros(3, np.uint8)])
    assert arrays.dtype == cnnlab.uint8 and tuple(arrays.shape) == (2, 3)
    assert default_collate([np.float32(2), np.float32(3)]).dtype == cnnlab.float32
    d = default_collate([{"x": cnnlab.zeros(2), "y": 1}, {"x": cnnlab.ones(2), "y": 2}])
    assert set(d) == {"x", "y"} and d["x"].tolist() == [[0, 0], [1, 1]] and d["y"].tolist() == [1, 2]
    pair = default_collate([(1, 2.0), (3, 4.0)])
    assert isinstance(pair, list) and pair[0].tolist() == [1, 3] and pair[1].dtype == cnnlab.float64
    Point = namedtuple("Point", "x y")
    p = default_collate([Point(1, 2), Point(3, 4)])
    assert isinstance(p, Point) and p.y.tolist() == [2, 4]
    nested = default_collate([(cnnlab.zeros(1), (5, "s")), (cnnlab.ones(1), (6, "t"))])
    assert nested[1][0].tolist() == [5, 6] and nested[1][1] == ["s", "t"]
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    from PIL import Image

    with pytest.raises(TypeError, match="PIL"):  # the error a tutorial sees without ToTensor
        default_collate([Image.new("L", (2, 2))] * 2)


@needs_torch
def test_default_collate_matches_pytorch():
    samples = [
        [(np.full((2, 2), i, np.float32), i, float(i) / 3, bool(i % 2)) for i in range(4)],
        [{"a": np.arange(3) + i, "b": np.int16(i)} for i in range(3)],
        [[np.float64(i), np.uint8(i)] for i in range(3)],
    ]
    for batch in samples:
        ours, theirs = default_collate(batch), tud.default_collate(batch)
        flat_ours = ours.values() if isinstance(ours, dict) else ours
        flat_theirs = theirs.values() if isinstance(theirs, dict) else theirs
        assert type(ours) is type(theirs)
        for a, b in zip(flat_ours, flat_theirs):
            assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_tensor_dataset_of_tensors_gives_tensor_rows():
    x = cnnlab.arange(12, dtype=cnnlab.float32).reshape(6, 2)
    y = cnnlab.tensor([0, 1, 0, 1, 1, 0])
    ds = TensorDataset(x, y)
    xi, yi = ds[3]
    assert isinstance(xi, cnnlab.Tensor) and xi.tolist() == [6.0, 7.0]
    assert isinstance(yi, cnnlab.Tensor) and yi.shape == () and int(yi) == 1
    assert ds.tensors[0] is x and len(ds) == 6
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert xb.tolist() == x.tolist()[:4] and yb.dtype == cnnlab.int64 and yb.tolist() == [0, 1, 0, 1]
    # the per-sample path (a collate_fn) gives the same batch
    xb2, yb2 = next(iter(DataLoader(ds, batch_size=4, collate_fn=default_collate)))
    assert xb2.tolist() == xb.tolist() and yb2.tolist() == yb.tolist()


def test_random_split_lengths_fractions_and_generator():
    ds = TensorDataset(cnnlab.arange(10))
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=42)
    assert [len(p) for p in parts] == [5, 3, 2]
    assert sorted(int(p[i][0]) for p in parts for i in range(len(p))) == list(range(10))
    odd = random_split(TensorDataset(cnnlab.arange(7)), [0.5, 0.5])
    assert [len(p) for p in odd] == [4, 3]  # leftovers go to the first parts, as PyTorch

    class SeededGenerator:  # PyTorch's `Generator().manual_seed(42)` shape
        def initial_seed(self):
            return 42

    a = random_split(ds, [7, 3], generator=SeededGenerator())
    b = random_split(ds, [7, 3], generator=SeededGenerator())
    assert list(a[0].indices) == list(b[0].indices)
    assert isinstance(a[0], Subset)
    with pytest.raises(TypeError, match="generator"):
        random_split(ds, [7, 3], generator="x")


@needs_torch
def test_random_split_sizes_match_pytorch():
    for n, lengths in [(10, [0.5, 0.3, 0.2]), (7, [0.5, 0.5]), (11, [0.1, 0.1, 0.8]), (9, [4, 5])]:
        ours = [len(p) for p in random_split(TensorDataset(cnnlab.arange(n)), lengths, generator=0)]
        theirs = [len(p) for p in tud.random_split(tud.TensorDataset(torch.arange(n)), lengths)]
        assert ours == theirs


def test_concat_dataset_and_plus():
    a, b = TensorDataset(cnnlab.arange(3)), TensorDataset(cnnlab.arange(10, 12))
    both = a + b
    assert isinstance(both, ConcatDataset) and len(both) == 5 and both.cumulative_sizes == [3, 5]
    assert [int(both[i][0]) for i in range(5)] == [0, 1, 2, 10, 11] and int(both[-1][0]) == 11
    with pytest.raises(IndexError):
        both[5]
    assert next(iter(DataLoader(both, batch_size=5)))[0].tolist() == [0, 1, 2, 10, 11]


def test_samplers_by_hand():
    ds = list(range(6))
    assert list(SequentialSampler(ds)) == [0, 1, 2, 3, 4, 5]
    r = RandomSampler(ds, generator=3)
    first, second = list(r), list(r)
    assert sorted(first) == ds and sorted(second) == ds and first != second  # a new order per pass
    assert list(RandomSampler(ds, generator=3)) == first
    assert len(RandomSampler(ds, num_samples=14)) == 14 and sorted(list(RandomSampler(ds, num_samples=12))) == sorted(ds * 2)
    picks = list(RandomSampler(ds, replacement=True, num_samples=50, generator=0))
    assert len(picks) == 50 and set(picks) <= set(ds)
    sub = SubsetRandomSampler([10, 20, 30])
    assert sorted(sub) == [10, 20, 30] and len(sub) == 3
    w = list(WeightedRandomSampler([0, 0, 1.0, 0], 5))
    assert w == [2] * 5
    assert list(BatchSampler(range(5), 2, drop_last=True)) == [[0, 1], [2, 3]]
    assert len(BatchSampler(range(5), 2, drop_last=False)) == 3


def test_samplers_follow_manual_seed():
    cnnlab.manual_seed(5)
    a = list(RandomSampler(range(20)))
    cnnlab.manual_seed(5)
    assert list(RandomSampler(range(20))) == a


def test_loader_with_sampler_batch_sampler_and_collate_fn():
    ds = TensorDataset(cnnlab.arange(10))
    loader = DataLoader(ds, batch_size=3, sampler=SubsetRandomSampler([1, 3, 5, 7], generator=0))
    assert len(loader) == 2 and len(loader.sampler) == 4
    seen = sorted(v for (x,) in loader for v in x.tolist())
    assert seen == [1, 3, 5, 7]
    by_batches = DataLoader(ds, batch_sampler=[[0, 9], [4]])
    assert [x.tolist() for (x,) in by_batches] == [[0, 9], [4]]
    counted = DataLoader(ds, batch_size=4, collate_fn=len)
    assert list(counted) == [4, 4, 2]
    unbatched = list(DataLoader(ds, batch_size=None))
    assert len(unbatched) == 10 and isinstance(unbatched[0], list) and int(unbatched[3][0]) == 3
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, shuffle=True, sampler=SequentialSampler(ds))
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, batch_size=2, batch_sampler=[[0]])


def test_loader_pytorch_arguments_and_attributes():
    ds = Squares(10)
    loader = DataLoader(ds, batch_size=4, shuffle=True, num_workers=4, pin_memory=True, drop_last=True,
                        persistent_workers=True, prefetch_factor=2, worker_init_fn=None, generator=7)
    assert len(loader) == 2 and loader.dataset is ds and loader.batch_size == 4
    assert len(loader.dataset) == 10 and len(loader.sampler) == 10
    order = [y.tolist() for _, y in loader]
    again = [y.tolist() for _, y in DataLoader(ds, batch_size=4, shuffle=True, drop_last=True, generator=7)]
    assert order == again and sum(len(b) for b in order) == 8
    it = iter(DataLoader(ds, batch_size=3))
    assert next(it)[1].tolist() == [0, 1, 4]


def test_iterable_dataset_streams_in_batches():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter((cnnlab.full((2,), float(i)), i) for i in range(5))

    batches = list(DataLoader(Stream(), batch_size=2))
    assert [y.tolist() for _, y in batches] == [[0, 1], [2, 3], [4]]
    assert [y.tolist() for _, y in DataLoader(Stream(), batch_size=2, drop_last=True)] == [[0, 1], [2, 3]]


@needs_torch
def test_loader_batches_match_pytorch_without_shuffle():
    rng = np.random.default_rng(0)
    x, y = rng.random((11, 3, 4, 4), dtype=np.float32), rng.integers(0, 5, 11)
    ours = DataLoader(TensorDataset(cnnlab.from_numpy(x), cnnlab.from_numpy(y)), batch_size=4, drop_last=False)
    theirs = tud.DataLoader(tud.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=4)
    assert len(ours) == len(theirs)
    for (xa, ya), (xb, yb) in zip(ours, theirs):
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
