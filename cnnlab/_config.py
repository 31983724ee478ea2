"""Numba flags in one place, so every kernel module compiles the same way.

`cache=True` writes compiled machine code next to the source, so a second run
starts without compiling. `nogil=True` lets the GUI's worker thread train
while the Qt event loop keeps running.
"""
import os

from numba.core import config as _numba_config  # only numba's settings (NUMBA_ENABLE_CUDASIM)

# cnnlab sets no environment variable: one set at import would reach every other library
# in the process (OMP_WAIT_POLICY=PASSIVE, once set here, slowed PyTorch's threads too),
# and one read when a library loads works only in one import order. What they did is now
# done at run time, for cnnlab's own calls only: OpenBLAS runs on the calling thread while
# a cnnlab kernel runs (backends/cpu_threads.serial_blas), so its spinning pool no longer
# takes the cores from numba's, whichever of NumPy and cnnlab was imported first.


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

# Every CUDA kernel (cuda_*.py) compiles with these flags. cache=True keeps the compiled
# code in numba's disk cache (__pycache__, or NUMBA_CACHE_DIR), so only a machine's first
# run compiles. Kernels built by a factory are closures: numba files them under their
# pickled cells, so the cells should be plain values (ints, strings, dtypes, numba types);
# a function's pickle can change with how the process started, and then every process
# would miss the cache (tests/cuda/test_cuda_cache.py compares the keys of two processes).
CUDA_JIT = dict(cache=True)

# Print "compiling kernels" on the first run unless asked to be quiet.
QUIET = os.environ.get("CNNLAB_QUIET", "") not in ("", "0")

# CUDA launch shapes (cnnlab/backends/cuda_array.py), read at every launch so that tests
# can shrink them and make tiny arrays span several blocks.
CUDA_THREADS = 256          # threads per block of flat kernels (elementwise, one row, one channel)
CUDA_REDUCE_THREADS = 256   # threads that share one reduction in shared memory (a power of two)
CUDA_BLOCK_2D = (16, 8)     # (x, y) threads per block of conv/pool kernels, one output cell each
CUDA_CONV_CHANNELS = 4      # channels one conv thread accumulates, so each input load feeds 4 FMAs
CUDA_CONV_TAPS = 9          # kernel taps one weight-gradient pass accumulates (3x3 in one pass)
CUDA_TILE = 16              # matmul: TILE x TILE threads per block, and the depth of its shared-memory tiles
CUDA_TILE_OUTPUTS = (4, 4)  # matmul: (rows, columns) of the outputs each thread keeps in registers
CUDA_RNG_STATES = 1 << 16   # xoroshiro128+ generators for dropout masks, kept on the device
CUDA_POOL_BYTES = 1 << 30   # freed device buffers kept for reuse (each step allocates the same sizes)

# numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1, for running without a GPU) runs every thread of a
# block as a Python thread and every block one after another: with the GPU shapes above a small
# training step starts hundreds of thousands of threads and takes many minutes. Under the simulator
# the defaults are therefore warp-sized blocks (same kernels, same results up to float rounding of
# the sums' order); assigning a setting or set_cuda() still overrides them.
GPU_LAUNCHES = dict(CUDA_THREADS=CUDA_THREADS, CUDA_REDUCE_THREADS=CUDA_REDUCE_THREADS, CUDA_BLOCK_2D=CUDA_BLOCK_2D,
                    CUDA_CONV_CHANNELS=CUDA_CONV_CHANNELS, CUDA_CONV_TAPS=CUDA_CONV_TAPS, CUDA_TILE=CUDA_TILE,
                    CUDA_TILE_OUTPUTS=CUDA_TILE_OUTPUTS, CUDA_RNG_STATES=CUDA_RNG_STATES)
SIMULATOR_LAUNCHES = dict(CUDA_THREADS=32, CUDA_REDUCE_THREADS=32, CUDA_BLOCK_2D=(8, 4), CUDA_TILE=4,
                          CUDA_TILE_OUTPUTS=(2, 2), CUDA_RNG_STATES=256)

if _numba_config.ENABLE_CUDASIM:
    globals().update(SIMULATOR_LAUNCHES)

# What each CUDA setting costs per block, checked against CUDA's documented limits (1,024 threads,
# 48 KiB of static shared memory, 64K registers per block, 255 per thread) when this module loads,
# by set_cuda(), and before the first launch after any change (cnnlab/backends/cuda_launch.py); on a
# GPU the first launch of each kernel also checks its real register and shared-memory use.
_REGS_BASE = 40  # registers a conv/pool thread needs besides its float64 accumulators (2 registers each)
_GEMM_REGS_BASE = 64  # a matmul thread's addresses and loads (ptxas: 96-128 registers for 4 x 4 outputs in all)


def check_cuda_settings(max_threads: int = 1024, max_shared: int = 48 * 1024) -> None:
    """Raise ValueError naming the CUDA_* setting that no CUDA GPU could launch."""
    def bad(name: str, why: str) -> ValueError:
        return ValueError(f"cnnlab._config.{name} = {globals()[name]!r} cannot run on a CUDA GPU: {why}")

    def count(name: str) -> int:
        v = globals()[name]
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise bad(name, "it must be a positive integer")
        return v

    threads = count("CUDA_THREADS")
    if threads > max_threads:
        raise bad("CUDA_THREADS", f"a block holds at most {max_threads} threads")
    reduce_threads = count("CUDA_REDUCE_THREADS")
    if reduce_threads > max_threads or reduce_threads & (reduce_threads - 1):
        raise bad("CUDA_REDUCE_THREADS", f"the tree reductions need a power of two up to {max_threads}")
    block = tuple(CUDA_BLOCK_2D)
    if len(block) != 2 or any(not isinstance(b, int) or b < 1 for b in block):
        raise bad("CUDA_BLOCK_2D", "it must be two positive integers (x, y)")
    channels, taps, tile = count("CUDA_CONV_CHANNELS"), count("CUDA_CONV_TAPS"), count("CUDA_TILE")
    outputs = tuple(CUDA_TILE_OUTPUTS)
    if len(outputs) != 2 or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in outputs):
        raise bad("CUDA_TILE_OUTPUTS", "it must be two positive integers (rows, columns)")
    rm, rn = outputs
    tile_shared = tile * (tile * (rm + rn) + 2) * 8  # a tile of each operand, each padded by one column
    tile_regs = _GEMM_REGS_BASE + 2 * (rm * rn + rm + rn)  # accumulators, one row and column of operands
    checks = [
        ("CUDA_BLOCK_2D", block[0] * block[1] > max_threads, f"{block[0] * block[1]} threads per block, "
         f"over {max_threads}"),
        ("CUDA_CONV_CHANNELS", (_REGS_BASE + 2 * channels) * block[0] * block[1] > 65536
         or _REGS_BASE + 2 * channels > 255, f"about {_REGS_BASE + 2 * channels} registers per thread "
         f"x {block[0] * block[1]} threads is over the 255 per thread or 65,536 per block a GPU has"),
        ("CUDA_CONV_TAPS", taps * reduce_threads * 8 > max_shared, f"the weight gradient's shared memory, "
         f"{taps} taps x {reduce_threads} threads x 8 bytes, is over {max_shared:,} bytes per block"),
        ("CUDA_CONV_TAPS", (_REGS_BASE + 2 * taps) * reduce_threads > 65536 or _REGS_BASE + 2 * taps > 255,
         f"about {_REGS_BASE + 2 * taps} registers per thread x {reduce_threads} threads is over what a GPU has"),
        ("CUDA_TILE", tile * tile > max_threads, f"{tile} x {tile} threads per block, over {max_threads}"),
        ("CUDA_TILE_OUTPUTS", tile % rm or tile % rn, f"CUDA_TILE ({tile}) must be a multiple of both (the "
         f"threads load each operand's tile in whole rows or columns of threads)"),
        ("CUDA_TILE_OUTPUTS", tile_shared > max_shared, f"the matmul's float64 tiles, {tile} deep and "
         f"{tile} x {rm} rows + {tile} x {rn} columns wide, need {tile_shared:,} bytes of shared memory, over "
         f"{max_shared:,}"),
        ("CUDA_TILE_OUTPUTS", tile_regs > 255 or tile_regs * tile * tile > 65536, f"{rm} x {rn} float64 outputs "
         f"per thread need about {tile_regs} registers per thread x {tile * tile} threads, over the 255 per "
         f"thread or 65,536 per block a GPU has"),
    ]
    for name, failed, why in checks:
        if failed:
            raise bad(name, why)
    count("CUDA_RNG_STATES")
    if not isinstance(CUDA_POOL_BYTES, int) or CUDA_POOL_BYTES < 0:
        raise bad("CUDA_POOL_BYTES", "it must be a byte count, 0 or more")


def set_cuda(**values) -> None:
    """Change CUDA launch settings together, e.g. set_cuda(CUDA_THREADS=128); rejected (and nothing
    changed) when a GPU could not launch them."""
    unknown = [k for k in values if not k.startswith("CUDA_") or k not in globals()]
    if unknown:
        raise ValueError(f"unknown CUDA setting(s): {', '.join(unknown)}")
    old = {k: globals()[k] for k in values}
    globals().update(values)
    try:
        check_cuda_settings()
    except ValueError:
        globals().update(old)
        raise


check_cuda_settings()
