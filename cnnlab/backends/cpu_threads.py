"""Which threads run a CPU kernel: numba's pool, the calling thread alone, or BLAS's.

numba's pool starts with a short spin before its workers sleep (`_start_numba_pool`),
without leaving an environment variable behind.

Small arrays run on the calling thread (`launch`). numba's parallel kernels wake their
worker threads at every call and wait for the slowest. On a small array the wake-up
costs more than the work: a ReLU over 16x512x1x1 took 13 us on two threads against 4 us
on one, and on a busy machine a worker that is not scheduled at once turned such calls
into milliseconds (in a ResNet-18 step, four ReLU backward passes over 16x256x2x2 took
21 ms). Below SERIAL_BELOW elements the kernel therefore runs on the calling thread
alone, as PyTorch's elementwise ops do below their grain size (32768). Only the thread
count changes, never the arithmetic: every kernel routed here gives the same bits on any
number of threads (per-element work, or per-channel sums each made by one thread).

BLAS runs on the calling thread too (`serial_blas`). OpenBLAS keeps its own pool, whose
workers spin for about 0.1 s after every call before they sleep; a training step
alternates sgemm with numba kernels every few hundred microseconds, so the spinning pool
took the cores numba's workers needed (1.2-1.6x slower steps on 2 cores, up to 10x on a
busy machine). OpenBLAS reads its spin time only when it loads, so the old fix (an
environment variable set before NumPy) worked only when cnnlab was imported before NumPy.
Instead, while a cnnlab kernel runs, NumPy's BLAS is set to one thread, and the caller's
setting comes back when the last running kernel returns: nothing in BLAS wakes, whatever
the import order, and NumPy calls outside cnnlab keep the user's thread count. The
sgemms cnnlab issues are small next to the numba work around them (measured in
benchmarks/import_order.py: one BLAS thread was faster than two in every zoo step).
"""
from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
from typing import Any, Callable, TypeVar

import numba
import numpy as np

SERIAL_BELOW = 32768   # elements a kernel reads or writes


# How long numba's OpenMP workers spin after a parallel region before they sleep, in
# libgomp's spin iterations (GOMP_SPINCOUNT; about 20 ns each on these machines, so
# 10,000 is 0.15-0.3 ms). A training step runs a hundred or so parallel kernels with tens of
# microseconds of Python between them: sleeping workers (OMP_WAIT_POLICY=PASSIVE, what
# cnnlab used before) took 60-80 us to wake at every kernel, 6-8 ms of a CIFAR ResNet step
# and most of its batch-1 time (15 ms against PyTorch's 4.7); with this spin a kernel starts
# in about 2 us. libgomp's default (300,000, several milliseconds) is what made a spinning
# pool fight OpenBLAS's and steal a busy machine's cores; the short spin bounds that.
SPIN_COUNT = 10000


def _start_numba_pool() -> None:
    """Start numba's thread pool with a short spin before its workers sleep (SPIN_COUNT),
    and leave os.environ as it was.

    libgomp reads GOMP_SPINCOUNT and OMP_WAIT_POLICY once, when it loads, which numba does
    when its threading layer starts: so the variable is set only for that moment, and left
    alone when the user set either. (OMP_WAIT_POLICY=PASSIVE used to be set at `import
    cnnlab` for good, which also changed the threads of a PyTorch imported later.) Left: a
    PyTorch imported *after* cnnlab's first kernel shares that already-loaded libgomp (same
    soname) and so spins for this long too, instead of its default several milliseconds.

    CNNLAB_THREAD_WAIT=passive makes the workers sleep at once (OMP_WAIT_POLICY=PASSIVE, the
    old behaviour) for cnnlab alone: the desktop app chooses it (gui.app.main), because there
    the spinning workers took the cores the GUI thread draws on.
    """
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        numba.get_num_threads()
        return
    wait = os.environ.get("CNNLAB_THREAD_WAIT", "spin")
    if wait not in ("spin", "passive"):
        raise ValueError(f"CNNLAB_THREAD_WAIT must be 'spin' or 'passive', got {wait!r}")
    name, value = ("GOMP_SPINCOUNT", str(SPIN_COUNT)) if wait == "spin" else ("OMP_WAIT_POLICY", "PASSIVE")
    os.environ[name] = value
    try:
        numba.get_num_threads()   # loads the threading layer (libgomp reads its settings now)
    finally:
        del os.environ[name]


_start_numba_pool()   # this module loads with the CPU backend, before its first kernel runs


def _thread_count_calls() -> tuple[Callable[[], int], Callable[[int], None]]:
    """(get, set) of the calling thread's numba thread count. numba's public pair checks that
    the pool is up and takes a process lock on every call (4-5 us a pair; `launch` makes about
    two hundred calls a training step); once the pool is up (above), the threading layer's own
    functions underneath do the same job in well under a microsecond. The public pair where a
    numba version lacks them."""
    from numba.np.ufunc import parallel

    get, set_ = getattr(parallel, "_get_num_threads", None), getattr(parallel, "_set_num_threads", None)
    if callable(get) and callable(set_) and get() == numba.get_num_threads():
        return get, set_
    return numba.get_num_threads, numba.set_num_threads


_get_threads, _set_threads = _thread_count_calls()


def launch(kernel: Callable, work: int, *args: Any) -> Any:
    """kernel(*args), on the calling thread alone when `work` is under SERIAL_BELOW."""
    if work >= SERIAL_BELOW:
        return kernel(*args)
    threads = _get_threads()
    if threads == 1:
        return kernel(*args)
    _set_threads(1)
    try:
        return kernel(*args)
    finally:
        _set_threads(threads)


# --------------------------------------------------------------------------- BLAS threads
# (get, set) symbol pairs of the OpenBLAS builds NumPy ships or links: the plain library,
# and the symbol-prefixed scipy-openblas of NumPy's wheels (64- and 32-bit integers).
_OPENBLAS_SYMBOLS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)


def _loaded_libraries() -> list[str]:
    """Paths of the shared libraries mapped into this process whose name says OpenBLAS."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
                paths = {line.split(None, 5)[-1].strip() for line in maps if "openblas" in line.lower()}
            return sorted(p for p in paths if p.startswith("/"))
        except OSError:
            return []
    # elsewhere: the library NumPy's wheel carries next to it (Windows; macOS uses Accelerate)
    here = os.path.dirname(np.__file__)
    out = []
    for folder in (here + ".libs", os.path.join(here, ".dylibs")):
        if os.path.isdir(folder):
            out += [os.path.join(folder, f) for f in os.listdir(folder) if "openblas" in f.lower()]
    return out


def _numpy_blas() -> list[tuple[Any, Any]]:
    """(get, set) thread-count functions of the OpenBLAS NumPy calls, preferring the copy in
    NumPy's own folder (a SciPy loaded next to it brings another copy cnnlab never calls)."""
    paths = _loaded_libraries()
    own = [p for p in paths if p.startswith(os.path.dirname(os.path.dirname(np.__file__))) and "numpy" in p]
    found = []
    for path in own or paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _OPENBLAS_SYMBOLS:
            get, set_ = getattr(lib, get_name, None), getattr(lib, set_name, None)
            if get is not None and set_ is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                set_.restype, set_.argtypes = None, [ctypes.c_int]
                found.append((get, set_))
                break
    return found


class _SerialBlas:
    """Context manager: BLAS on one thread inside, the caller's thread count restored after.

    Re-entrant and shared by threads: the first kernel to enter saves the counts, the last
    to leave restores them (the GUI's worker thread and its main thread may both run kernels).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: list[int] = []
        self._libs: list[tuple[Any, Any]] | None = None   # found at first use: NumPy has loaded BLAS by then

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                if self._libs is None:
                    self._libs = _numpy_blas()
                self._saved = [get() for get, _ in self._libs]
                for (_, set_), n in zip(self._libs, self._saved):
                    if n != 1:
                        set_(1)
            self._depth += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for (_, set_), n in zip(self._libs or [], self._saved):
                    if n != 1:
                        set_(n)

    def libraries(self) -> int:
        """How many BLAS libraries this controls (0 where NumPy's BLAS is not OpenBLAS)."""
        with self._lock:
            if self._libs is None:
                self._libs = _numpy_blas()
            return len(self._libs)


serial_blas = _SerialBlas()

F = TypeVar("F", bound=Callable[..., Any])


def blas_on_caller(fn: F) -> F:
    """Decorator: `fn` runs inside `serial_blas`."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with serial_blas:
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
