"""Tensors and modules on 'cuda': moving, a whole training step matching the CPU's, and
proof that a step stays on the device."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as nn
import cnnlab.nn.functional as F
from cnnlab import optim


class Tiny(nn.Module):
    """A ConvNet in miniature: conv, batch norm, ReLU, max-pool, a rectangular strided conv,
    avg-pool, flatten, linear (+ optional dropout)."""

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, 3, padding=1, bias=False)  # batch norm follows: a bias would get ~0 gradient
        self.bn = nn.BatchNorm2d(3)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(3, 4, (2, 3), stride=(1, 2), padding=(1, 1), dilation=(1, 1))
        self.avg = nn.AvgPool2d(2, stride=1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.conv1(x))))
        x = self.avg(F.tanh(self.conv2(x)))
        return self.fc(self.drop(x.flatten(1)))


def _batch(n=4):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, 1, 6, 6)).astype(np.float32)
    y = np.array([0, 4, 2, 1, 3, 0, 1, 2][:n], np.int64)
    return cnnlab.from_numpy(x), cnnlab.from_numpy(y)


def _twins(dropout=0.0):
    cnnlab.manual_seed(0)
    a = Tiny(dropout)
    b = Tiny(dropout)
    b.load_state_dict(a.state_dict())
    return a, b.to("cuda")


def test_tensor_moves_and_stays():
    x = cnnlab.randn(2, 3, requires_grad=True)
    c = x.to("cuda")
    assert c.device == "cuda" and c.is_cuda and c.requires_grad and c.is_leaf
    assert x.cuda().device == "cuda" and c.cpu().device == "cpu" and c.to("cpu").device == "cpu"
    np.testing.assert_array_equal(c.cpu().numpy(), x.detach().numpy())
    assert cnnlab.tensor(2.0).to("cuda").shape == ()
    assert cnnlab.zeros(2, 2, device="cuda").device == "cuda"
    assert c.to("cuda") is c
    with pytest.raises(ValueError, match="one device"):
        x + c
    # comparisons, logic and reductions give device tensors with the CPU's values
    d = x.detach()
    e = d.cuda()
    for got, want in [((e > 0) & (e < 0.5), (d > 0) & (d < 0.5)), ((e > 0) | (e < -1), (d > 0) | (d < -1)),
                      (~(e > 0), ~(d > 0)), (e.argmax(1), d.argmax(1)), (e.max(0).values, d.max(0).values),
                      (e.sum(), d.sum()), (e.mean(1), d.mean(1)), (F.one_hot(cnnlab.tensor([1, 0, 2]).cuda()),
                                                                   F.one_hot(cnnlab.tensor([1, 0, 2])))]:
        assert got.device == "cuda"
        np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-6)
    e[0, 1] = 5.0
    e += 1
    assert float(e[0, 1].item()) == 6.0


def test_module_moves_in_place():
    m = Tiny()
    params = list(m.parameters())
    opt = optim.SGD(m.parameters(), lr=0.1)
    assert m.cuda() is m and all(p.device == "cuda" for p in m.parameters())
    assert all(b.device == "cuda" for b in m.buffers())
    assert [id(p) for p in m.parameters()] == [id(p) for p in params] and opt.param_groups[0]["params"][0].is_cuda
    sd = m.state_dict()
    cpu_model = Tiny()
    cpu_model.load_state_dict(sd)   # device tensors load into a CPU model
    for k, v in cpu_model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd[k].cpu().numpy(), err_msg=k)
    m.cpu()
    assert all(p.device == "cpu" for p in m.parameters())


@pytest.mark.parametrize("make_opt", [lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
                                      lambda p: optim.Adam(p, lr=1e-2)], ids=["sgd", "adam"])
def test_training_step_matches_cpu(make_opt):
    ref, dev = _twins()
    x, y = _batch()
    opts = make_opt(ref.parameters()), make_opt(dev.parameters())
    losses = []
    for step in range(2):
        for model, opt, (xb, yb) in ((ref, opts[0], (x, y)), (dev, opts[1], (x.cuda(), y.cuda()))):
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        for (name, p), q in zip(ref.named_parameters(), dev.parameters()):
            np.testing.assert_allclose(q.grad.cpu().numpy(), p.grad.numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=f"grad of {name}, step {step}")
            np.testing.assert_allclose(q.detach().cpu().numpy(), p.detach().numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=f"{name} after step {step}")
    np.testing.assert_allclose(losses[1::2], losses[0::2], rtol=1e-5)
    for name, b in ref.named_buffers():
        np.testing.assert_allclose(dict(dev.named_buffers())[name].cpu().numpy(), b.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    ref.eval(), dev.eval()  # running statistics in use now
    np.testing.assert_allclose(dev(x.cuda()).cpu().numpy(), ref(x).numpy(), rtol=1e-4, atol=1e-5)


def test_bad_target_names_itself_on_cuda():
    _, dev = _twins()
    x, _ = _batch()
    with pytest.raises(cnnlab.LayerError, match="target 7 is out of range for 5 classes"):
        F.cross_entropy(dev(x.cuda()), cnnlab.tensor([0, 7, 1, 2]).cuda())


class _Transfers:
    """Counts host<->device copies: numba's to_device, device arrays' copy_to_host and
    copy_to_device, and (in the simulator) host arrays handed straight to a kernel."""

    def __init__(self, monkeypatch):
        from numba import cuda

        self.log: list[str] = []
        array_type = type(cuda.device_array(1))
        self._wrap(monkeypatch, cuda, "to_device", "to_device")
        self._wrap(monkeypatch, array_type, "copy_to_host", "copy_to_host")
        # an upload into a pooled buffer (cuda_alloc.upload) is the same host-to-device copy
        self._wrap(monkeypatch, array_type, "copy_to_device", "to_device")
        try:
            from numba.cuda.simulator import kernel as sim_kernel
        except ImportError:
            sim_kernel = None
        if sim_kernel is not None and hasattr(sim_kernel, "wrap_arg"):
            self._wrap(monkeypatch, sim_kernel, "wrap_arg", "host array passed to a kernel")

    def _wrap(self, monkeypatch, owner, attr, what):
        original = getattr(owner, attr)

        def counted(*args, **kwargs):
            self.log.append(what)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, attr, counted)


def test_a_training_step_stays_on_the_device(monkeypatch):
    """One step moves the batch in (2 copies) and reads back only the loss the user asks
    for (`.item()`): the class labels are checked on the host, from the copy they were
    uploaded from. Weights, gradients, optimizer state, batch-norm statistics and dropout
    masks never cross."""
    _, dev = _twins(dropout=0.3)
    opt = optim.SGD(dev.parameters(), lr=0.1, momentum=0.9)
    x, y = _batch()

    def step():
        xb, yb = x.to("cuda"), y.to("cuda")
        opt.zero_grad()
        loss = F.cross_entropy(dev(xb), yb)
        loss.backward()
        opt.step()
        return loss.item()

    step()  # first step: dropout's generators are seeded (one upload), optimizer state created
    transfers = _Transfers(monkeypatch)
    loss = step()
    assert np.isfinite(loss)
    assert sorted(transfers.log) == ["copy_to_host", "to_device", "to_device"], transfers.log
