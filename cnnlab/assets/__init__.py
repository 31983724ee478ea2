"""Files cnnlab reads at run time. They live inside the package, so a wheel or a plain
`pip install .` carries them, and every path is resolved from here.

>>> MNIST_SAMPLE_DIR.name, sample_image("mnist_7.png").is_file()
('mnist-sample', True)
"""
from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
MNIST_SAMPLE_DIR = ASSETS_DIR / "mnist-sample"   # the embedded MNIST sample (IDX, gzip)
SAMPLE_IMAGES_DIR = ASSETS_DIR / "samples"       # pictures for predict, animate and the lab


def sample_image(name: str) -> Path:
    """The path of a shipped sample picture, e.g. sample_image("mnist_7.png")."""
    return SAMPLE_IMAGES_DIR / name
