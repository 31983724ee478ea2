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

# The other half of the same contention: after every sgemm OpenBLAS's workers spin
# for 2**28 cycles (~0.1 s) before sleeping, so the numba kernel that follows a
# Linear layer ran on half the cores (the modern net's step took 140 ms instead of
# 95). 2**16 cycles (~20 us) still covers back-to-back sgemms. OpenBLAS reads this
# when NumPy loads it: importing cnnlab before NumPy (or exporting the variable)
# makes it count; the CLI and the app always do.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")


def _keep_freed_memory() -> None:
    """Let glibc reuse freed large blocks instead of unmapping them.

    Every training step allocates the same multi-megabyte temporaries (im2col
    columns, activations, gradients). By default glibc hands each one back to
    the kernel and maps fresh zeroed pages next step; in a VM those page faults
    made a small conv 4x slower than its arithmetic. Raising the mmap and trim
    thresholds keeps the pages in the heap for reuse. Set CNNLAB_MALLOC_TUNING=0
    to leave malloc alone.
    """
    if os.environ.get("CNNLAB_MALLOC_TUNING", "1") == "0" or not os.sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 << 20)   # M_MMAP_THRESHOLD: blocks below 256 MB come from the heap
        libc.mallopt(-1, 1 << 30)     # M_TRIM_THRESHOLD: keep up to 1 GB of freed heap
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        pass


_keep_freed_memory()

# ---------------------------------------------------------------------------
# fastmath: every choice in one place, each with its reason. Kernels import the
# dict they compile with; none writes its own fastmath flags.
# ---------------------------------------------------------------------------

# Off by default: fastmath would let LLVM reorder sums, which breaks bit-for-bit
# agreement with the float64 gradient checks and with PyTorch; most kernels are
# memory-bound anyway, so there is little to win.
FASTMATH = False

NJIT = dict(cache=True, nogil=True, fastmath=FASTMATH)
# Parallel kernels are cached too; tests/test_cache.py runs them in fresh processes
# with different thread counts, the case that crashed pynndescent (PR #175).
NJIT_PARALLEL = dict(NJIT, parallel=True)

# Batch norm's per-channel sums (cpu_nn.py) are float64 and may be reassociated
# ('reassoc', nothing else of fastmath), so LLVM keeps several vector partial sums
# instead of one serial chain of dependent adds (~4x faster; the float64 rounding
# difference never reaches the float32 results in practice, and a given build
# always sums in the same order).
NJIT_SUMS = dict(NJIT_PARALLEL, fastmath={"reassoc"})

# The direct 3x3 convolution (cpu_conv.py) lets LLVM fuse each multiply-add into
# one FMA ('contract'): it is compute-bound, and an FMA rounds once where a multiply
# then an add round twice, so results differ from a sequential loop by float32
# rounding, not more, and stay deterministic.
NJIT_FMA = dict(NJIT_PARALLEL, fastmath={"contract"})

# Its weight gradient also reassociates ('reassoc') the nine running sums per
# channel pair, so they vectorise across positions; same bound, same determinism
# (the chunking over images is fixed, not tied to the thread count).
NJIT_FMA_SUMS = dict(NJIT_PARALLEL, fastmath={"contract", "reassoc"})

# The CUDA kernels (cuda_*.py) keep numba.cuda's default, no fastmath: tests/cuda
# checks each one against its CPU twin, and fast approximate exp/log/division
# would move softmax and the losses off the CPU's values.

# Print "compiling kernels" on the first run unless asked to be quiet.
QUIET = os.environ.get("CNNLAB_QUIET", "") not in ("", "0")

# CUDA launch shapes (cnnlab/backends/cuda_array.py), read at every launch so that tests
# can shrink them and make tiny arrays span several blocks.
CUDA_THREADS = 256          # threads per block of flat kernels (elementwise, one row, one channel)
CUDA_REDUCE_THREADS = 256   # threads that share one reduction in shared memory (a power of two)
CUDA_BLOCK_2D = (16, 8)     # (x, y) threads per block of conv/pool kernels, one output cell each
CUDA_CONV_CHANNELS = 4      # channels one conv thread accumulates, so each input load feeds 4 FMAs
CUDA_CONV_TAPS = 9          # kernel taps one weight-gradient pass accumulates (3x3 in one pass)
CUDA_TILE = 16              # matmul: TILE x TILE threads per block and shared-memory tiles
CUDA_RNG_STATES = 1 << 16   # xoroshiro128+ generators for dropout masks, kept on the device
CUDA_POOL_BYTES = 1 << 30   # freed device buffers kept for reuse (each step allocates the same sizes)
