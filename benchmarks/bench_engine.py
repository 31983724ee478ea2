"""Engine speed, as ratios against references timed in the same process.

    .venv/bin/python benchmarks/bench_engine.py [--repeat 30] [--no-blas-fix] [--only resnet18] [--no-torch]
    .venv/bin/python benchmarks/bench_engine.py --alone [--rounds 3] [--nets convnet,simplecnn,vgg,cifarresnet]
    .venv/bin/python benchmarks/bench_engine.py --contention [--rounds 3] [--nets ...]

`--alone` is the comparison issue 17 asks for: each library in a fresh process of its
own (cnnlab: this script with --child-nets, PyTorch: torch_alone.py --nets), a training
step (SGD momentum, batch 64) of each zoo net, three rounds alternating which library
goes first, medians over the rounds; and the median (and range) of each round's own ratio,
steadier on a machine whose speed drifts.

Times (median of --repeat runs after warm-up):
  * one training step (forward, backward, SGD momentum) of seed 004's ConvNet,
    seed 000's SimpleCNN and the zoo's modern net (32/64 channels, batch norm) at batch 64;
  * one training step of the textbook ResNet-18 (benchmarks/resnet18_def.py) at batch 16 on
    1x28x28 inputs (`--only resnet18` times that row alone; with `--no-torch` PyTorch is
    not imported, so cnnlab runs in a process of its own: compare with
    `torch_alone.py --only resnet18`);
  * conv2d forward and forward+backward on 64x16x28x28 -> 32 channels, 3x3, padding 1;
  * a fresh process doing `import cnnlab` plus one ConvNet training step with a warm
    kernel cache;
against (a) the textbook NumPy im2col engine in benchmarks/numpy_reference.py and
(b) PyTorch on the CPU when it is installed (`pip install torch==2.13.0`).

OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, set on these machines, slow NumPy's sgemm; this
script re-executes itself without them unless --no-blas-fix is given (tests and CI
keep them). The BLAS kernel actually used is printed.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

if "--no-blas-fix" not in sys.argv and any(k in os.environ for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    os.execve(sys.executable, [sys.executable, __file__, *sys.argv[1:], "--no-blas-fix"], env)

import cnnlab  # noqa: E402  (before NumPy: it sets OpenBLAS's thread timeout, cnnlab/_config.py)
import numpy as np  # noqa: E402
import numpy_reference as ref  # noqa: E402
import resnet18_def  # noqa: E402
from timing import ZOO_INPUTS, median_ms  # noqa: E402
from cnnlab import nn  # noqa: E402


def convnet():
    return nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1), nn.MaxPool2d(2, 2, 0), nn.Conv2d(16, 32, 3, 1, 0),
                         nn.MaxPool2d(2, 2, 1), nn.Conv2d(32, 64, 1, 1, 0), nn.Conv2d(64, 4, 5, 1, 0),
                         nn.Flatten(), nn.Linear(36, 10))


def simplecnn():
    return nn.Sequential(nn.Conv2d(3, 18, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2, 0), nn.Flatten(),
                         nn.Linear(18 * 16 * 16, 64), nn.ReLU(), nn.Linear(64, 10))


def cnnlab_step(model, x, y):
    opt = cnnlab.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = cnnlab.from_numpy(x), cnnlab.from_numpy(y)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
    return step


def torch_model(model):
    import torch

    layers = []
    for m in model:
        kind = type(m).__name__
        if kind == "Conv2d":
            t = torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding)
        elif kind == "MaxPool2d":
            t = torch.nn.MaxPool2d(m.kernel_size, m.stride, m.padding)
        elif kind == "Linear":
            t = torch.nn.Linear(m.in_features, m.out_features)
        else:
            t = getattr(torch.nn, kind)()
        layers.append(t)
    tm = torch.nn.Sequential(*layers)
    tm.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()})
    return tm


def torch_step(tm, x, y):
    import torch

    opt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss_fn(tm(xt), yt).backward()
        opt.step()
    return step


def have_torch() -> bool:
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info

        infos = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} x{i.get('num_threads')}"
                 for i in threadpool_info() if i.get("user_api") == "blas"]
        return "; ".join(infos) or "unknown"
    except ImportError:
        return "unknown (pip install threadpoolctl to see it)"


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def row(name, ours, numpy_ms, torch_ms, flops=None):
    s = f"{name:<44}{ours:9.2f} ms"
    if flops:
        s += f" ({flops / ours / 1e6:6.1f} GFLOP/s)"
    s += f"   numpy/cnnlab {numpy_ms / ours:5.2f}x" if numpy_ms is not None else "   numpy/cnnlab    --"
    if torch_ms is not None:
        s += f"   torch {torch_ms:7.2f} ms  torch/cnnlab {torch_ms / ours:5.2f}x"
    print(s, flush=True)


def resnet18_row(args, rng, use_torch: bool) -> None:
    """The textbook ResNet-18 at batch 16 on 1x28x28 (d2l's net; its spatial sizes shrink to 1x1)."""
    cnnlab.manual_seed(0)
    model = resnet18_def.build(cnnlab)
    x = rng.standard_normal((16, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 16).astype(np.int64)
    ours = median_ms(cnnlab_step(model, x, y), args.repeat)
    torch_ms = None
    if use_torch:
        import torch

        tm = resnet18_def.build(torch)
        tm.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()})
        torch_ms = median_ms(torch_step(tm, x, y), args.repeat)
    row("ResNet-18 (d2l) train step, batch 16, 28x28", ours, None, torch_ms)


def cnnlab_zoo_ms(names: list[str], repeat: int, batch: int = 64) -> dict[str, float]:
    """Median training-step time of each zoo net, cnnlab (same inputs as torch_alone.zoo_step_ms)."""
    out = {}
    for name in names:
        rng = np.random.default_rng(0)
        c, size = ZOO_INPUTS[name]
        cnnlab.manual_seed(0)
        model = cnnlab.models.create(name, in_channels=c, num_classes=10, input_size=size)
        x = rng.standard_normal((batch, c, size, size)).astype(np.float32)
        y = rng.integers(0, 10, batch).astype(np.int64)
        out[name] = median_ms(cnnlab_step(model, x, y), repeat)
    return out


BUSY = "while True: pass"   # one core's worth of someone else's work


def alone_runs(args, busy: int = 0) -> tuple[dict[str, dict[str, list[float]]], list[float]]:
    """{library: {net: [ms per round]}} with each library alone in fresh processes, alternated,
    while `busy` other processes spin on the machine; and the load averages seen."""
    import json

    nets = args.nets.split(",")
    me = [sys.executable, __file__, "--no-blas-fix", "--child-nets", args.nets, "--repeat", str(args.repeat)]
    them = [sys.executable, str(HERE / "torch_alone.py"), "--nets", args.nets, "--json", "--repeat", str(args.repeat)]
    runs: dict[str, dict[str, list[float]]] = {"cnnlab": {n: [] for n in nets}, "torch": {n: [] for n in nets}}
    loads = []
    spinners = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(busy)]
    try:
        for r in range(args.rounds):
            order = (("cnnlab", me), ("torch", them)) if r % 2 == 0 else (("torch", them), ("cnnlab", me))
            for lib, cmd in order:
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                for n, ms in json.loads(out.strip().splitlines()[-1]).items():
                    runs[lib][n].append(ms)
                loads.append(os.getloadavg()[0])
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    return runs, loads


def alone(args) -> None:
    """Each library alone in fresh processes, alternated, medians of `args.rounds` rounds."""
    runs, loads = alone_runs(args, args.busy)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; BLAS: {blas_info()}; load average (1 min) over the "
          f"rounds {min(loads):.2f}-{max(loads):.2f}"
          + (f"; {args.busy} busy process(es) running" if args.busy else ""))
    print(f"each library alone in a fresh process, {args.rounds} alternated rounds, median of {args.repeat} steps each")
    # this VM's speed drifts over minutes: the two runs of one round are next to each other in
    # time, so the ratio within each round is steadier than the ratio of the two medians
    print(f"{'train step, batch 64, SGD momentum':<36}{'cnnlab':>10}{'PyTorch':>12}{'cnnlab/PyTorch':>16}"
          f"{'per round: median (range)':>30}")
    for n in args.nets.split(","):
        a, b = statistics.median(runs["cnnlab"][n]), statistics.median(runs["torch"][n])
        paired = [x / y for x, y in zip(runs["cnnlab"][n], runs["torch"][n])]
        print(f"{n:<36}{a:7.2f} ms{b:9.2f} ms{a / b:16.2f}"
              f"{statistics.median(paired):16.2f} ({min(paired):.2f}-{max(paired):.2f})")


def contention(args) -> None:
    """Each library's slowdown when one other process keeps a core busy: the --alone rounds
    with the machine to themselves, then the same with a spinning process beside them."""
    quiet, loads_q = alone_runs(args, 0)
    busy, loads_b = alone_runs(args, 1)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; load average (1 min) quiet {min(loads_q):.2f}-"
          f"{max(loads_q):.2f}, with one busy process {min(loads_b):.2f}-{max(loads_b):.2f}")
    print(f"each library alone in a fresh process, {args.rounds} alternated rounds, median of {args.repeat} steps;"
          " slowdown = step time beside a busy process / step time without")
    print(f"{'train step, batch 64':<22}{'cnnlab quiet':>13}{'busy':>10}{'slowdown':>10}"
          f"{'PyTorch quiet':>15}{'busy':>10}{'slowdown':>10}")
    for n in args.nets.split(","):
        cq, cb = statistics.median(quiet["cnnlab"][n]), statistics.median(busy["cnnlab"][n])
        tq, tb = statistics.median(quiet["torch"][n]), statistics.median(busy["torch"][n])
        print(f"{n:<22}{cq:10.2f} ms{cb:7.2f} ms{cb / cq:9.2f}x{tq:12.2f} ms{tb:7.2f} ms{tb / tq:9.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--no-blas-fix", action="store_true")
    ap.add_argument("--only", choices=["resnet18"], help="time this row alone")
    ap.add_argument("--no-torch", action="store_true", help="do not import PyTorch (cnnlab alone in the process)")
    ap.add_argument("--alone", action="store_true", help="each library alone in fresh processes, the zoo nets")
    ap.add_argument("--rounds", type=int, default=3, help="with --alone: alternated rounds")
    ap.add_argument("--nets", default="convnet,simplecnn,vgg,cifarresnet", help="with --alone: zoo nets")
    ap.add_argument("--busy", type=int, default=0, help="with --alone: this many spinning processes beside")
    ap.add_argument("--contention", action="store_true",
                    help="the --alone rounds without, then with, one busy process: each library's slowdown")
    ap.add_argument("--child-nets", help=argparse.SUPPRESS)   # --alone's cnnlab process: one JSON line
    args = ap.parse_args()
    if args.child_nets:
        import json

        print(json.dumps(cnnlab_zoo_ms(args.child_nets.split(","), args.repeat)))
        return
    if args.contention:
        contention(args)
        return
    if args.alone:
        alone(args)
        return
    rng = np.random.default_rng(0)
    use_torch = have_torch() and not args.no_torch
    if use_torch:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; python {platform.python_version()}; "
          f"numpy {np.__version__}; BLAS: {blas_info()}")
    print(f"cnnlab {cnnlab.__version__}; torch: {torch.__version__ if use_torch else ('not imported (--no-torch)' if args.no_torch else 'not installed')}; "
          f"OPENBLAS_CORETYPE {'unset for this run' if args.no_blas_fix else os.environ.get('OPENBLAS_CORETYPE', 'unset')}")
    print()
    resnet18_row(args, rng, use_torch)
    if args.only:
        return

    # training steps
    for name, build, shape in (("ConvNet (seed 004) train step, batch 64", convnet, (64, 1, 28, 28)),
                               ("SimpleCNN (seed 000) train step, batch 64", simplecnn, (64, 3, 32, 32))):
        cnnlab.manual_seed(0)
        model = build()
        x = rng.standard_normal(shape).astype(np.float32)
        y = rng.integers(0, 10, shape[0]).astype(np.int64)
        numpy_net = ref.from_cnnlab(model)
        tm = torch_model(model) if use_torch else None
        ours = median_ms(cnnlab_step(model, x, y), args.repeat)
        numpy_ms = median_ms(lambda: numpy_net.step(x, y), max(5, args.repeat // 3))
        torch_ms = median_ms(torch_step(tm, x, y), args.repeat) if use_torch else None
        row(name, ours, numpy_ms, torch_ms)

    # a wider net with batch norm (the textbook engine has no batch norm)
    cnnlab.manual_seed(0)
    model = cnnlab.models.create("modern", in_channels=1, num_classes=10, input_size=28)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64).astype(np.int64)
    ours = median_ms(cnnlab_step(model, x, y), args.repeat)
    torch_ms = None
    if use_torch:
        from torch_models import build

        tm = build("modern", in_channels=1, num_classes=10, input_size=28)
        tm.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()})
        torch_ms = median_ms(torch_step(tm, x, y), args.repeat)
    row("modern net (32/64 ch, BN) train step, b. 64", ours, None, torch_ms)

    # one convolution
    x = rng.standard_normal((64, 16, 28, 28)).astype(np.float32)
    w = (rng.standard_normal((32, 16, 3, 3)) * 0.1).astype(np.float32)
    b = np.zeros(32, np.float32)
    g = rng.standard_normal((64, 32, 28, 28)).astype(np.float32)
    flops = 2 * 64 * 32 * 28 * 28 * 16 * 9
    xt = cnnlab.from_numpy(x).requires_grad_()
    wt = cnnlab.from_numpy(w).requires_grad_()
    bt = cnnlab.from_numpy(b).requires_grad_()
    gt = cnnlab.from_numpy(g)
    conv_ref = ref.Conv(w, b, 1)
    with cnnlab.no_grad():
        fwd = median_ms(lambda: nn.functional.conv2d(xt, wt, bt, padding=1), args.repeat)

    def fwd_bwd():
        nn.functional.conv2d(xt, wt, bt, padding=1).backward(gt)
    fb = median_ms(fwd_bwd, args.repeat)
    np_f = median_ms(lambda: conv_ref.forward(x), max(5, args.repeat // 3))
    np_fb = median_ms(lambda: (conv_ref.forward(x), conv_ref.backward(g)), max(5, args.repeat // 3))
    t_f = t_fb = None
    if use_torch:
        tx = torch.from_numpy(x).requires_grad_()
        tw = torch.from_numpy(w).requires_grad_()
        tb = torch.from_numpy(b).requires_grad_()
        tg = torch.from_numpy(g)
        with torch.no_grad():
            t_f = median_ms(lambda: torch.nn.functional.conv2d(tx, tw, tb, padding=1), args.repeat)
        t_fb = median_ms(lambda: torch.nn.functional.conv2d(tx, tw, tb, padding=1).backward(tg), args.repeat)
    row("conv2d fwd 64x16x28x28 -> 32, 3x3, p1", fwd, np_f, t_f, flops)
    row("conv2d fwd+bwd 64x16x28x28 -> 32, 3x3, p1", fb, np_fb, t_fb, 3 * flops)

    # cold start with a warm kernel cache
    code = ("import time; t=time.perf_counter(); import cnnlab, cnnlab.nn as nn; import numpy as np;"
            "m=nn.Sequential(nn.Conv2d(1,16,3,1,1),nn.MaxPool2d(2,2,0),nn.Conv2d(16,32,3,1,0),"
            "nn.MaxPool2d(2,2,1),nn.Conv2d(32,64,1,1,0),nn.Conv2d(64,4,5,1,0),nn.Flatten(),nn.Linear(36,10));"
            "o=cnnlab.optim.SGD(m.parameters(),lr=0.01,momentum=0.9);"
            "x=cnnlab.randn(64,1,28,28); y=cnnlab.randint(0,10,(64,));"
            "l=nn.CrossEntropyLoss()(m(x),y); l.backward(); o.step(); print(time.perf_counter()-t)")
    subprocess.run([sys.executable, "-c", code], capture_output=True)  # make sure the cache is warm
    starts = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        starts.append(time.perf_counter() - t)
    print(f"{'fresh process: import cnnlab + 1 ConvNet step':<44}{statistics.median(starts) * 1e3:9.0f} ms "
          f"(median of 3, warm kernel cache, interpreter start included)")


if __name__ == "__main__":
    main()
