"""How much host work one training step costs on 'cuda': kernel launches (each costs
35-50 us of host time on a real GPU, whatever the batch size) and device-to-host copies
(each one waits for the device to finish everything queued: a synchronisation).

A step is forward, backward and the optimizer's step, on the zoo's models at their real
sizes. The launches are counted, not run: in the simulator running them would take
minutes, and the count does not depend on the values (test_cuda_training.py checks those).
Every launch goes through cuda_array.launch; one made directly (kernel[grid, block])
would still reach numba's simulated kernel, which is counted too. The table, by hand:

    NUMBA_ENABLE_CUDASIM=1 python tests/cuda/test_step_launches.py
"""
from __future__ import annotations

import collections
import math

import numpy as np
import pytest

import cnnlab
import cnnlab.nn.functional as F
from cnnlab import optim
from cnnlab.zoo_defs import ConvNet, ModernCNN, SimpleCNN


class Traffic:
    """Counts launches by kernel name, and device-to-host copies, while installed."""

    def __init__(self, monkeypatch):
        from numba.cuda.simulator import kernel as sim_kernel
        from numba.cuda.simulator.cudadrv import devicearray as sim_array

        from cnnlab.backends import cuda_array

        self.launches: collections.Counter = collections.Counter()
        self.to_host = 0

        original_launch, original_call = cuda_array.launch, sim_kernel.FakeCUDAKernel.__call__
        running = []

        def launch(kernel, grid, block, *args):
            name = getattr(kernel, "__name__", repr(kernel))
            self.launches[name] += 1
            if name == "_fill" and math.prod(np.atleast_1d(grid)) * math.prod(np.atleast_1d(block)) <= 4096:
                running.append(name)  # small fills may make kept constants (the root gradient): run them
                try:
                    original_launch(kernel, grid, block, *args)
                finally:
                    running.pop()

        def direct(kernel, *args, **kwargs):
            if running:
                return original_call(kernel, *args, **kwargs)
            self.launches["direct " + getattr(kernel, "__name__", repr(kernel))] += 1

        original_copy = sim_array.FakeCUDAArray.copy_to_host

        def copy_to_host(array, *args, **kwargs):
            self.to_host += 1
            return original_copy(array, *args, **kwargs)

        monkeypatch.setattr(cuda_array, "launch", launch)
        monkeypatch.setattr(sim_kernel.FakeCUDAKernel, "__call__", direct)
        monkeypatch.setattr(sim_array.FakeCUDAArray, "copy_to_host", copy_to_host)

    def reset(self):
        self.launches.clear()
        self.to_host = 0

    @property
    def total(self) -> int:
        return sum(self.launches.values())


def _step_counts(monkeypatch, model, make_optimizer, shape, steps=3):
    """Launches and device-to-host copies of the last of `steps` training steps."""
    if not cnnlab.backends.get("cuda").SIMULATOR:
        pytest.skip("counts launches in numba's simulator")
    cnnlab.manual_seed(0)
    model = model.to("cuda")
    opt = make_optimizer(model.parameters())
    rng = np.random.default_rng(0)
    x = cnnlab.from_numpy(rng.standard_normal((2,) + shape).astype(np.float32)).to("cuda")
    y = cnnlab.from_numpy(np.array([1, 3])).to("cuda")
    traffic = Traffic(monkeypatch)
    for _ in range(steps):
        traffic.reset()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return traffic


def sgd(params):
    return optim.SGD(params, lr=0.01, momentum=0.9)


def adam(params):
    return optim.Adam(params, lr=1e-3)


STEPS = [  # name, model, optimizer, input shape, most launches per step (issue 19's targets)
    ("convnet-sgd", ConvNet, sgd, (1, 28, 28), 25),
    ("simplecnn-sgd", SimpleCNN, sgd, (3, 32, 32), 25),
    ("modern-sgd", ModernCNN, sgd, (1, 28, 28), 60),
    ("modern-adam", ModernCNN, adam, (1, 28, 28), 60),
]


@pytest.mark.parametrize("name,model,make_optimizer,shape,most", STEPS)
def test_a_training_step_launches_few_kernels_and_never_waits(monkeypatch, name, model, make_optimizer, shape, most):
    traffic = _step_counts(monkeypatch, model(), make_optimizer, shape)
    assert traffic.total <= most, f"{name}: {traffic.total} launches per step: {dict(traffic.launches)}"
    assert not any(k.startswith("direct ") for k in traffic.launches), dict(traffic.launches)
    assert traffic.to_host == 0, f"{name}: {traffic.to_host} device-to-host copies inside a step"


def test_one_optimizer_launch_for_all_parameters(monkeypatch):
    for make_optimizer, kernel in ((sgd, "_sgd_many"), (adam, "_adam_many")):
        traffic = _step_counts(monkeypatch, ConvNet(), make_optimizer, (1, 28, 28), steps=2)
        assert traffic.launches[kernel] == 1, dict(traffic.launches)


def test_batch_norm_forward_is_two_launches_in_training_and_one_in_eval(monkeypatch):
    if not cnnlab.backends.get("cuda").SIMULATOR:
        pytest.skip("counts launches in numba's simulator")
    bn = cnnlab.nn.BatchNorm2d(3).to("cuda")
    x = cnnlab.randn(2, 3, 4, 4).to("cuda")
    traffic = Traffic(monkeypatch)
    with cnnlab.no_grad():
        bn(x)
        assert traffic.total == 2, dict(traffic.launches)
        traffic.reset()
        bn.eval()
        bn(x)
        assert traffic.total == 2, dict(traffic.launches)   # 1/sqrt(var + eps), then normalise


def test_a_label_read_back_happens_only_for_labels_made_on_the_device(monkeypatch):
    if not cnnlab.backends.get("cuda").SIMULATOR:
        pytest.skip("counts copies in numba's simulator")
    scores = cnnlab.randn(3, 4).to("cuda")
    uploaded = cnnlab.tensor([0, 3, 1]).to("cuda")
    made_here = cnnlab.tensor([[0.0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]]).to("cuda").argmax(1)
    traffic = Traffic(monkeypatch)
    F.cross_entropy(scores, uploaded)
    assert traffic.to_host == 0
    F.cross_entropy(scores, made_here)
    assert traffic.to_host == 1


def test_gradients_are_not_copied_unless_shared(monkeypatch):
    if not cnnlab.backends.get("cuda").SIMULATOR:
        pytest.skip("counts launches in numba's simulator")
    traffic = _step_counts(monkeypatch, ConvNet(), sgd, (1, 28, 28), steps=1)
    assert "unary" not in traffic.launches, dict(traffic.launches)   # the copy kernel
    monkeypatch.undo()
    # one array handed to two leaves (a + b gives both the same gradient): each gets its own
    x = cnnlab.ones(3, requires_grad=True, device="cuda")
    y = cnnlab.ones(3, requires_grad=True, device="cuda")
    (x * 2 + y).sum().backward()
    (x + y).sum().backward()
    assert x.grad._data.block is not y.grad._data.block
    y.grad.zero_()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [3, 3, 3])
    z = cnnlab.ones(2, requires_grad=True, device="cuda")
    w = cnnlab.ones(2, requires_grad=True, device="cuda")
    (z + w).sum().backward()
    assert z.grad._data.block is not w.grad._data.block
    z.grad.zero_()
    np.testing.assert_array_equal(w.grad.cpu().numpy(), [1, 1])


if __name__ == "__main__":
    from cnnlab import _config

    _config.CUDA_RNG_STATES = 16  # dropout's generators, seeded on the host in the simulator: keep it quick
    for name, model, make_optimizer, shape, most in STEPS:
        with pytest.MonkeyPatch.context() as patch:
            counted = _step_counts(patch, model(), make_optimizer, shape)
        print(f"{name:14s} {counted.total:4d} launches (target <= {most}), {counted.to_host} device-to-host "
              f"copies per training step")
