"""Numba flags in one place, so every kernel module compiles the same way.

`cache=True` writes compiled machine code next to the source, so a second run
starts without compiling. `nogil=True` lets the GUI's worker thread train
while the Qt event loop keeps running.
"""
import os

# numba's OpenMP threads and OpenBLAS's threads take turns in every conv
# (im2col, then sgemm). With OpenMP's default busy-waiting each pool spins while
# the other works and a conv gets ~15x slower on 2 cores; passive waiting fixes
# it. It must be set before libgomp loads, i.e. before the first parallel kernel.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# fastmath would let LLVM reorder sums, which breaks bit-for-bit agreement with
# the float64 gradient checks and with PyTorch; the kernels are memory-bound anyway.
FASTMATH = False

NJIT = dict(cache=True, nogil=True, fastmath=FASTMATH)
# Parallel kernels are cached too; tests/test_cache.py runs them in fresh processes
# with different thread counts, the case that crashed pynndescent (PR #175).
NJIT_PARALLEL = dict(NJIT, parallel=True)

# Print "compiling kernels" on the first run unless asked to be quiet.
QUIET = os.environ.get("CNNLAB_QUIET", "") not in ("", "0")
