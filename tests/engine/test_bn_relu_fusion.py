"""nn.Sequential runs a BatchNorm followed by a ReLU as one kernel each way on the CPU
(cnnlab/nn/container.py, cpu_nn.batch_norm_relu_*). The fusion must not change a single
bit: outputs, every gradient and the running statistics are compared with the same layers
called one by one, and a hook on either layer (which must see the value between them)
turns it off."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab as torch
from cnnlab import nn


def _net(dtype, seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
                        nn.Conv2d(6, 5, 3, padding=1), nn.BatchNorm2d(5), nn.ReLU(inplace=True),
                        nn.Flatten(), nn.Linear(5 * 7 * 7, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    return net.double() if dtype == np.float64 else net


def _run(net, x, one_by_one):
    xt = torch.tensor(x, requires_grad=True)
    out = xt
    if one_by_one:
        for m in net:
            out = m(out)
    else:
        out = net(out)
    (out * torch.tensor(np.linspace(-1, 1, out.numel()).reshape(out.shape).astype(x.dtype))).sum().backward()
    grads = [p.grad.numpy().copy() for p in net.parameters()]
    stats = [b.numpy().copy() for b in net.buffers()]
    return out.detach().numpy(), xt.grad.numpy(), grads, stats, out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_fused_and_one_by_one_give_the_same_bits(dtype, training):
    x = np.random.default_rng(0).standard_normal((4, 3, 7, 7)).astype(dtype)
    results = []
    for one_by_one in (False, True):
        net = _net(dtype)
        net.train(training)
        if not training:   # running statistics worth using
            with torch.no_grad():
                net.train()
                net(torch.tensor(x))
                net.eval()
        results.append(_run(net, x, one_by_one))
    fused, plain = results
    for a, b in zip(fused[:2], plain[:2]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(fused[2] + fused[3], plain[2] + plain[3]):
        np.testing.assert_array_equal(a, b)
    assert (fused[0] != 0).any()
    # the fused node is what produced the last ReLU's output, and the plain path kept its ReLU node
    names = []
    node = fused[4].grad_fn
    while node is not None and len(names) < 12:
        names.append(node.name())
        node = node.next_functions[0][0] if node.next_functions else None
    assert "BatchNormReluBackward" in names


def test_a_hook_on_either_layer_turns_the_fusion_off():
    x = torch.randn(4, 3, 7, 7)
    net = _net(np.float32)
    seen = []
    handle = net[1].register_forward_hook(lambda m, args, out: seen.append(out.numpy().copy()))
    out = net(x)
    handle.remove()
    assert len(seen) == 1 and (seen[0] < 0).any()   # the hook saw batch norm's own output, negatives and all
    pre = []
    handle = net[2].register_forward_pre_hook(lambda m, args: pre.append(args[0].numpy().min()))
    net(x)
    handle.remove()
    assert pre and pre[0] < 0


def test_a_subclass_or_a_different_activation_is_not_fused():
    class MyReLU(nn.ReLU):
        def forward(self, x):
            return super().forward(x) * 2

    torch.manual_seed(0)
    net = nn.Sequential(nn.BatchNorm1d(4), MyReLU())
    x = torch.randn(6, 4)
    y = net(x)
    ref = torch.nn.functional.relu(net[0](x)) * 2
    np.testing.assert_array_equal(y.numpy(), ref.numpy())
