"""Kernels are cached across processes, and the first run says it is compiling.

What a machine without a GPU can prove, and what it cannot:

- proven here: every kernel (module-level, and those the factories build) is compiled with
  numba's disk cache switched on (`cache=True`), and the key numba files each one under
  (its code, and for a factory's closure the pickled cells) is the same in two fresh
  processes, so a second process looks up the entries the first one wrote; the compile
  notice prints once, only when numba has a kernel in neither memory nor its cache index
  (against stand-ins with numba's attribute names, checked to exist on real dispatchers);
  the simulator, which compiles nothing, prints no notice.
- not provided without a GPU: that numba writes and then loads the entries (saving needs a
  cubin, which needs the driver). `test_a_second_process_compiles_nothing` does that on a
  GPU machine; tests/cuda/ptx_check.py shows every cached kernel compiles for sm_80/sm_90.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnnlab.backends import cuda_launch
from cuda_twins import SIMULATOR

ROOT = Path(__file__).resolve().parents[2]

# Run without the simulator: numba's real CUDA target builds dispatchers without a GPU.
_KEYS = textwrap.dedent("""
    import hashlib, importlib, pkgutil
    import cnnlab.backends.cuda
    from numba.cuda.dispatcher import CUDADispatcher
    try:
        from numba.cuda.serialize import dumps
    except ImportError:
        from numba.core.serialize import dumps
    from cnnlab.backends import cuda_array as A, cuda_math as M

    kernels = []
    for info in pkgutil.iter_modules(cnnlab.backends.__path__):
        if info.name.startswith("cuda_"):
            module = importlib.import_module("cnnlab.backends." + info.name)
            kernels += [(f"{info.name}.{n}", v) for n, v in sorted(vars(module).items())
                        if isinstance(v, CUDADispatcher) and not v.targetoptions.get("device")]
    built = [("add", "same"), ("less", "broadcast"), ("bitwise_or", "array_scalar"), ("divide", "scalar_array")]
    kernels += [("binary(" + ",".join(args) + ")", A._binary_kernel(*args)) for args in built]
    kernels += [(f"unary({op})", A._unary_kernel(op)) for op in ("copy", "exp", "invert")]
    kernels += [("gemm", M._gemm_kernel(16, 4, 4, "<f4")), ("sum", M._sum_kernel("<f8", 256)),
                ("max", M._max_kernel("<f4", 256))]
    h = lambda b: hashlib.sha256(b).hexdigest()[:16]
    for name, k in kernels:
        f = k.py_func
        cells = tuple(c.cell_contents for c in f.__closure__ or ())
        cache_file = getattr(k._cache, "_cache_file", None)
        internals = all(hasattr(x, a) for x, a in ((k, "overloads"), (k, "targetctx"), (k, "typeof_pyval"),
                        (k._cache, "_index_key"), (cache_file, "_load_index")))
        print(name, type(k._cache).__name__, internals, f.__qualname__,
              h(f.__code__.co_code), h(dumps(cells)))
""")


def _cache_keys() -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", _KEYS], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.splitlines()


@pytest.mark.without_cuda
def test_every_kernel_is_cached_under_a_key_that_survives_the_process():
    first, second = _cache_keys(), _cache_keys()
    assert len(first) >= 20, first
    for line in first:
        name, cache_type, internals = line.split()[:3]
        assert cache_type == "CUDACache", f"{name} is not cached across processes (cache=True): {line}"
        assert internals == "True", f"numba's dispatcher lacks what cuda_launch.will_compile reads: {line}"
    assert first == second  # same code and closure cells in a fresh process: the same cache entries


class _Index:
    def __init__(self, keys):
        self.keys = keys

    def _load_index(self):
        return {k: "file.nbc" for k in self.keys}


class _Cache:
    def __init__(self, keys):
        self._cache_file = _Index(keys)

    def _index_key(self, sig, codegen):
        return ("key", sig)


class _Dispatcher:
    """The attributes of numba's CUDADispatcher that will_compile reads (checked to exist above)."""

    targetctx = type("Ctx", (), {"codegen": lambda self: None})()

    def __init__(self, in_memory=(), on_disk=()):
        self.overloads = {sig: object() for sig in in_memory}
        self._cache = _Cache([("key", sig) for sig in on_disk])


@pytest.mark.without_cuda
def test_the_compile_notice_prints_once_and_only_for_a_real_compile(monkeypatch):
    monkeypatch.setattr(cuda_launch, "_notice", {"printed": False})
    monkeypatch.setattr(cuda_launch.cfg, "QUIET", False)
    err = io.StringIO()
    sig = ("float32[::1]",)
    cuda_launch.before_compile(_Dispatcher(in_memory=[sig]), sig, err)   # compiled in this process already
    cuda_launch.before_compile(_Dispatcher(on_disk=[sig]), sig, err)     # in the disk cache: loaded, not compiled
    assert err.getvalue() == ""
    cuda_launch.before_compile(_Dispatcher(on_disk=[("int64",)]), sig, err)  # cached for other types only
    cuda_launch.before_compile(_Dispatcher(), sig, err)
    assert err.getvalue() == cuda_launch.NOTICE + "\n"


@pytest.mark.without_cuda
def test_no_notice_when_quiet(monkeypatch):
    monkeypatch.setattr(cuda_launch, "_notice", {"printed": False})
    monkeypatch.setattr(cuda_launch.cfg, "QUIET", True)
    err = io.StringIO()
    cuda_launch.before_compile(_Dispatcher(), ("float32",), err)
    assert err.getvalue() == ""


_STEP = textwrap.dedent("""
    import numpy as np, cnnlab, cnnlab.nn as nn, cnnlab.nn.functional as F
    from cnnlab import optim
    from cnnlab.backends import cuda_array
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3)).to("cuda")
    opt = optim.SGD(model.parameters(), lr=0.1)
    x = cnnlab.from_numpy(np.ones((2, 1, 4, 4), np.float32)).to("cuda")
    loss = F.cross_entropy(model(x), cnnlab.tensor([0, 2]).to("cuda"))
    loss.backward()
    opt.step()
    print("loss", loss.item())
    if not cnnlab.cuda.is_simulator():
        import gc
        from numba.cuda.dispatcher import CUDADispatcher
        misses = sum(sum(d._cache_misses.values()) for d in gc.get_objects() if isinstance(d, CUDADispatcher))
        print("compiled", misses)
""")


def _step_process(cache_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=str(cache_dir))
    env.pop("CNNLAB_QUIET", None)
    return subprocess.run([sys.executable, "-c", _STEP], env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(not SIMULATOR, reason="the simulator's case; on a GPU see test_a_second_process_compiles_nothing")
def test_a_simulated_step_prints_no_compile_notice(tmp_path):
    """The simulator runs kernels as Python and compiles nothing, so it must not claim to."""
    out = _step_process(tmp_path)
    assert out.returncode == 0 and "loss" in out.stdout, out.stderr[-2000:]
    assert "compiling CUDA kernels" not in out.stderr


@pytest.mark.skipif(SIMULATOR, reason="needs a real GPU: the simulator compiles nothing")
def test_a_second_process_compiles_nothing(tmp_path):
    first = _step_process(tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stderr.count(cuda_launch.NOTICE) == 1, first.stderr
    assert "compiled 0" not in first.stdout
    second = _step_process(tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert cuda_launch.NOTICE not in second.stderr
    assert "compiled 0" in second.stdout, second.stdout
