"""Helpers for the notebook tests: where the lessons are, and running one with nbclient."""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _kernel_manager(folder: Path):
    """A kernel on this interpreter (the one with cnnlab installed), whatever kernels the user
    has registered under the name python3."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = folder / "cnnlab-lessons"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "cnnlab lessons", "language": "python"}))
    return KernelManager(kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder)]), kernel_name="cnnlab-lessons")


def execute(path: Path, timeout: int = 300):
    """Run a notebook top to bottom in a fresh kernel; nbclient raises on the first error cell."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as kernels:
        client = nbclient.NotebookClient(nb, km=_kernel_manager(Path(kernels)), timeout=timeout,
                                         resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    return nb
