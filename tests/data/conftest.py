"""Fixtures for the data tests; the file-writing helpers live in datafiles.py."""
from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest

# Test modules here import datafiles by name, whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).parent))

from datafiles import CIFAR_TAR, data_root  # noqa: E402, F401  (data_root: a fixture for every test here)


@pytest.fixture(scope="session")
def cifar_jpeg_dir(tmp_path_factory) -> Path:
    """The shared CIFAR-10 JPEG archive unpacked into a temporary folder, once a session.

    To stay fast it unpacks two whole classes (airplane and cat, 5,000 each) and the
    first 20 images of every other class.
    """
    if not CIFAR_TAR.exists():
        pytest.skip(f"real data not found at {CIFAR_TAR.resolve()} (see shared/datasets/README.md)")
    out = tmp_path_factory.mktemp("cifar10-jpg")
    taken: dict[str, int] = {}
    with tarfile.open(CIFAR_TAR) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3:
                continue
            cls = parts[1]
            if cls in ("airplane", "cat") or taken.get(cls, 0) < 20:
                taken[cls] = taken.get(cls, 0) + 1
                tar.extract(member, out, filter="data")
    return out / "train"
