"""The machine code a GPU would run for the conv kernels, read without a GPU.

Compiles each conv kernel (forward, input gradient, weight gradient; 32- and 64-bit indices)
for sm_90 with numba's CUDA compiler, assembles it with nvJitLink (the `cuda` extra), and
disassembles the cubin with NVIDIA's nvdisasm (`pip install nvidia-cuda-nvdisasm`). For the
innermost loop that holds FMAs it prints the SASS instructions per FFMA and the loads among
them: a kernel that spends 27 instructions on each multiply-add cannot come near the chip's
FMA rate, whatever its memory does. A static count, not a timing: branches skipped at run
time are counted too.

    python benchmarks/cuda_sass.py [--per-thread 4] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.pop("NUMBA_ENABLE_CUDASIM", None)  # numba's real CUDA target, before numba is imported
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def nvdisasm() -> str | None:
    found = shutil.which("nvdisasm")
    if found:
        return found
    try:
        import nvidia
    except ImportError:
        return None
    for root in nvidia.__path__:
        for path in Path(root).glob("**/bin/nvdisasm"):
            return str(path)
    return None


def cubin(ptx: str, arch: str) -> tuple[bytes, int]:
    """PTX assembled by nvJitLink: (cubin, registers per thread)."""
    from cuda.bindings import nvjitlink

    handle = nvjitlink.create(2, [f"-arch={arch}", "-verbose"])
    try:
        data = ptx.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel")
        nvjitlink.complete(handle)
        out = bytearray(nvjitlink.get_linked_cubin_size(handle))
        nvjitlink.get_linked_cubin(handle, out)
        log = bytearray(nvjitlink.get_info_log_size(handle))
        nvjitlink.get_info_log(handle, log)
    finally:
        nvjitlink.destroy(handle)
    regs = re.findall(r"[Uu]sed (\d+) registers", log.decode(errors="replace"))
    return bytes(out), int(regs[0]) if regs else 0


def innermost_fma_loop(sass: str) -> list[str]:
    """The shortest stretch from a label to a branch back to it that holds an FFMA."""
    lines: list[str] = []
    labels: dict[str, int] = {}
    for raw in sass.splitlines():
        m = re.match(r"^(\.L_x_\d+):", raw.strip())
        if m:
            labels[m.group(1)] = len(lines)
            continue
        m = re.match(r"^\s+/\*[0-9a-f]+\*/\s+(.*?)\s*;", raw)
        if m:
            lines.append(re.sub(r"^@!?U?P\w+\s+", "", m.group(1)))
    best: list[str] = []
    for k, ins in enumerate(lines):
        m = re.search(r"BRA\s+(?:!?U?P\w+,\s*)?`\((\.L_x_\d+)\)", ins)  # BRA `(L)` or BRA P4, `(L)`
        if m and labels.get(m.group(1), k) < k:
            body = lines[labels[m.group(1)]:k + 1]
            if any(b.startswith("FFMA") for b in body) and (not best or len(body) < len(best)):
                best = body
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-thread", type=int, default=4, help="output channels per conv thread (CUDA_CONV_CHANNELS)")
    parser.add_argument("--arch", default="sm_90")
    parser.add_argument("--keep", help="a folder to keep each kernel's PTX and SASS in")
    args = parser.parse_args()
    tool = nvdisasm()
    if tool is None:
        print("cuda_sass: nvdisasm not found: pip install nvidia-cuda-nvdisasm")
        return 1
    from numba import cuda, types
    from numba.cuda import dispatcher

    cc = (int(args.arch[3]), int(args.arch[4:]))

    class NoGPU:  # compile for the architecture asked, not "the current device"
        compute_capability = cc

    dispatcher.get_current_device = NoGPU
    from cnnlab.backends import cuda_conv

    f32 = types.Array(types.float32, 1, "C")
    per = args.per_thread
    print(f"{'kernel':<28}{'regs':>6}{'loop instr':>12}{'FFMA':>6}{'loads':>7}{'instr/FFMA':>12}")
    for wide in (False, True):
        i = types.int64 if wide else types.int32
        dims = types.UniTuple(i, 9)
        kernels = [
            ("forward", cuda_conv._conv_kernel("forward", per, "<f4", wide, True),
             (f32, f32, f32, types.boolean, f32, dims) + (i,) * 8),
            ("forward, weights unstaged", cuda_conv._conv_kernel("forward", per, "<f4", wide, False),
             (f32, f32, f32, types.boolean, f32, dims) + (i,) * 8),
            ("input gradient", cuda_conv._conv_kernel("input_grad", per, "<f4", wide, True),
             (f32, f32, f32, dims) + (i,) * 12),
            ("input gradient, unstaged", cuda_conv._conv_kernel("input_grad", per, "<f4", wide, False),
             (f32, f32, f32, dims) + (i,) * 12),
            ("weight gradient 3x3", cuda_conv._conv_weight_grad_kernel(9, 3, 3, 4, 256, "<f4", wide),
             (f32, f32, types.Array(types.float32, 4, "C"), f32, types.boolean, types.Array(types.float64, 4, "C"),
              types.Array(types.int32, 1, "C"), dims) + (i,) * 8),
        ]
        for name, kernel, sig in kernels:
            ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=cc)
            binary, regs = cubin(ptx, args.arch)
            with tempfile.TemporaryDirectory() as d:
                path = Path(d) / "k.cubin"
                path.write_bytes(binary)
                sass = subprocess.run([tool, "-c", str(path)], capture_output=True, text=True, check=True).stdout
            if args.keep:
                stem = Path(args.keep) / f"{name.replace(' ', '_')}_{64 if wide else 32}"
                stem.parent.mkdir(parents=True, exist_ok=True)
                stem.with_suffix(".ptx").write_text(ptx)
                stem.with_suffix(".sass").write_text(sass)
            body = innermost_fma_loop(sass)
            ffma = sum(b.startswith("FFMA") for b in body)
            loads = sum(b.startswith("LDG") for b in body)
            label = f"{name}, {64 if wide else 32}-bit"
            print(f"{label:<28}{regs:>6}{len(body):>12}{ffma:>6}{loads:>7}{len(body) / max(ffma, 1):>12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
