"""Every zoo model: builds with its defaults, runs a batch, and rebuilds from its description."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
from cnnlab import models

ZOO = [n for n in models.names() if n != "sequential"]


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_runs_and_rebuilds_from_its_description(name):
    cnnlab.manual_seed(0)
    model = models.create(name)
    cfg = model.config
    x = cnnlab.randn(2, cfg["in_channels"], cfg["input_size"], cfg["input_size"])
    model.eval()
    y = model(x)
    assert tuple(y.shape) == (2, cfg["num_classes"])
    twin = models.from_description(models.describe(model))
    twin.load_state_dict(model.state_dict())
    twin.eval()
    np.testing.assert_array_equal(twin(x).numpy(), y.numpy())


def test_seed_002_network_has_the_tutorials_layers():
    m = models.create("cifarcnn")
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes == {
        "features.0.weight": (32, 3, 3, 3), "features.0.bias": (32,),
        "features.3.weight": (32, 32, 3, 3), "features.3.bias": (32,),
        "classifier.1.weight": (512, 8192), "classifier.1.bias": (512,),
        "classifier.4.weight": (10, 512), "classifier.4.bias": (10,),
    }
    # 896 + 9,248 + 4,194,816 + 5,130, worked by hand from the layer sizes
    assert sum(p.numel() for p in m.parameters()) == 4_210_090
