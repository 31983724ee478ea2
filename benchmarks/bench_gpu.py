"""cnnlab's CUDA backend against PyTorch + cuDNN on the same GPU.

    python benchmarks/bench_gpu.py [--repeat 30] [--markdown]

Needs a CUDA GPU, numba-cuda (`pip install 'cnnlab[cuda]'`) and a CUDA build of PyTorch.
Refuses, saying why, anywhere else (numba's simulator is not a GPU).

Times (median of --repeat runs after warm-up, which includes compiling the kernels;
every run ends in a device synchronisation):
  * one training step (batch to the device, forward, cross-entropy, backward, SGD with
    momentum, loss read back) of seed 004's ConvNet (1x28x28) and seed 000's SimpleCNN
    (3x32x32) at batch 64 and 256, from the same weights in both engines;
  * conv2d forward, and forward + backward (input, weight and bias gradients), on
    256x16x28x28 -> 32 channels, 3x3, padding 1, with GFLOP/s;
  * the device's measured FP32 peak: a 8192^3 sgemm through cuBLAS (TF32 off).
TF32 is switched off in PyTorch for all of it, so both engines do plain FP32 maths.
The issue's target: a training step at batch 256 within 2x of PyTorch's time.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import cnnlab
from cnnlab import models, nn


def refuse_without_gpu() -> None:
    reason = (cnnlab.cuda.unavailable_reason() or "").split("; to try")[0]
    if not reason and cnnlab.cuda.is_simulator():
        reason = "NUMBA_ENABLE_CUDASIM=1 selects numba's CPU simulator, which is not a GPU; unset it"
    if not reason:
        try:
            import torch
        except ImportError:
            reason = "PyTorch is not installed (pip install torch, a CUDA build)"
        else:
            if not torch.cuda.is_available():
                reason = f"this PyTorch ({torch.__version__}) sees no CUDA GPU (a CPU-only build?)"
    if reason:
        sys.exit(f"bench_gpu: needs a CUDA GPU for both cnnlab and PyTorch: {reason}")


def median_ms(fn, sync, repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


# --------------------------------------------------------------------------- models
def torch_twin(model):
    """The same network in PyTorch with the same weights (parameters in the same order)."""
    import torch

    tnn = torch.nn
    if isinstance(model, models.ConvNet):
        tm = tnn.Sequential(tnn.Conv2d(1, 16, 3, 1, 1), tnn.MaxPool2d(2, 2, 0), tnn.Conv2d(16, 32, 3, 1, 0),
                            tnn.MaxPool2d(2, 2, 1), tnn.Conv2d(32, 64, 1, 1, 0), tnn.Conv2d(64, 4, 5, 1, 0),
                            tnn.Flatten(), tnn.Linear(model.linear1.in_features, 10))
    else:
        tm = tnn.Sequential(tnn.Conv2d(3, 18, 3, 1, 1), tnn.ReLU(), tnn.MaxPool2d(2, 2, 0), tnn.Flatten(),
                            tnn.Linear(model.features, 64), tnn.ReLU(), tnn.Linear(64, 10))
    ours = [p.detach().cpu().numpy() for p in model.parameters()]
    theirs = list(tm.parameters())
    assert [o.shape for o in ours] == [tuple(t.shape) for t in theirs], "the PyTorch twin has other shapes"
    with torch.no_grad():
        for o, t in zip(ours, theirs):
            t.copy_(torch.from_numpy(o))
    return tm.cuda()


def training_steps(name: str, batch: int):
    """(cnnlab step, PyTorch step) closures: host batch in, loss out."""
    import torch

    model = models.create(name)
    in_ch, size = (1, 28) if name == "convnet" else (3, 32)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, in_ch, size, size)).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    tm = torch_twin(model)
    model.to("cuda")
    opt = cnnlab.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
    loss_fn, tloss_fn = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()

    def ours():
        opt.zero_grad()
        loss = loss_fn(model(cnnlab.from_numpy(x).to("cuda")), cnnlab.from_numpy(y).to("cuda"))
        loss.backward()
        opt.step()
        return loss.item()

    def theirs():
        topt.zero_grad()
        loss = tloss_fn(tm(torch.from_numpy(x).cuda()), torch.from_numpy(y).cuda())
        loss.backward()
        topt.step()
        return loss.item()

    return ours, theirs


# --------------------------------------------------------------------------- conv
CONV = dict(n=256, c=16, hw=28, k=32, kernel=3, padding=1)


def conv_flops() -> float:
    n, c, hw, k, r = CONV["n"], CONV["c"], CONV["hw"], CONV["k"], CONV["kernel"]
    return 2.0 * n * k * hw * hw * c * r * r  # padding 1, stride 1: the output is hw x hw


def conv_cases():
    """{name: (cnnlab closure, PyTorch closure)} for forward and forward + backward."""
    import torch

    F = nn.functional
    n, c, hw, k, r, p = (CONV[key] for key in ("n", "c", "hw", "k", "kernel", "padding"))
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    ws = (rng.standard_normal((k, c, r, r)) * 0.1).astype(np.float32)
    bs = rng.standard_normal(k).astype(np.float32)
    x = cnnlab.tensor(xs, device="cuda", requires_grad=True)
    w = cnnlab.tensor(ws, device="cuda", requires_grad=True)
    b = cnnlab.tensor(bs, device="cuda", requires_grad=True)
    g = cnnlab.ones(n, k, hw, hw, device="cuda")
    tx = torch.tensor(xs, device="cuda", requires_grad=True)
    tw = torch.tensor(ws, device="cuda", requires_grad=True)
    tb = torch.tensor(bs, device="cuda", requires_grad=True)
    tg = torch.ones(n, k, hw, hw, device="cuda")

    def ours_fwd():
        with cnnlab.no_grad():
            F.conv2d(x, w, b, padding=p)

    def theirs_fwd():
        with torch.no_grad():
            torch.nn.functional.conv2d(tx, tw, tb, padding=p)

    def ours_fwd_bwd():
        x.grad = w.grad = b.grad = None
        F.conv2d(x, w, b, padding=p).backward(g)

    def theirs_fwd_bwd():
        tx.grad = tw.grad = tb.grad = None
        torch.nn.functional.conv2d(tx, tw, tb, padding=p).backward(tg)

    with cnnlab.no_grad():
        diff = np.abs(F.conv2d(x, w, b, padding=p).cpu().numpy()
                      - torch.nn.functional.conv2d(tx, tw, tb, padding=p).detach().cpu().numpy()).max()
    return {"forward": (ours_fwd, theirs_fwd, conv_flops()),
            "forward+backward": (ours_fwd_bwd, theirs_fwd_bwd, 3 * conv_flops())}, float(diff)


def peak_gflops(repeat: int) -> float:
    import torch

    size = 8192
    a = torch.randn(size, size, device="cuda")
    b = torch.randn(size, size, device="cuda")
    ms = median_ms(lambda: a @ b, torch.cuda.synchronize, max(3, repeat // 3))
    return 2.0 * size ** 3 / (ms * 1e-3) / 1e9


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description="cnnlab CUDA backend vs PyTorch + cuDNN on one GPU")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown for RESULTS.md")
    args = parser.parse_args()
    refuse_without_gpu()

    import torch
    from numba import cuda

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    sync_ours, sync_theirs = cuda.synchronize, torch.cuda.synchronize
    gpu = torch.cuda.get_device_name()
    print(f"device: {gpu} | PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()} | "
          f"numba {__import__('numba').__version__} ({getattr(cuda, 'implementation', '?')} CUDA target) | "
          f"cnnlab {cnnlab.__version__}")
    peak = peak_gflops(args.repeat)
    print(f"measured FP32 peak (cuBLAS sgemm 8192^3, TF32 off): {peak:,.0f} GFLOP/s\n")

    bar = "|" if args.markdown else ""
    rows = [f"{bar} training step | batch | cnnlab ms | PyTorch ms | ratio | first-step loss diff {bar}"]
    if args.markdown:
        rows.append("|---|---|---|---|---|---|")
    for name in ("convnet", "simplecnn"):
        for batch in (64, 256):
            ours, theirs = training_steps(name, batch)
            loss_diff = abs(ours() - theirs())  # same weights, same batch: the first losses agree
            t_ours = median_ms(ours, sync_ours, args.repeat)
            t_theirs = median_ms(theirs, sync_theirs, args.repeat)
            target = "  (target: within 2x)" if batch == 256 else ""
            rows.append(f"{bar} {name} | {batch} | {t_ours:.3f} | {t_theirs:.3f} | {t_ours / t_theirs:.2f}x | "
                        f"{loss_diff:.1e}{target} {bar}")
    print("\n".join(rows) + "\n")

    cases, diff = conv_cases()
    shape = f"{CONV['n']}x{CONV['c']}x{CONV['hw']}x{CONV['hw']} -> {CONV['k']}, 3x3, padding 1"
    rows = [f"{bar} conv2d {shape} | cnnlab ms | GFLOP/s | % of peak | cuDNN ms | GFLOP/s | % of peak {bar}"]
    if args.markdown:
        rows.append("|---|---|---|---|---|---|---|")
    for what, (ours, theirs, flops) in cases.items():
        t_ours = median_ms(ours, sync_ours, args.repeat)
        t_theirs = median_ms(theirs, sync_theirs, args.repeat)
        g_ours, g_theirs = flops / (t_ours * 1e-3) / 1e9, flops / (t_theirs * 1e-3) / 1e9
        rows.append(f"{bar} {what} | {t_ours:.3f} | {g_ours:,.0f} | {100 * g_ours / peak:.1f} | "
                    f"{t_theirs:.3f} | {g_theirs:,.0f} | {100 * g_theirs / peak:.1f} {bar}")
    print("\n".join(rows))
    print(f"\n(max |cnnlab - cuDNN| over the conv output: {diff:.1e})")


if __name__ == "__main__":
    main()
