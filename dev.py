#!/usr/bin/env python3
"""The project's two commands, runnable on a fresh machine with only Python 3.

    python3 dev.py run     # make .venv, install cnnlab, run the main job on the embedded data:
                           # the desktop app where there is a screen, else headless training
    python3 dev.py test    # make .venv, install cnnlab with test extras, run the whole test suite
                           # (then tests/cuda again under numba's CUDA simulator)

Extra arguments after the command go to the program it runs (e.g.
`python3 dev.py test -k conv` or `python3 dev.py run --epochs 1`).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
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


def _has_screen() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test"):
        print(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    env = dict(os.environ)
    if cmd == "run":
        ensure_env("")
        if rest and rest[0] in ("gui", "train"):
            return _run([BIN / "cnnlab", *rest], env)
        if rest:  # options such as --epochs 2 are training options
            return _run([BIN / "cnnlab", "train", *rest], env)
        if _has_screen():
            return _run([BIN / "cnnlab", "gui"], env)
        print("dev.py: no screen here (DISPLAY/WAYLAND_DISPLAY unset), so the main job runs headless: "
              "seed 004's ConvNet on the embedded MNIST sample. `python3 dev.py run gui` forces the app.", flush=True)
        return _run([BIN / "cnnlab", "train", *(rest or ["--out", "runs/demo"])], env)
    ensure_env("test")
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    code = _run([PY, "-m", "pytest", "-q", *rest], env)
    if code or rest:
        return code
    # the CUDA kernels again, in numba's CUDA simulator (the variable must be set before numba loads)
    return _run([PY, "-m", "pytest", "-q", "tests/cuda"], dict(env, NUMBA_ENABLE_CUDASIM="1"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
