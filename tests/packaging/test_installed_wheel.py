"""cnnlab as a user meets it after `pip install cnnlab`: a wheel installed into a fresh virtual
environment outside the checkout, run from an empty folder. The embedded MNIST sample and the
sample pictures must come from the installed copy; nothing may reach into the source tree."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
BIN = "Scripts" if os.name == "nt" else "bin"


def _call(cmd: list, cwd: Path, env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Build a wheel from a clean copy of the sources (no stale build/ folder), install it with
    --no-deps into a new venv and let that venv see this environment's dependencies through a
    .pth file, which Python appends after the venv's own site-packages: the wheel's cnnlab wins."""
    base = tmp_path_factory.mktemp("installed")
    src = base / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc")
    for name in ("cnnlab", "gui"):
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    _call([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
           "--disable-pip-version-check", "-q", ".", "-w", base / "dist"], cwd=src)
    wheel = next((base / "dist").glob("cnnlab-*.whl"))
    env_dir = base / "env"
    _call([sys.executable, "-m", "venv", env_dir], cwd=base)   # its own pip, from Python's bundled copy
    python = env_dir / BIN / ("python.exe" if os.name == "nt" else "python")
    _call([python, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check", "-q", wheel],
          cwd=base)
    site = _call([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=base).stdout.strip()
    Path(site, "cnnlab-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(CNNLAB_QUIET="1", QT_QPA_PLATFORM="offscreen")
    work = base / "work"   # an empty folder, far from the checkout
    work.mkdir()
    return {"python": python, "cnnlab": env_dir / BIN / "cnnlab", "site": Path(site), "env": env, "work": work}


def run(installed: dict, *args) -> subprocess.CompletedProcess:
    return _call([installed["cnnlab"], *args], cwd=installed["work"], env=installed["env"])


def test_cnnlab_is_imported_from_the_installed_copy(installed):
    code = "import cnnlab, gui, cnnlab.assets as a; print(cnnlab.__file__); print(gui.__file__); print(a.MNIST_SAMPLE_DIR)"
    lines = _call([installed["python"], "-c", code], cwd=installed["work"], env=installed["env"]).stdout.split()
    for line in lines:
        assert Path(line).resolve().is_relative_to(installed["site"].resolve()), line
        assert not Path(line).resolve().is_relative_to(ROOT), line


def test_datasets_lists_the_embedded_sample_as_ready(installed):
    line = next(l for l in run(installed, "datasets").stdout.splitlines() if l.startswith("mnist-sample"))
    assert "ready" in line and "missing" not in line


def test_train_runs_on_the_embedded_sample(installed):
    r = run(installed, "train", "--limit", "64", "--out", "first")
    assert "mnist-sample" in r.stdout and "epoch 1/1" in r.stdout
    assert (installed["work"] / "first" / "checkpoint.npz").is_file()
    # and the run predicts a shipped sample picture, found through the installed package
    image = installed["site"] / "cnnlab" / "assets" / "samples" / "mnist_7.png"
    r = run(installed, "predict", "first", image, "--top", "2")
    assert r.stdout.startswith(str(image)) and r.stdout.count("%") == 2


def test_animate_a_shipped_sample_picture(installed):
    image = installed["site"] / "cnnlab" / "assets" / "samples" / "mnist_3.png"
    run(installed, "animate", "conv", "--image", image, "--size", "8", "--kernel", "3", "-o", "conv.gif")
    with Image.open(installed["work"] / "conv.gif") as gif:
        assert gif.n_frames == 36   # one per output cell of a 6 x 6 output
