#!/usr/bin/env python3
"""The project's two commands, runnable on a fresh machine with only Python 3.

    python3 dev.py run     # make .venv, install cnnlab, run the main job on the embedded data:
                           # the desktop app where a window can open, else headless training
    python3 dev.py test    # make .venv, install cnnlab with test and cuda extras, run the whole test suite
                           # (then tests/cuda again under numba's CUDA simulator, and every kernel
                           # those tests launch compiled to PTX for sm_80 and sm_90: no GPU needed)
    python3 dev.py lessons # install the notebook extra, open JupyterLab on notebooks/ (the lessons)

Extra arguments after the command go to the program it runs (e.g.
`python3 dev.py test -k conv` or `python3 dev.py run --epochs 1`).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def _run(cmd: list[str], env: dict | None = None) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)


def ensure_env(extras: str) -> None:
    """Create .venv and (re)install the project when pyproject.toml or the extras changed."""
    if not PY.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".cnnlab-installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    have = stamp.read_text().strip() if stamp.exists() else ""
    if want not in have.split():
        target = f".[{extras}]" if extras else "."
        if _run([PY, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", target]) != 0:
            sys.exit("dev.py: installing the project failed (see pip's message above)")
        stamp.write_text((have + " " + want).strip() + "\n")


def _cuda_extra() -> str:
    """The extra that brings the CUDA compiler wheels: 'cuda' (CUDA 12, any driver from 525 on), or
    'cuda13' where .venv already holds CUDA 13's bindings (PyTorch's CUDA 13 wheels), which the
    CUDA 12 ones would downgrade."""
    if not PY.exists():
        return "cuda"
    r = subprocess.run([str(PY), "-c", "import importlib.metadata as m; print(m.version('cuda-bindings'))"],
                       capture_output=True, text=True)
    return "cuda13" if r.returncode == 0 and r.stdout.strip().startswith("13.") else "cuda"


def _display_problem() -> str | None:
    """Why the app could not open a window here (None: it can). Asked with the project's
    Python before Qt is, since Qt aborts on a display it cannot open."""
    if sys.platform in ("win32", "darwin"):
        return None
    r = subprocess.run([str(PY), str(ROOT / "gui" / "display.py")], cwd=ROOT, capture_output=True, text=True)
    last = (r.stderr.strip().splitlines() or ["no reason given"])[-1]
    return (r.stdout.strip() or f"the display check failed: {last}") if r.returncode else None


def _demo_folder() -> str:
    """runs/demo, or runs/demo-2, -3 ... when earlier demos are there: a run is never replaced."""
    n = 1
    while (ROOT / "runs" / ("demo" if n == 1 else f"demo-{n}")).exists():
        n += 1
    return "runs/demo" if n == 1 else f"runs/demo-{n}"


def _workers() -> list[str]:
    """pytest-xdist's options for the full run: a worker per core, at most 4 (each holds numba's
    compiled kernels, Qt and the test data: up to 1.2 GB). Two workers on two cores halve the run."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return ["-n", str(min(cores, 4))] if cores > 1 else []


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "lessons"):
        print(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    env = dict(os.environ)
    if cmd == "lessons":   # the third way in: the lessons in JupyterLab (extra arguments go to it)
        ensure_env("notebook")
        root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []   # containers run as root
        return _run([PY, "-m", "jupyterlab", f"--ServerApp.root_dir={ROOT / 'notebooks'}", *root, *rest], env)
    if cmd == "run":
        ensure_env("")
        if rest and rest[0] in ("gui", "train"):
            return _run([BIN / "cnnlab", *rest], env)
        if rest:  # options such as --epochs 2 are training options
            return _run([BIN / "cnnlab", "train", *rest], env)
        problem = _display_problem()
        if problem is None:
            return _run([BIN / "cnnlab", "gui"], env)
        print(f"dev.py: the app cannot open a window here ({problem}), so the main job runs headless: "
              "seed 004's ConvNet on the embedded MNIST sample. `python3 dev.py run gui` forces the app.", flush=True)
        return _run([BIN / "cnnlab", "train", "--out", _demo_folder()], env)
    ensure_env(f"test,{_cuda_extra()}")
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    if rest:
        return _run([PY, "-m", "pytest", "-q", *rest], env)
    code = _run([PY, "-m", "pytest", "-q", *_workers()], env)
    if code:
        return code
    # the CUDA kernels again, in numba's CUDA simulator (the variable must be set before numba loads),
    # recording every kernel variant launched; then each of those compiled for real GPUs (sm_80, sm_90)
    # with the NVVM compiler the cuda extra installs: no GPU needed
    with tempfile.TemporaryDirectory() as tmp:
        launches = str(Path(tmp) / "launches.json")
        code = _run([PY, "-m", "pytest", "-q", *_workers(), "tests/cuda"],
                    dict(env, NUMBA_ENABLE_CUDASIM="1", CNNLAB_RECORD_LAUNCHES=launches))
        if code:
            return code
        return _run([PY, ROOT / "tests" / "cuda" / "ptx_check.py", "--launches", launches, "--cc", "8.0,9.0"], env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
