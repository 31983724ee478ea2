"""The zoo's wider nets (issue 17) train like their PyTorch twins: a VGG-style net, a
small CIFAR ResNet and the speedrun-style cifarfast (max-pools between convolutions, a
global max-pool, scaled logits), in training mode (batch norm on batch statistics, the ResNet's strided
3x3 and 1x1 stride-2 shortcut convolutions), through two SGD-momentum steps.

The twins come from the same source (cnnlab/zoo_defs.py run with PyTorch), so this checks
the engine's arithmetic, not a second hand-written architecture.
"""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
from cnnlab import models

RTOL, ATOL = 2e-4, 2e-5

SMALL = {"vgg": {"width": 8, "input_size": 16}, "cifarresnet": {"width": 8, "input_size": 16},
         "cifarfast": {"width": 4, "input_size": 16}}


def _pair(name):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    t_model = models.torch_twin(name, **SMALL[name])
    c_model = models.create(name, **SMALL[name])
    c_model.load_state_dict({k: v.detach().numpy().copy() for k, v in t_model.state_dict().items()})
    return torch, t_model, c_model


@pytest.mark.parametrize("name", ["vgg", "cifarresnet", "cifarfast"])
def test_training_steps_match_pytorch(name):
    torch, t_model, c_model = _pair(name)
    torch.set_num_threads(1)
    t_opt = torch.optim.SGD(t_model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    c_opt = cnnlab.optim.SGD(c_model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(3)
    size = SMALL[name]["input_size"]
    for _ in range(2):
        x = rng.standard_normal((6, 3, size, size)).astype(np.float32)
        y = rng.integers(0, 10, 6)
        t_opt.zero_grad()
        t_loss = torch.nn.functional.cross_entropy(t_model(torch.from_numpy(x)), torch.from_numpy(y))
        t_loss.backward()
        t_opt.step()
        c_opt.zero_grad()
        c_loss = cnnlab.nn.functional.cross_entropy(c_model(cnnlab.from_numpy(x)), cnnlab.from_numpy(y))
        c_loss.backward()
        c_opt.step()
        np.testing.assert_allclose(c_loss.item(), t_loss.item(), rtol=RTOL, atol=ATOL)
        for k, tp in t_model.named_parameters():
            c_grad = dict(c_model.named_parameters())[k].grad.numpy()
            np.testing.assert_allclose(c_grad, tp.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=f"gradient of {k}")
    c_state = c_model.state_dict()
    for k, tv in t_model.state_dict().items():   # weights and running statistics after the steps
        np.testing.assert_allclose(np.asarray(c_state[k].numpy(), np.float64).reshape(tv.shape), tv.numpy(),
                                   rtol=RTOL, atol=ATOL, err_msg=k)
    t_model.eval()
    c_model.eval()
    x = rng.standard_normal((4, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        want = t_model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(c_model(cnnlab.from_numpy(x)).detach().numpy(), want, rtol=RTOL, atol=ATOL)


def test_the_resnet_has_the_issues_layers():
    m = models.create("cifarresnet")
    convs = [(k, tuple(v.shape)) for k, v in m.state_dict().items() if k.endswith("weight") and v.ndim == 4]
    assert convs == [
        ("stem.0.weight", (16, 3, 3, 3)),
        ("block1.0.weight", (16, 16, 3, 3)), ("block1.3.weight", (16, 16, 3, 3)),
        ("block2.0.weight", (32, 16, 3, 3)), ("block2.3.weight", (32, 32, 3, 3)),
        ("shortcut2.0.weight", (32, 16, 1, 1)),
        ("block3.0.weight", (64, 32, 3, 3)), ("block3.3.weight", (64, 64, 3, 3)),
        ("shortcut3.0.weight", (64, 32, 1, 1)),
    ]
    assert m.block2[0].stride == (2, 2) and m.shortcut2[0].stride == (2, 2)
    # 78,042 parameters, worked from the layer sizes: convs 432+2304*2+4608+9216+512+18432+36864+2048,
    # batch norms 2*(16*3+32*3+64*3), linear 64*10+10
    assert sum(p.numel() for p in m.parameters()) == 78_042


def test_the_vgg_net_has_the_issues_layers():
    m = models.create("vgg")
    convs = [tuple(v.shape) for k, v in m.state_dict().items() if k.endswith("weight") and v.ndim == 4]
    assert convs == [(32, 3, 3, 3), (32, 32, 3, 3), (64, 32, 3, 3), (64, 64, 3, 3)]
    assert tuple(m.classifier[1].weight.shape) == (10, 64 * 8 * 8)
    assert [type(c).__name__ for c in m.features] == ["Conv2d", "BatchNorm2d", "ReLU"] * 2 + ["MaxPool2d"] + \
        ["Conv2d", "BatchNorm2d", "ReLU"] * 2 + ["MaxPool2d"]
