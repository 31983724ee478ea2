"""Every zoo model: builds with its defaults, runs a batch, and rebuilds from its description."""
from __future__ import annotations

import json

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


# ---------------------------------------------------------------- normalisation inside the model
STATS = {"mean": [0.1307], "std": [0.3081]}


def test_normalize_layer_is_per_channel_standardisation():
    x = np.random.default_rng(0).random((2, 3, 4, 5), np.float32)
    mean, std = [0.5, 0.25, 0.125], [0.2, 0.4, 0.8]
    norm = cnnlab.nn.Normalize(mean, std)
    want = (x - np.float32(mean)[:, None, None]) / np.float32(std)[:, None, None]
    np.testing.assert_array_equal(norm(cnnlab.from_numpy(x)).numpy(), want)
    assert repr(norm) == "Normalize(mean=[0.5, 0.25, 0.125], std=[0.2, 0.4, 0.8])"
    assert repr(cnnlab.nn.Normalize(**STATS)) == "Normalize(mean=[0.1307], std=[0.3081])"
    assert {k: (v.dtype, tuple(v.shape)) for k, v in norm.state_dict().items()} == {
        "mean": (cnnlab.float32, (3,)), "std": (cnnlab.float32, (3,))}
    assert list(norm.parameters()) == []   # fixed statistics, not learned


def test_normalize_layer_passes_gradients_and_refuses_bad_input():
    x = cnnlab.randn(2, 1, 3, 3, requires_grad=True)
    cnnlab.nn.Normalize(**STATS)(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 1, 3, 3), 1 / 0.3081), rtol=1e-6)
    with pytest.raises(cnnlab.LayerError, match=r"expected \(N, 1, \.\.\.\) input"):
        cnnlab.nn.Normalize(**STATS)(cnnlab.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="std must be > 0"):
        cnnlab.nn.Normalize([0.5], [0.0])
    with pytest.raises(ValueError, match="one value per channel"):
        cnnlab.nn.Normalize([0.5, 0.5], [0.2])


@pytest.mark.parametrize("name", ZOO)
def test_a_normalized_zoo_model_is_the_plain_model_on_standardised_pixels(name, tmp_path):
    plain = models.create(name)
    c = plain.config["in_channels"]
    stats = {"mean": [0.2 + 0.1 * i for i in range(c)], "std": [0.3 + 0.05 * i for i in range(c)]}
    normed = models.create(name, normalize=stats)
    assert list(normed.state_dict())[:2] == ["normalize.mean", "normalize.std"]
    assert list(normed.state_dict())[2:] == list(plain.state_dict())
    assert next(iter(normed.named_children()))[0] == "normalize"
    normed.load_state_dict({**plain.state_dict(), **{f"normalize.{k}": v for k, v in
                                                     cnnlab.nn.Normalize(**stats).state_dict().items()}})
    plain.eval()
    normed.eval()
    size = plain.config["input_size"]
    x = np.random.default_rng(1).random((2, c, size, size), np.float32)
    standardised = (x - np.float32(stats["mean"])[:, None, None]) / np.float32(stats["std"])[:, None, None]
    np.testing.assert_array_equal(normed(cnnlab.from_numpy(x)).numpy(), plain(cnnlab.from_numpy(standardised)).numpy())
    # the statistics travel in the state dict and in the description
    cnnlab.save(normed.state_dict(), tmp_path / "w.pt")
    desc = json.loads(json.dumps(models.describe(normed)))
    assert desc["kwargs"]["normalize"] == stats
    again = models.from_description(desc)
    again.load_state_dict(cnnlab.load(tmp_path / "w.pt"))
    again.eval()
    np.testing.assert_array_equal(again(cnnlab.from_numpy(x)).numpy(), normed(cnnlab.from_numpy(x)).numpy())


def test_without_normalize_nothing_changes():
    m = models.create("convnet")
    assert "normalize" not in m.config and not any(k.startswith("normalize") for k in m.state_dict())
    assert not m._forward_pre_hooks
    assert models.describe(m) == {"name": "convnet", "kwargs": {"in_channels": 1, "num_classes": 10, "input_size": 28}}


def test_normalize_must_match_the_input_channels():
    with pytest.raises(ValueError, match="normalize has 1 channel means, the model takes 3"):
        models.create("simplecnn", normalize=STATS)
    with pytest.raises(ValueError, match="model 'convnet'"):
        models.create("convnet", normalize={"mean": [0.5]})


def test_a_sequential_can_start_with_normalize():
    layers = [{"type": "Normalize", "args": STATS}, {"type": "Flatten", "args": {}},
              {"type": "Linear", "args": {"in_features": 16, "out_features": 3}}]
    model = models.build_sequential(layers)
    assert isinstance(model[0], cnnlab.nn.Normalize) and list(model.state_dict())[:2] == ["0.mean", "0.std"]
    desc = json.loads(json.dumps(models.describe(model)))
    assert desc["layers"][0] == {"type": "Normalize", "args": STATS}
    again = models.from_description(desc)
    again.load_state_dict(model.state_dict())
    x = cnnlab.rand(2, 1, 4, 4)
    np.testing.assert_array_equal(again(x).numpy(), model(x).numpy())
    np.testing.assert_array_equal(model(x).numpy(), model[1:](((x - 0.1307) / 0.3081)).numpy())


def test_grouped_and_transposed_convolutions_survive_a_description():
    # a description that dropped `groups` rebuilt a groups=1 layer whose weight shape
    # no longer matched the saved state dict
    model = cnnlab.nn.Sequential(cnnlab.nn.Conv2d(4, 8, 3, padding=1, groups=2), cnnlab.nn.ReLU(),
                                 cnnlab.nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1,
                                                           groups=4))
    rebuilt = models.from_description(models.describe(model))
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt[0].groups == 2 and rebuilt[2].groups == 4 and rebuilt[2].output_padding == (1, 1)
    x = cnnlab.randn(2, 4, 5, 5)
    assert np.array_equal(rebuilt(x).numpy(), model(x).numpy())
    assert tuple(model(x).shape) == (2, 4, 10, 10)
