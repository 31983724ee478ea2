"""ImageFolder, load_image and folders through get_dataset, on pictures written here."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import DataError, DataLoader, ImageFolder, get_dataset, load_image


def save(path, array, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def make_folder(root, per_class=3, classes=("cat", "dog", "ant"), size=(10, 12)):
    """Class folders of PNGs; every pixel of image k of class c equals 10*c + k (all channels)."""
    for c, name in enumerate(classes):
        for k in range(per_class):
            save(root / name / f"{k}.png", np.full(size + (3,), 10 * c + k, np.uint8))
    return root


def test_classes_sorted_labels_and_pixels(tmp_path):
    root = make_folder(tmp_path / "pics")
    ds = ImageFolder(root, size=(10, 12), channels=3)
    assert ds.classes == ["ant", "cat", "dog"] and len(ds) == 9
    assert ds.targets.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    image, label = ds[4]  # cat/1.png: value 10*0 + 1 written in class order cat=0
    assert image.shape == (3, 10, 12) and image.dtype == np.float32 and label == 1
    np.testing.assert_allclose(image, 1 / 255, rtol=1e-6)
    assert [p.name for p, _ in ds.samples[:3]] == ["0.png", "1.png", "2.png"]
    x, y = next(iter(DataLoader(ds, batch_size=9)))
    assert tuple(x.shape) == (9, 3, 10, 12)


def test_resize_and_grey_conversion(tmp_path):
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[..., 1] = 200  # pure green
    save(tmp_path / "pics" / "green" / "a.jpg", rgb)
    save(tmp_path / "pics" / "green" / "nested" / "b.png", rgb)
    ds = ImageFolder(tmp_path / "pics", size=28, channels=1)
    assert ds.images.shape == (2, 1, 28, 28)
    grey = 0.587 * 200  # Pillow's L = R*299/1000 + G*587/1000 + B*114/1000
    assert abs(float(ds.images[1].mean()) - grey) < 2
    colour = ImageFolder(tmp_path / "pics", size=(16, 8), channels=3)
    assert colour.images.shape == (2, 3, 16, 8)
    assert abs(float(colour.images[1, 1].mean()) - 200) < 2 and colour.images[1, 0].max() < 5


def test_empty_class_folder_is_an_error_naming_it(tmp_path):
    root = make_folder(tmp_path / "pics")
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"class folder\(s\) empty hold no images"):
        ImageFolder(root)


def test_folder_without_class_folders(tmp_path):
    save(tmp_path / "flat" / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="one sub-folder per class"):
        ImageFolder(tmp_path / "flat")
    with pytest.raises(DataError, match="no such folder"):
        ImageFolder(tmp_path / "absent")


def test_corrupt_image_is_skipped_with_one_warning_naming_it(tmp_path):
    root = make_folder(tmp_path / "pics", per_class=2)
    bad = root / "cat" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    good_jpg = root / "dog" / "cut.jpg"
    save(good_jpg, np.full((10, 12, 3), 90, np.uint8), fmt="JPEG")
    truncated = root / "dog" / "truncated.jpg"
    truncated.write_bytes(good_jpg.read_bytes()[:40])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = ImageFolder(root, size=(10, 12))
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert any(str(bad) in m for m in messages) and any(str(truncated) in m for m in messages)
    assert len(ds) == 7  # 6 good PNGs + the good JPEG
    assert bad not in [p for p, _ in ds.samples]


def test_class_with_only_unreadable_images_is_an_error(tmp_path):
    root = make_folder(tmp_path / "pics", per_class=1)
    (root / "zebra").mkdir()
    (root / "zebra" / "z.png").write_bytes(b"nope")
    with pytest.warns(UserWarning, match="z.png"):
        with pytest.raises(DataError, match="no readable image in class folder.*zebra"):
            ImageFolder(root)


def test_load_image(tmp_path):
    array = np.zeros((50, 50), np.uint8)
    array[10:40, 20:30] = 255
    save(tmp_path / "seven.png", array)
    image = load_image(tmp_path / "seven.png")
    assert image.shape == (1, 28, 28) and image.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 1 and image.max() > 0.9
    assert load_image(tmp_path / "seven.png", size=(8, 16), channels=3).shape == (3, 8, 16)
    (tmp_path / "junk.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.png: cannot read it as an image"):
        load_image(tmp_path / "junk.png")
    with pytest.raises(DataError, match="no such file"):
        load_image(tmp_path / "absent.png")
    with pytest.raises(ValueError, match="channels must be 1"):
        load_image(tmp_path / "seven.png", channels=2)


def test_get_dataset_on_a_folder_holds_out_a_fixed_validation_part(tmp_path):
    root = make_folder(tmp_path / "pics", per_class=10)
    train = get_dataset(root, train=True)
    val = get_dataset(str(root), train=False)
    assert len(train) == 24 and len(val) == 6
    assert set(train.indices.tolist()).isdisjoint(val.indices.tolist())
    assert get_dataset(root, train=False).indices.tolist() == val.indices.tolist()
    assert train.classes == ["ant", "cat", "dog"]
    assert tuple(next(iter(DataLoader(train, 4)))[0].shape) == (4, 1, 28, 28)


def test_get_dataset_uses_train_and_val_sub_folders(tmp_path):
    make_folder(tmp_path / "set" / "train", per_class=4)
    make_folder(tmp_path / "set" / "val", per_class=2)
    assert len(get_dataset(tmp_path / "set", train=True, size=12, channels=3)) == 12
    assert len(get_dataset(tmp_path / "set", train=False)) == 6
