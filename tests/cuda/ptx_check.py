"""Compile every kernel the CUDA tests launch for a real GPU, on a machine without one.

The simulator runs kernels as plain Python, so it cannot catch code that numba's CUDA
compiler rejects (a typing error, an unsupported call). tests/cuda, run in the simulator
with CNNLAB_RECORD_LAUNCHES=path, records each (kernel, argument types) launched; this
script (and a few training steps with the default launch settings, which build other kernel
variants than the tests' small ones) compiles every one of them to PTX with numba's real
CUDA target, for each compute
capability asked (sm_80 and sm_90 by default), assembles the PTX with nvJitLink to check
that no kernel spills registers to local memory, and checks that each kernel has numba's
disk cache switched on (cache=True). It needs NVVM, not a GPU: the `cuda` extra
(`pip install -e '.[cuda]'`) brings it. `python3 dev.py test` runs it after the
simulator pass, from that pass's recording.

    python tests/cuda/ptx_check.py [--cc 8.0,9.0] [--launches recorded.json]
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


class Recorder:
    """Wraps cuda_array.launch (every launch goes there) to note each (kernel, argument types) that
    ran; `save(path)` writes them as JSON. tests/cuda/conftest.py installs one for the whole test
    session when CNNLAB_RECORD_LAUNCHES is set."""

    def __init__(self, execute: bool = True):
        from cnnlab.backends import cuda_array

        self.seen: set[str] = set()
        self.module, self.original = cuda_array, cuda_array.launch

        def launch(kernel, grid, block, *args):
            # [module, kernel] or [module, factory, its arguments]: main() builds it again from these
            rebuild = getattr(kernel, "cnnlab_rebuild", None)
            who = [kernel.__module__, *rebuild] if rebuild else [kernel.__module__, kernel.__name__]
            if execute:  # first: a launch a test makes fail on purpose is left out
                self.original(kernel, grid, block, *args)
            self.seen.add(json.dumps([who, [arg_type(a) for a in args]]))

        cuda_array.launch = launch

    def save(self, path: str) -> None:
        self.module.launch = self.original
        Path(path).write_text(json.dumps([json.loads(s) for s in sorted(self.seen)], indent=0))


def arg_type(a):
    import numpy as np

    if isinstance(a, (bool, np.bool_)):
        return "bool"
    if isinstance(a, np.generic):
        return a.dtype.str
    if isinstance(a, int):
        return "int64"
    if isinstance(a, float):
        return "float64"
    if isinstance(a, tuple):
        return ["tuple", [arg_type(x) for x in a]]
    return ["array", a.dtype.descr, len(a.shape)]


# The tests shrink the launch settings (conftest.SMALL_LAUNCHES), and factories build one kernel
# per setting, so the kernels a GPU runs with the defaults come from these steps. Only the
# argument types matter here, so the kernels are not run (the simulator would take minutes
# with full-size blocks): the host side of each step runs on whatever the buffers hold.
_DEFAULT_STEPS = """
import sys
sys.path.insert(0, {here!r})
import ptx_check
import cnnlab, cnnlab.nn.functional as F
from cnnlab import _config, models, optim
_config.set_cuda(**_config.GPU_LAUNCHES)  # the simulator's own defaults are smaller (see _config)
_config.CUDA_RNG_STATES = 16  # the dropout generators' count changes no type; 65,536 take minutes to seed here
recorder = ptx_check.Recorder(execute=False)
for name, kw, shape in (("convnet", {{}}, (2, 1, 28, 28)), ("simplecnn", dict(input_size=8), (2, 3, 8, 8)),
                        ("modern", dict(in_channels=3, input_size=8, width=4, dropout=0.5), (2, 3, 8, 8))):
    for make in (lambda p: optim.SGD(p, lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True), optim.AdamW):
        cnnlab.manual_seed(0)
        model = models.create(name, **kw).to("cuda")
        opt = make(model.parameters())
        x = cnnlab.randn(*shape).to("cuda")
        loss = F.cross_entropy(model(x), cnnlab.tensor([1, 3]).to("cuda"))
        loss.backward()
        opt.step()
        loss.item()
        model.eval()
        with cnnlab.no_grad():
            model(x).argmax(1).cpu()
recorder.save({path!r})
"""


def record_launches(path: str, default_path: str) -> list:
    """Run tests/cuda, then the default-settings steps, in the simulator; their launches, merged."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", CNNLAB_RECORD_LAUNCHES=path, CNNLAB_QUIET="1")
    run = subprocess.run([sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider", "-W", "ignore"],
                         env=env)
    if run.returncode:
        print("ptx_check: some tests failed in the simulator; compiling the launches they recorded", flush=True)
    return load_launches(path) + record_default_launches(default_path)


def record_default_launches(path: str) -> list:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", CNNLAB_QUIET="1", PYTHONPATH=str(HERE.parents[1]),
               PYTHONWARNINGS="ignore")  # numba's object-mode warnings about its own random-state setup
    subprocess.run([sys.executable, "-c", _DEFAULT_STEPS.format(here=str(HERE), path=path)], env=env, check=True)
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
        items = [numba_type(i) for i in t[1]]
        return types.UniTuple(items[0], len(items)) if items and len(set(items)) == 1 else types.Tuple(items)
    descr = t[1]
    dtype = np.dtype(descr[0][1]) if len(descr) == 1 and descr[0][0] == "" else np.dtype([tuple(f) for f in descr])
    return types.Array(from_dtype(dtype), t[2], "C")


_assembler_note: list = []


def machine_code_use(ptx: str, cc) -> tuple[int, int] | None:
    """(registers per thread, bytes spilled) of PTX assembled for sm_<cc> by nvJitLink, which the
    cuda extra installs and which needs no GPU; None where it is not there."""
    import re

    try:
        from cuda.bindings import nvjitlink
    except ImportError:
        return None
    data = ptx.encode()
    try:
        handle = nvjitlink.create(2, [f"-arch=sm_{cc[0]}{cc[1]}", "-verbose"])
    except Exception as e:  # a library older than the compiler's PTX, say: not the kernel's fault
        if not _assembler_note:
            _assembler_note.append(str(e))
        return None
    try:
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel")
        nvjitlink.complete(handle)
        log = bytearray(nvjitlink.get_info_log_size(handle))
        nvjitlink.get_info_log(handle, log)
    finally:
        nvjitlink.destroy(handle)
    text = log.decode(errors="replace")
    regs = max((int(r) for r in re.findall(r"[Uu]sed (\d+) registers", text)), default=0)
    spills = sum(int(b) for b in re.findall(r"(\d+) bytes spill stores", text))
    return regs, spills


def _hashable(x):
    return tuple(_hashable(i) for i in x) if isinstance(x, list) else x


def load_launches(path: str) -> list:
    """The launches recorded at path, and at path.<worker> for each pytest-xdist worker that ran
    part of tests/cuda (tests/cuda/conftest.py writes one file per worker)."""
    files = [Path(path)] if Path(path).exists() else []
    files += sorted(Path(path).parent.glob(Path(path).name + ".gw*"))
    return [x for f in files for x in json.loads(f.read_text())]


def check_cc(cc_text: str, launches: list) -> tuple[int, list[str], int, list[str]]:
    """Compile (and assemble) every launch for one compute capability, in this process:
    (failures, report lines, kernels, kernels without the disk cache)."""
    os.environ.pop("NUMBA_ENABLE_CUDASIM", None)  # numba's real CUDA target (imported below)
    out: list[str] = []
    try:
        from numba import cuda
        from numba.cuda import dispatcher
        from numba.cuda.cudadrv import nvvm

        nvvm.NVVM()  # loads libNVVM now, so that a missing library is one clear line, not one per kernel
    except Exception as e:
        from cnnlab.cuda import explain

        return 1, [f"ptx_check: cannot compile for a GPU here: {explain(e)}"], 0, []

    import cnnlab.backends.cuda  # noqa: F401 - loads every module of the CUDA backend

    kernels = {}
    for who, argtypes in launches:
        module = importlib.import_module(who[0])
        kernel = getattr(module, who[1]) if len(who) == 2 else getattr(module, who[1])(*_hashable(who[2]))
        kernels[json.dumps(who)] = kernel
    uncached = sorted(w for w, k in kernels.items() if type(k._cache).__name__ != "CUDACache")
    cc = tuple(int(v) for v in cc_text.strip().split("."))

    class NoGPU:  # device functions compile for "the current device": make it the one asked for
        compute_capability = cc

    dispatcher.get_current_device = NoGPU
    failed = spilled = assembled = 0
    most = (0, None)
    for who, argtypes in launches:
        sig = tuple(numba_type(t) for t in argtypes)
        try:
            ptx, _ = cuda.compile_ptx(kernels[json.dumps(who)].py_func, sig, cc=cc)
        except Exception as e:  # report them all, not just the first
            failed += 1
            out.append(f"FAILED sm_{cc[0]}{cc[1]} {who}{sig}:\n  {type(e).__name__}: "
                       f"{str(e).splitlines()[0] if str(e) else ''}\n")
            continue
        use = machine_code_use(ptx, cc)
        if use is None:
            continue
        assembled += 1
        most = max(most, (use[0], who))
        if use[1]:
            spilled += 1
            out.append(f"SPILLS sm_{cc[0]}{cc[1]} {who}{sig}: {use[0]} registers, {use[1]} bytes spilled to local "
                       f"memory (lower CUDA_TILE_OUTPUTS or CUDA_CONV_CHANNELS/TAPS)\n")
    out.append(f"{len(launches) - failed} of {len(launches)} kernel specialisations ({len(kernels)} kernels) "
               f"compile to PTX for sm_{cc[0]}{cc[1]}")
    out.append(f"{assembled - spilled} of {assembled} assemble for sm_{cc[0]}{cc[1]} without register spills "
               f"(most registers: {most[0]}, {most[1]})" if assembled else _assembler_note_line())
    return failed + spilled, out, len(kernels), uncached


def _assembler_note_line() -> str:
    return (f"ptx_check: not checking register spills, nvJitLink is unusable here: {_assembler_note[0]}"
            if _assembler_note else "ptx_check: not checking register spills (cuda.bindings.nvjitlink is missing)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cc", default="8.0,9.0", help="compute capabilities to compile for (default 8.0,9.0)")
    parser.add_argument("--launches", help="a JSON file of launches already recorded (skips the test run)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        if args.launches:
            launches = load_launches(args.launches)
            if not launches:
                print(f"ptx_check: {args.launches} was not written: did tests/cuda run in the simulator "
                      "(NUMBA_ENABLE_CUDASIM=1) with CNNLAB_RECORD_LAUNCHES set?")
                return 1
            launches += record_default_launches(os.path.join(d, "defaults.json"))
        else:
            launches = record_launches(os.path.join(d, "launches.json"), os.path.join(d, "defaults.json"))
    launches = [json.loads(t) for t in sorted({json.dumps(x) for x in launches})]
    ccs = [c for c in args.cc.split(",") if c.strip()]
    # one process per compute capability where there are cores for it: compiling is single-threaded
    # and takes a minute or two per capability
    workers = min(len(ccs), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(check_cc, ccs, [launches] * len(ccs)))
    else:
        results = [check_cc(c, launches) for c in ccs]
    failures = 0
    printed: set[str] = set()
    for failed, lines, _, _ in results:
        for line in lines:
            if line not in printed:  # a library missing is said once, not once per capability
                print(line, flush=True)
                printed.add(line)
        failures += failed
    n_kernels, uncached = results[0][2], results[0][3]
    if not n_kernels:  # NVVM could not be loaded: said above, nothing was compiled
        return 1
    for w in uncached:
        print(f"NOT CACHED {w}: compiled again in every process (use @cuda.jit(**cfg.CUDA_JIT))")
    print(f"{n_kernels - len(uncached)} of {n_kernels} kernels use numba's disk cache (cache=True)")
    return 1 if failures or uncached else 0


if __name__ == "__main__":
    sys.exit(main())
