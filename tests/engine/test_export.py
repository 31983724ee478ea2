"""`cnnlab export RUN -o DIR` and cnnlab.export: a trained checkpoint becomes model.py plus
weights, and PyTorch, run in a process of its own, computes what cnnlab computes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cnnlab
from cnnlab import cli, models, optim
from cnnlab.checkpoint import save_checkpoint
from cnnlab.data import DataLoader, TensorDataset
from cnnlab.export import pytorch_code
from cnnlab.train import Run

# run in the exported folder by PyTorch alone: the model, its weights, a batch in, logits out
CHECK = """
import sys, numpy as np, torch
sys.path.insert(0, sys.argv[1])
from model import model
model.load_state_dict(torch.load(sys.argv[1] + "/weights.pt"))
model.eval()
with torch.no_grad():
    out = model(torch.from_numpy(np.load(sys.argv[2])))
np.save(sys.argv[3], out.numpy())
"""


def trained_checkpoint(folder: Path, name: str, normalize=None, **kwargs) -> Path:
    """A checkpoint of `name` after a few Adam steps on random images."""
    cnnlab.manual_seed(0)
    model = models.create(name, normalize=normalize, **kwargs)
    c, size = model.config["in_channels"], model.config["input_size"]
    rng = np.random.default_rng(0)
    data = TensorDataset(cnnlab.from_numpy(rng.random((24, c, size, size), np.float32)),
                         cnnlab.from_numpy(rng.integers(0, 10, 24)))
    run = Run(model, DataLoader(data, 8, shuffle=True, seed=0), optim.Adam(model.parameters(), 1e-2), epochs=1)
    run.run()
    path = folder / "checkpoint.npz"
    save_checkpoint(path, run)
    return path


def torch_outputs(out: Path, x: np.ndarray, tmp_path: Path) -> np.ndarray:
    np.save(tmp_path / "x.npy", x)
    r = subprocess.run([sys.executable, "-c", CHECK, str(out), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return np.load(tmp_path / "y.npy")


@pytest.mark.parametrize("name, normalize, kwargs", [
    ("convnet", None, {}),
    ("modern", {"mean": [0.1307], "std": [0.3081]}, {"width": 4}),
    ("simplecnn", {"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]}, {"input_size": 16}),
], ids=["convnet", "modern-normalized", "simplecnn-normalized"])
def test_an_exported_checkpoint_computes_the_same_in_pytorch(tmp_path, capsys, name, normalize, kwargs):
    pytest.importorskip("torch", reason="checking the export needs PyTorch")
    ckpt = trained_checkpoint(tmp_path, name, normalize, **kwargs)
    out = tmp_path / "exported"
    assert cli.main(["export", str(tmp_path), "-o", str(out)]) == 0   # the run folder, as evaluate takes
    assert sorted(p.name for p in out.iterdir()) == ["model.py", "weights.npz", "weights.pt"]
    assert "wrote" in capsys.readouterr().out
    model = cnnlab.train.model_from_checkpoint(cnnlab.train.load_checkpoint(ckpt))
    model.eval()
    c, size = model.config["in_channels"], model.config["input_size"]
    x = np.random.default_rng(5).random((3, c, size, size), np.float32)   # raw pixels, 0..1
    with cnnlab.no_grad():
        want = model(cnnlab.from_numpy(x)).numpy()
    np.testing.assert_allclose(torch_outputs(out, x, tmp_path), want, rtol=1e-5, atol=1e-5)
    code = (out / "model.py").read_text()
    assert ("class Normalize(nn.Module)" in code) == (normalize is not None)
    assert "import cnnlab" not in code


def test_the_exported_forward_is_the_zoo_definitions():
    code = pytorch_code(models.create("lenet5", normalize={"mean": [0.5], "std": [0.25]}))
    assert "        self.normalize = Normalize(mean=[0.5], std=[0.25])" in code
    net = code[code.index("class Net(nn.Module)"):]
    forward = net[net.index("    def forward"):net.index("\n\n\nmodel = Net()")]
    body = [ln.strip() for ln in forward.splitlines()[1:]]
    assert body[0] == "x = self.normalize(x)  # raw pixels in, as in cnnlab"
    source = (Path(cnnlab.__file__).parent / "zoo_defs.py").read_text()
    assert "\n".join(f"        {ln}" for ln in body[1:]) in source   # the rest, line for line


def test_export_without_pytorch_writes_npz_that_numpy_reads(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)   # `import torch` now fails as if not installed
    model = models.create("fcnet")
    files = cnnlab.export.export_for_pytorch(tmp_path, model)
    assert [f.name for f in files] == ["model.py", "weights.npz"]
    arrays = cnnlab.export.load_npz_state(tmp_path / "weights.npz")
    assert sorted(arrays) == sorted(model.state_dict())
    np.testing.assert_array_equal(arrays["fc1.weight"], model.fc1.weight.detach().numpy())


def test_export_command_refuses_what_it_cannot_do(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    model = models.build_sequential([{"type": "SumPool2d", "args": {"kernel_size": 2}}, {"type": "Flatten", "args": {}}])
    run = Run(model, [], optim.SGD([cnnlab.nn.Parameter(cnnlab.zeros(1))], lr=0.1), epochs=0)
    save_checkpoint(tmp_path / "sum.npz", run)
    assert cli.main(["export", str(tmp_path / "sum.npz"), "-o", str(tmp_path / "o")]) == 2
    assert "cannot export SumPool2d" in capsys.readouterr().err
    assert json.dumps(models.describe(model))   # it was a describable model, just not a PyTorch one
