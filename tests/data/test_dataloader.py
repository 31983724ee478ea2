"""DataLoader, Dataset, TensorDataset, Subset and random_split."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cnnlab
from cnnlab.data import ArrayDataset, DataLoader, Dataset, Subset, TensorDataset, random_split
from cnnlab.data import transforms as T


def numbered(n: int, transform=None) -> ArrayDataset:
    """Image i is filled with the value i, so a batch tells which samples it holds."""
    images = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 1, 2, 2)).copy()
    return ArrayDataset(images, np.arange(n) % 3, ["a", "b", "c"], transform)


def ids(batch_images) -> list[int]:
    return batch_images.numpy()[:, 0, 0, 0].astype(int).tolist()


def epoch_ids(loader) -> list[list[int]]:
    return [ids(images) for images, _ in loader]


class PlainDataset(Dataset):
    """A user-style dataset with only __len__ and __getitem__ (the slow path)."""

    classes = ["a", "b", "c"]

    def __init__(self, n):
        self.inner = numbered(n)

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        return self.inner[i]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 50), batch_size=st.integers(1, 12), drop_last=st.booleans(), shuffle=st.booleans())
def test_every_sample_exactly_once_per_epoch(n, batch_size, drop_last, shuffle):
    loader = DataLoader(numbered(n), batch_size, shuffle=shuffle, drop_last=drop_last, seed=1)
    for _ in range(2):
        batches = epoch_ids(loader)
        seen = [i for b in batches for i in b]
        assert len(batches) == len(loader)
        assert all(len(b) == batch_size for b in batches[:-1])
        if drop_last:
            assert len(seen) == n - n % batch_size
            assert len(set(seen)) == len(seen)
            assert all(len(b) == batch_size for b in batches)
        else:
            assert sorted(seen) == list(range(n))
        if not shuffle:
            assert seen == list(range(len(seen)))


def test_last_partial_batch_kept_or_dropped():
    ds = numbered(10)
    kept = DataLoader(ds, batch_size=4)
    dropped = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(kept) == 3 and len(dropped) == 2
    assert [len(b) for b in epoch_ids(kept)] == [4, 4, 2]
    assert epoch_ids(dropped) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_same_seed_same_order_other_seed_other_order():
    ds = numbered(100)
    a = DataLoader(ds, 10, shuffle=True, seed=7)
    b = DataLoader(ds, 10, shuffle=True, seed=7)
    c = DataLoader(ds, 10, shuffle=True, seed=8)
    first_a, first_b, first_c = epoch_ids(a), epoch_ids(b), epoch_ids(c)
    assert first_a == first_b
    assert first_a != first_c
    second_a = epoch_ids(a)
    assert second_a != first_a  # a new permutation every epoch
    assert second_a == epoch_ids(b)  # ... that is the same for the same seed


def test_epoch_order_does_not_depend_on_how_far_earlier_epochs_ran():
    ds = numbered(50)
    full, broken = DataLoader(ds, 5, shuffle=True, seed=3), DataLoader(ds, 5, shuffle=True, seed=3)
    epoch_ids(full)
    next(iter(broken))  # stop the first epoch after one batch
    assert epoch_ids(full) == epoch_ids(broken)


def test_seed_none_follows_cnnlab_manual_seed():
    ds = numbered(40)
    cnnlab.manual_seed(123)
    a = epoch_ids(DataLoader(ds, 8, shuffle=True))
    cnnlab.manual_seed(123)
    b = epoch_ids(DataLoader(ds, 8, shuffle=True))
    cnnlab.manual_seed(124)
    c = epoch_ids(DataLoader(ds, 8, shuffle=True))
    assert a == b and a != c


def test_batches_are_cnnlab_tensors_float32_nchw_and_int64():
    ds = ArrayDataset(np.full((5, 3, 4, 6), 255, np.uint8), [0, 1, 2, 0, 1], ["a", "b", "c"])
    images, labels = next(iter(DataLoader(ds, batch_size=4)))
    assert isinstance(images, cnnlab.Tensor) and isinstance(labels, cnnlab.Tensor)
    assert tuple(images.shape) == (4, 3, 4, 6) and images.dtype == cnnlab.float32
    assert tuple(labels.shape) == (4,) and labels.dtype == cnnlab.int64
    np.testing.assert_array_equal(images.numpy(), 1.0)  # uint8 255 -> 1.0
    assert labels.numpy().tolist() == [0, 1, 2, 0]


def test_per_item_path_gives_the_same_batches_as_the_fast_path():
    fast = DataLoader(numbered(23), 5, shuffle=True, seed=11)
    slow = DataLoader(PlainDataset(23), 5, shuffle=True, seed=11)
    assert not hasattr(slow.dataset, "get_batch")
    for (xf, yf), (xs, ys) in zip(fast, slow):
        np.testing.assert_array_equal(xf.numpy(), xs.numpy())
        np.testing.assert_array_equal(yf.numpy(), ys.numpy())
        assert ys.dtype == cnnlab.int64


def test_random_transforms_follow_the_loader_seed():
    ds = ArrayDataset(np.random.default_rng(0).random((32, 1, 8, 8)), np.zeros(32), ["x"],
                      T.Compose([T.RandomShift(2), T.RandomHorizontalFlip()]))
    first = [x.numpy() for x, _ in DataLoader(ds, 8, shuffle=True, seed=5)]
    again = [x.numpy() for x, _ in DataLoader(ds, 8, shuffle=True, seed=5)]
    other = [x.numpy() for x, _ in DataLoader(ds, 8, shuffle=True, seed=6)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_pytorch_keywords_are_accepted_and_bad_batch_size_rejected():
    ds = numbered(4)
    assert len(DataLoader(ds, batch_size=2, num_workers=2, pin_memory=True)) == 2
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            DataLoader(ds, batch_size=bad)


def test_tensor_dataset_keeps_dtypes_and_accepts_tensors():
    x = cnnlab.from_numpy(np.arange(12, dtype=np.float32).reshape(6, 2))
    y = np.array([0, 1, 0, 1, 1, 0])
    ds = TensorDataset(x, y)
    assert len(ds) == 6 and ds[1][1] == 1 and ds.classes == ["0", "1"]
    xb, yb = next(iter(DataLoader(ds, batch_size=6)))
    np.testing.assert_array_equal(xb.numpy(), x.numpy())
    assert xb.dtype == cnnlab.float32 and yb.dtype == cnnlab.int64
    with pytest.raises(ValueError, match="same length"):
        TensorDataset(np.zeros(3), np.zeros(4))


def test_getitem_returns_float32_chw_and_int_and_checks_range():
    ds = numbered(5)
    image, label = ds[-1]
    assert image.shape == (1, 2, 2) and image.dtype == np.float32 and image[0, 0, 0] == 4
    assert isinstance(label, int) and label == 1
    with pytest.raises(IndexError, match="out of range"):
        ds[5]


def test_subset_and_random_split():
    ds = numbered(20)
    sub = Subset(ds, [5, 3, 9])
    assert len(sub) == 3 and sub[1][0][0, 0, 0] == 3 and sub.classes == ds.classes
    assert ids(next(iter(DataLoader(sub, 3)))[0]) == [5, 3, 9]
    assert sub.targets.tolist() == [2, 0, 0]

    parts = random_split(ds, [12, 5, 3], generator=0)
    members = [sorted(int(p[i][0][0, 0, 0]) for i in range(len(p))) for p in parts]
    assert [len(m) for m in members] == [12, 5, 3]
    assert sorted(sum(members, [])) == list(range(20))
    again = random_split(ds, [12, 5, 3], generator=0)
    assert [p.indices.tolist() for p in parts] == [p.indices.tolist() for p in again]

    fractions = random_split(numbered(11), [0.5, 0.5], generator=1)
    assert [len(p) for p in fractions] == [6, 5]
    with pytest.raises(ValueError, match="summing"):
        random_split(ds, [10, 5])


def test_array_dataset_checks_its_inputs():
    with pytest.raises(ValueError, match="N x C x H x W"):
        ArrayDataset(np.zeros((3, 4, 4)), [0, 0, 0], ["a"])
    with pytest.raises(ValueError, match="one per image"):
        ArrayDataset(np.zeros((3, 1, 4, 4)), [0, 0], ["a"])
    with pytest.raises(ValueError, match="0..1"):
        ArrayDataset(np.zeros((2, 1, 4, 4)), [0, 2], ["a", "b"])
