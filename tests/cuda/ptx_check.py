"""Compile every kernel the CUDA tests launch for a real GPU, on a machine without one.

The simulator runs kernels as plain Python, so it cannot catch code that numba's CUDA
compiler rejects (a typing error, an unsupported call). This script runs tests/cuda in
the simulator recording each (kernel, argument types) launched, then compiles every one
of them to PTX with numba's real CUDA target. It needs NVVM, not a GPU:
`pip install numba-cuda nvidia-cuda-nvcc-cu12 nvidia-cuda-nvrtc-cu12` (or a CUDA toolkit).

    python tests/cuda/ptx_check.py [--cc 8.0]
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def record_launches(path: str) -> list:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", CNNLAB_RECORD_LAUNCHES=path, CNNLAB_QUIET="1")
    subprocess.run([sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider", "-W", "ignore"],
                   env=env, check=True)
    return json.loads(Path(path).read_text())


def numba_type(t):
    import numpy as np
    from numba import from_dtype, types

    if t == "bool":
        return types.boolean
    if t in ("int64", "float64"):
        return getattr(types, t)
    if isinstance(t, str):
        return from_dtype(np.dtype(t))
    if t[0] == "tuple":
        return types.UniTuple(types.int64, t[1])
    descr = t[1]
    dtype = np.dtype(descr[0][1]) if len(descr) == 1 and descr[0][0] == "" else np.dtype([tuple(f) for f in descr])
    return types.Array(from_dtype(dtype), t[2], "C")


def _hashable(x):
    return tuple(_hashable(i) for i in x) if isinstance(x, list) else x


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cc", default="7.5", help="compute capability to compile for (default 7.5)")
    parser.add_argument("--launches", help="a JSON file of launches already recorded (skips the test run)")
    args = parser.parse_args()
    if args.launches:
        launches = json.loads(Path(args.launches).read_text())
    else:
        with tempfile.TemporaryDirectory() as d:
            launches = record_launches(os.path.join(d, "launches.json"))
    os.environ.pop("NUMBA_ENABLE_CUDASIM", None)  # this process: numba's real CUDA target (imported below)
    from numba import cuda
    from numba.cuda import dispatcher

    import cnnlab.backends.cuda  # noqa: F401 - loads every module of the CUDA backend

    cc = tuple(int(v) for v in args.cc.split("."))

    class NoGPU:  # device functions compile for "the current device": make it the one asked for
        compute_capability = cc

    dispatcher.get_current_device = NoGPU
    failures = 0
    for who, argtypes in launches:
        module = importlib.import_module(who[0])
        kernel = getattr(module, who[1]) if len(who) == 2 else getattr(module, who[1])(*_hashable(who[2]))
        sig = tuple(numba_type(t) for t in argtypes)
        try:
            cuda.compile_ptx(kernel.py_func, sig, cc=cc)
        except Exception as e:  # report them all, not just the first
            failures += 1
            print(f"FAILED {who}{sig}:\n  {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}\n")
    print(f"{len(launches) - failures} of {len(launches)} kernel specialisations compile to PTX for cc {args.cc}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
