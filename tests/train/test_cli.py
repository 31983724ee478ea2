"""The `cnnlab` command end to end, in subprocesses, on tiny settings."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnlab.assets import sample_image

ROOT = Path(__file__).resolve().parents[2]


def cnnlab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, CNNLAB_QUIET="1")
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    r = cnnlab("train", "--model", "convnet", "--data", "mnist-sample", "--epochs", "1", "--batch-size", "32",
               "--optimizer", "adam", "--lr", "2e-3", "--device", "cpu", "--seed", "0", "--limit", "640",
               "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "epoch 1/1: train loss" in r.stdout and "val loss" in r.stdout
    return out


def test_train_writes_checkpoint_and_metrics(run_dir):
    assert (run_dir / "checkpoint.npz").exists()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(metrics["steps"]) == 20                      # 640 images / 32
    assert len(metrics["epochs"]) == 1
    steps_csv = (run_dir / "steps.csv").read_text().splitlines()
    assert steps_csv[0].startswith("epoch,step,loss") and len(steps_csv) == 21
    losses = [s["loss"] for s in metrics["steps"]]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_evaluate_predict_summary(run_dir):
    r = cnnlab("evaluate", str(run_dir))
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout and "confusion matrix" in r.stdout
    # evaluate uses the whole validation split: the matrix adds up to all of it
    from cnnlab.data import get_dataset

    rows = [line.split()[1:] for line in r.stdout.split("confusion matrix")[1].splitlines()[2:12]]
    assert sum(int(v) for row in rows for v in row) == len(get_dataset("mnist-sample", train=False))
    r = cnnlab("predict", str(run_dir), str(sample_image("mnist_7.png")), "--top", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("%") == 2
    r = cnnlab("summary", "convnet")
    assert r.returncode == 0 and "Total params: 13,686" in r.stdout
    r = cnnlab("summary", "simplecnn", "--input", "3,32,32", "--batch", "8")
    assert r.returncode == 0 and "[8, 18, 32, 32]" in r.stdout


def test_resume_continues_the_run(run_dir, tmp_path):
    r = cnnlab("train", "--resume", str(run_dir), "--epochs", "2", "--out", str(tmp_path / "more"))
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout and "epoch 2/2" in r.stdout
    metrics = json.loads((tmp_path / "more" / "metrics.json").read_text())
    assert [s["step"] for s in metrics["steps"]] == list(range(1, 41))


def test_normalized_augmented_cosine_run(tmp_path):
    import math

    import cnnlab as engine
    from cnnlab.data import get_dataset
    from cnnlab.train import load_checkpoint, model_from_checkpoint

    out = tmp_path / "recipe"
    r = cnnlab("train", "--data", "mnist-sample", "--epochs", "1", "--batch-size", "32", "--lr", "5e-3",
               "--limit", "640", "--normalize", "--augment", "--schedule", "cosine", "--out", str(out))
    assert r.returncode == 0, r.stderr
    extra = load_checkpoint(out / "checkpoint.npz")["extra"]
    assert extra["augment"] is True
    # the statistics are those of the 640 training images the run used, computed here with NumPy
    train = get_dataset("mnist-sample", train=True)
    idx = np.unique(np.linspace(0, len(train) - 1, 640).astype(int))
    pixels = train.images[idx].astype(np.float64) / 255.0
    assert extra["normalize"]["mean"] == pytest.approx([pixels.mean()], rel=1e-6)   # float32 pixels
    assert extra["normalize"]["std"] == pytest.approx([pixels.std()], rel=1e-6)
    # per-step cosine: 20 steps, a one-step warm-up, then 5e-3 * (1 + cos(pi k / 19)) / 2
    lrs = [s["lr"] for s in json.loads((out / "metrics.json").read_text())["steps"]]
    assert lrs == pytest.approx([5e-3] + [2.5e-3 * (1 + math.cos(math.pi * k / 19)) for k in range(19)])

    # evaluate and predict feed the model normalized pixels, as it was trained: the model
    # normalizes by itself, so its layers after the first, given pixels normalized here, agree
    ckpt = load_checkpoint(out / "checkpoint.npz")
    assert type(model_from_checkpoint(ckpt).normalize).__name__ == "Normalize"
    model = plain_layers(ckpt).eval()
    val = get_dataset("mnist-sample", train=False)
    mean, std = extra["normalize"]["mean"][0], extra["normalize"]["std"][0]
    x = ((val.images.astype(np.float32) / 255.0 - np.float32(mean)) * np.float32(1 / std)).astype(np.float32)
    with engine.no_grad():
        logits = model(engine.from_numpy(x)).numpy()
    acc = float((logits.argmax(1) == np.asarray(val.targets)).mean())
    r = cnnlab("evaluate", str(out))
    assert r.returncode == 0, r.stderr
    assert f"accuracy {acc:.2%}" in r.stdout
    image = str(sample_image("mnist_7.png"))
    r = cnnlab("predict", str(out), image, "--top", "1")
    assert r.returncode == 0, r.stderr
    pic = cnnlab_load(image)
    with engine.no_grad():
        p = engine.nn.functional.softmax(model(engine.from_numpy(((pic - mean) / std)[None].astype(np.float32))),
                                         dim=1).numpy()[0]
    assert f"{train.classes[int(p.argmax())]} {p.max():.1%}" in r.stdout

    # a resumed run keeps the statistics it started with
    r = cnnlab("train", "--resume", str(out), "--epochs", "2", "--out", str(tmp_path / "more"))
    assert r.returncode == 0, r.stderr
    assert load_checkpoint(tmp_path / "more" / "checkpoint.npz")["extra"]["normalize"] == extra["normalize"]


def plain_layers(ckpt):
    """The checkpoint's zoo model without its normalisation layer, with the trained weights."""
    from cnnlab import models

    desc = ckpt["model"]
    model = models.create(desc["name"], **{k: v for k, v in desc["kwargs"].items() if k != "normalize"})
    model.load_state_dict({k: v for k, v in ckpt["state_dict"].items() if not k.startswith("normalize.")})
    return model


def test_evaluate_agrees_with_the_runs_last_validation(tmp_path):
    # the default recipe (normalised inputs, cosine) on 2,000 training images; the
    # validation split has 2,000 images, so --limit keeps all of it and evaluate sees the same
    out = tmp_path / "default"
    r = cnnlab("train", "--limit", "2000", "--out", str(out))
    assert r.returncode == 0, r.stderr
    last = json.loads((out / "metrics.json").read_text())["epochs"][-1]["val_accuracy"]
    r = cnnlab("evaluate", str(out))
    assert r.returncode == 0, r.stderr
    assert f"(val, 2,000 images)" in r.stdout and f"accuracy {last:.2%}" in r.stdout
    config = json.loads((out / "config.json").read_text())
    assert (config["lr"], config["schedule"], config["normalize"], config["limit"]) == (1e-2, "cosine", True, 2000)


def cnnlab_load(path: str) -> np.ndarray:
    from cnnlab.data import load_image

    return load_image(path, size=(28, 28), channels=1)


@pytest.mark.parametrize("args, message", [
    (["train", "--model", "resnet9000"], "unknown model"),
    (["train", "--data", "no-such-data"], "unknown dataset"),
    (["train", "--lr", "0"], "--lr must be > 0"),
    (["train", "--epochs", "0"], "--epochs must be >= 1"),
    (["evaluate", "missing.npz"], "no such checkpoint"),
    (["predict", "missing.npz", "x.png"], "no such checkpoint"),
    (["summary", "convnet", "--input", "1,28"], "--input expects C,H,W"),
    (["train", "--device", "cuda", "--limit", "10"], "--device cuda"),
])
def test_bad_arguments_one_line_exit_2(args, message):
    r = cnnlab(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_checkpoint_that_does_not_fit_the_data(run_dir):
    r = cnnlab("evaluate", str(run_dir), "--data", "shapes-rgb")
    assert r.returncode == 2
    assert "trained on images of shape [1, 28, 28]" in r.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly():
    # `cnnlab summary convnet | head -1`: the reader is gone before cnnlab writes
    env = dict(os.environ, CNNLAB_QUIET="1")
    p = subprocess.Popen([sys.executable, "-m", "cnnlab", "summary", "convnet"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_version_and_help():
    r = cnnlab("--version")
    assert r.returncode == 0 and r.stdout.startswith("cnnlab ")
    for cmd in ("train", "evaluate", "predict", "summary", "datasets", "animate", "gui"):
        r = cnnlab(cmd, "--help")
        assert r.returncode == 0, cmd
        assert "example" in r.stdout.lower(), cmd


def test_holdout_trains_a_dataset_shipped_without_its_test_split(tmp_path):
    # like ../shared/datasets/mnist: the 60,000 training files only
    sys.path.insert(0, str(ROOT / "tests" / "data"))
    from datafiles import write_mnist_folder

    images, labels = write_mnist_folder(tmp_path / "data" / "mnist", n=90)
    base = ("train", "--data", "mnist", "--root", str(tmp_path / "data"), "--batch-size", "16", "--quiet")
    r = cnnlab(*base, "--out", str(tmp_path / "no"))
    assert r.returncode != 0 and "t10k-images-idx3-ubyte.gz" in r.stderr
    r = cnnlab(*base, "--holdout", "30", "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    assert "60 training and 30 validation images (the training split's last 30, held out)" in r.stdout
    # evaluate reads the same 30 images back from the run's recipe
    r = cnnlab("evaluate", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    rows = [line.split()[1:] for line in r.stdout.split("confusion matrix")[1].splitlines()[2:12]]
    counts = np.array([[int(v) for v in row] for row in rows])
    np.testing.assert_array_equal(counts.sum(axis=1), np.bincount(labels[60:], minlength=10))
