"""A/B of the CPU convolution paths, in one process, alternating, against the machine's sgemm.

    .venv/bin/python benchmarks/bench_conv_paths.py [--rounds 15] [--only s2]

For each shape (batch 64) it times the path cnnlab chooses ("engine": the direct 3x3 pass,
the stride-2 parity-plane pass, or the 1x1 product) against im2col + sgemm for the same
convolution and, for 3x3 kernels, the direct pass forced whatever the plane size ("direct":
what sets cpu_conv's size rules), forward and forward+backward, alternating the two every round, and prints
medians and GFLOP/s. The sgemm peak is NumPy's float32 matmul of 2048x2048 matrices with
OpenBLAS's default threads (its best case: large, square, no cnnlab around it), the fastest
of a few at the start; since this VM's speed drifts by up to 2x within minutes, every round
also times one such sgemm, and the last column is each round's convolution against its own
round's sgemm, the median over the rounds (the same conditions for both). Issue 17's
targets: the 3x3 stride-1 row at >= 80% of that peak; strided and 1x1 stride-2 rows on a
fast path. OPENBLAS_CORETYPE set on a machine slows sgemm: unset it (bench_engine.py does).
CNNLAB_CONV_TILED=1 or 0 runs the direct paths through the register-tiled float32 kernels
or the scalar ones (by default: tiled where the CPU has AVX-512).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cnnlab  # noqa: E402,F401
import numpy as np  # noqa: E402
from cnnlab.backends import cpu_conv  # noqa: E402
from cnnlab.backends.cpu_threads import serial_blas  # noqa: E402

# (name, x shape, out channels, kernel, stride, padding)
SHAPES = [
    ("3x3 s1 64x16x28x28->32 (issue 17)", (64, 16, 28, 28), 32, 3, 1, 1),
    ("3x3 s1 64x32x16x16->64 (VGG stage 2)", (64, 32, 16, 16), 64, 3, 1, 1),
    ("3x3 s1 64x64x8x8->64 (ResNet block 3)", (64, 64, 8, 8), 64, 3, 1, 1),
    ("3x3 s1 64x32x7x7->32", (64, 32, 7, 7), 32, 3, 1, 1),
    ("3x3 s1 64x64x4x4->64", (64, 64, 4, 4), 64, 3, 1, 1),
    ("3x3 s2 64x16x32x32->32 (ResNet block 2)", (64, 16, 32, 32), 32, 3, 2, 1),
    ("3x3 s2 64x32x16x16->64 (ResNet block 3)", (64, 32, 16, 16), 64, 3, 2, 1),
    ("1x1 s2 64x16x32x32->32 (shortcut 2)", (64, 16, 32, 32), 32, 1, 2, 0),
    ("1x1 s2 64x32x16x16->64 (shortcut 3)", (64, 32, 16, 16), 64, 1, 2, 0),
]


_SGEMM = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)


def sgemm_seconds() -> float:
    """One 2048^3 sgemm, then a pause: OpenBLAS's worker thread spins for ~0.1-0.2 s after a
    call, and a convolution timed meanwhile shares its core (it measured 2x slower)."""
    t = _timed(lambda: _SGEMM @ _SGEMM)
    time.sleep(0.3)
    return t


def sgemm_peak(rounds: int) -> float:
    sgemm_seconds()
    best = min(sgemm_seconds() for _ in range(max(3, rounds // 3)))
    return 2 * 2048 ** 3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def paths(x, w, g, stride, padding, out_hw):
    s, p, d = (stride, stride), (padding, padding), (1, 1)

    def engine_f():
        return cpu_conv.conv2d_forward(x, w, None, s, p, d, out_hw, True)

    def engine_fb():
        y, saved = engine_f()
        return cpu_conv.conv2d_backward(x, w, g, saved, s, p, d, True, True, False)

    def im2col_f():
        with serial_blas:
            return cpu_conv._im2col_forward(x, w, None, s, p, d, out_hw, True)

    def im2col_fb():
        y, saved = im2col_f()
        with serial_blas:
            return cpu_conv._im2col_backward(x, w, g, saved, s, p, d, True, True, False)
    def direct_f():   # the direct pass whatever the plane size (the engine's rule may choose im2col)
        with serial_blas:
            return cpu_conv._direct_forward(x, w, None, s, p, d, out_hw, True)

    def direct_fb():
        y, saved = direct_f()
        with serial_blas:
            if stride == 2:
                return cpu_conv._strided_backward(x, w, g, saved, s, p, d, True, True, False)
            return cpu_conv._direct_backward(x, w, g, saved, p, d, True, True, False)
    out = {"engine": (engine_f, engine_fb), "im2col": (im2col_f, im2col_fb)}
    if w.shape[2:] == (3, 3):
        out["direct"] = (direct_f, direct_fb)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--only", default="", help="only the shapes whose name contains this text, e.g. 's2'")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    peak = sgemm_peak(args.rounds)
    load = os.getloadavg()
    print(f"sgemm peak (2048^3 float32, NumPy's BLAS at its default threads): {peak:.1f} GFLOP/s; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'convolution (batch 64)':<42}{'path':>8}{'fwd ms':>9}{'GFLOP/s':>9}{'fwd+bwd':>9}{'GFLOP/s':>9}"
          f"{'% of peak (fwd, fwd+bwd)':>26}{'% of its round':>16}")
    for name, shape, k, ks, stride, pad in SHAPES:
        if args.only not in name:
            continue
        n, c, h, wd = shape
        oh, ow = (h + 2 * pad - ks) // stride + 1, (wd + 2 * pad - ks) // stride + 1
        x = rng.standard_normal(shape).astype(np.float32)
        w = (rng.standard_normal((k, c, ks, ks)) * 0.1).astype(np.float32)
        g = rng.standard_normal((n, k, oh, ow)).astype(np.float32)
        flops = 2 * n * k * oh * ow * c * ks * ks
        fns = paths(x, w, g, stride, pad, (oh, ow))
        times = {(p, i): [] for p in fns for i in (0, 1)}
        sgemm = []   # this VM's speed drifts by 2x within minutes: an sgemm in every round too
        for f in fns.values():   # compile, warm the caches
            f[1]()
        for r in range(args.rounds):
            sgemm.append(sgemm_seconds())
            next(iter(fns.values()))[0]()   # untimed: wakes numba's threads after the pause
            for p in (fns if r % 2 == 0 else list(fns)[::-1]):
                for i in (0, 1):
                    times[(p, i)].append(_timed(fns[p][i]))
        for p in fns:
            f_ms = statistics.median(times[(p, 0)]) * 1e3
            fb_ms = statistics.median(times[(p, 1)]) * 1e3
            f_gf, fb_gf = flops / f_ms / 1e6, 3 * flops / fb_ms / 1e6
            # each round's convolution against the same round's sgemm, median over the rounds
            own_f = statistics.median(s / t for s, t in zip(sgemm, times[(p, 0)])) * flops / (2 * 2048 ** 3)
            own_fb = statistics.median(s / t for s, t in zip(sgemm, times[(p, 1)])) * 3 * flops / (2 * 2048 ** 3)
            print(f"{name:<42}{p:>8}{f_ms:9.2f}{f_gf:9.1f}{fb_ms:9.2f}{fb_gf:9.1f}"
                  f"{100 * f_gf / peak:19.0f}%, {100 * fb_gf / peak:.0f}%{100 * own_f:10.0f}%, {100 * own_fb:.0f}%")


if __name__ == "__main__":
    main()
