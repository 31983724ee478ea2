"""Damaged and foreign checkpoint files: every one gives a single clear CheckpointError (a
ValueError naming the file), never another exception, and never NumPy's advice to load
"unsafely with allow_pickle". Random damage (truncations, byte flips, rewritten metadata)
either leaves the original data or is refused that way."""
from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import cnnlab
from cnnlab import nn, optim
from cnnlab.checkpoint import load_checkpoint, model_from_checkpoint, resume, save_checkpoint
from cnnlab.optim import lr_scheduler
from cnnlab.serialization import CheckpointError
from cnnlab.train import Run

META = "__cnnlab__.npy"


def small_run() -> Run:
    """A batch-norm model after one SGD step with momentum and a step schedule: every
    section of a checkpoint has something in it."""
    cnnlab.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    x, y = cnnlab.randn(4, 1, 4, 4), cnnlab.tensor(np.array([0, 1, 2, 0]))
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    run = Run(model, None, opt, None, 3, None, (), None, sched, "epoch")
    run.epoch, run.step, run.batch_in_epoch = 1, 5, 1
    run.history.steps.append({"step": 5, "loss": 1.25})
    return run


EXTRA = {"data": "mnist-sample", "input_shape": [1, 4, 4], "classes": ["a", "b", "c"], "seed": 0}


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.npz"
    save_checkpoint(path, small_run(), EXTRA)
    return path.read_bytes()


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def archive(parts: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, blob in parts.items():
            zf.writestr(name, blob)
    return buf.getvalue()


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def meta_of(data: bytes) -> dict:
    return json.loads(np.load(io.BytesIO(members(data)[META])).tobytes())


def with_meta(data: bytes, text: str) -> bytes:
    """The archive with its metadata member rewritten (a valid CRC: only the content lies)."""
    parts = members(data)
    parts[META] = npy(np.frombuffer(text.encode(), np.uint8))
    return archive(parts)


def assert_one_clean_error(error: BaseException, path: Path) -> None:
    text = str(error)
    assert isinstance(error, ValueError), repr(error)
    assert str(path) in text and "\n" not in text, text
    assert "allow_pickle" not in text and "unsafe" not in text, text


def refused(path: Path) -> CheckpointError:
    with pytest.raises(ValueError) as caught:
        load_checkpoint(path)
    assert_one_clean_error(caught.value, path)
    return caught.value


def same(a, b) -> bool:
    """Deep equality, tensors by dtype, shape and values (NaN equal to NaN)."""
    if isinstance(a, cnnlab.Tensor) or isinstance(b, cnnlab.Tensor):
        return (isinstance(a, cnnlab.Tensor) and isinstance(b, cnnlab.Tensor) and a.dtype == b.dtype
                and np.array_equal(a.numpy(), b.numpy(), equal_nan=a.dtype.kind == "f"))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def edit(meta: dict, change) -> str:
    change(meta["root"]["__dict__"])
    return json.dumps(meta)


def entry(items: list, key: str) -> list:
    return next(pair for pair in items if pair[0] == key)


def nested(depth: int) -> dict:
    node: dict = {"__list__": []}
    for _ in range(depth):
        node = {"__list__": [node]}
    return node


# ------------------------------------------------------------------ the cases the issue names
WRONG_SHAPES = {
    "metadata is a list": lambda m: json.dumps([1, 2, 3]),
    "metadata is a string": lambda m: json.dumps("checkpoint"),
    "metadata without format": lambda m: json.dumps({"version": 1, "root": m["root"]}),
    "root is a bare list": lambda m: json.dumps({**m, "root": [1, 2]}),
    "missing state_dict": lambda m: edit(m, lambda d: d.remove(entry(d, "state_dict"))),
    "missing optimizer": lambda m: edit(m, lambda d: d.remove(entry(d, "optimizer"))),
    "missing counters": lambda m: edit(m, lambda d: d.remove(entry(d, "epoch"))),
    "dangling array name": lambda m: json.dumps(m).replace('"__tensor__": "a0"', '"__tensor__": "a999"'),
    "array name of the wrong type": lambda m: json.dumps(m).replace('"__tensor__": "a0"', '"__tensor__": [0]'),
    "nesting past the decoder's limit": lambda m: json.dumps({**m, "root": nested(200)}),
    "nesting past JSON's limit": lambda m: '{"format": "cnnlab", "version": 1, "root": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "format version from the future": lambda m: json.dumps({**m, "version": 99}),
    "format version of the wrong type": lambda m: json.dumps({**m, "version": "1"}),
    "a dict entry that is not a pair": lambda m: edit(m, lambda d: d.append(["lonely"])),
    "an untagged object": lambda m: edit(m, lambda d: entry(d, "extra").__setitem__(1, {"x": 1})),
    "an unhashable key": lambda m: edit(m, lambda d: d.append([{"__list__": [1]}, 2])),
    "epoch is text": lambda m: edit(m, lambda d: entry(d, "epoch").__setitem__(1, "1")),
    "epoch is negative": lambda m: edit(m, lambda d: entry(d, "epoch").__setitem__(1, -1)),
    "elapsed is infinite": lambda m: edit(m, lambda d: entry(d, "elapsed").__setitem__(1, float("inf"))),
    "unknown optimizer": lambda m: json.dumps(m).replace('"SGD"', '"Evil"'),
    "scheduler type names a non-scheduler": lambda m: json.dumps(m).replace('"StepLR"', '"__class__"'),
    "scheduler state of the wrong kinds": lambda m: json.dumps(m).replace('"last_epoch"], 0', '"last_epoch"], "x"')
    .replace('["last_epoch", 0]', '["last_epoch", "x"]'),
    "model of an unknown kind": lambda m: json.dumps(m).replace('"Conv2d"', '"Evil"'),
    "model description is a list": lambda m: edit(m, lambda d: entry(d, "model").__setitem__(1, {"__list__": []})),
    "history is a number": lambda m: edit(m, lambda d: entry(d, "history").__setitem__(1, 3)),
    "random state is junk": lambda m: edit(m, lambda d: entry(d, "rng").__setitem__(1, {"__dict__": [["x", 1]]})),
    "input shape is a number": lambda m: json.dumps(m).replace('{"__list__": [1, 4, 4]}', "5"),
    "classes are numbers": lambda m: json.dumps(m).replace('{"__list__": ["a", "b", "c"]}', '{"__list__": [1, 2]}'),
    "optimizer group lr is text": lambda m: json.dumps(m).replace('["lr", 0.1]', '["lr", "fast"]'),
}


@pytest.mark.parametrize("case", sorted(WRONG_SHAPES))
def test_metadata_of_the_wrong_shape(original, tmp_path, case):
    text = WRONG_SHAPES[case](meta_of(original))
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(with_meta(original, text))
    assert text != json.dumps(meta_of(original)), "the case changed nothing"
    refused(path)


def rewrite_member(data: bytes, name: str, blob: bytes) -> bytes:
    parts = members(data)
    parts[name] = blob
    return archive(parts)


def test_a_huge_declared_shape_allocates_nothing(original, tmp_path):
    blob = members(original)["a0.npy"]
    header_end = blob.index(b"\n") + 1
    header = blob[:header_end].decode("latin1")
    start, stop = header.index("'shape': (") + len("'shape': ("), header.index(")")
    forged = (header[:start] + "4000000000, 4000000000" + header[stop:]).encode("latin1")
    forged = forged[:-1].rstrip(b" ")
    forged = forged + b" " * (header_end - len(forged) - 1) + b"\n"   # same length: the header stays aligned
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(rewrite_member(original, "a0.npy", forged + blob[header_end:]))
    assert "shape" in str(refused(path))


def test_pickled_members_are_refused_without_numpys_advice(original, tmp_path):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(rewrite_member(original, "a0.npy", npy(np.array([{"run": print}], dtype=object))))
    assert "pickled" in str(refused(path))
    path.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)   # a bare pickle stream
    refused(path)


def test_a_foreign_member_or_a_folder(original, tmp_path):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(rewrite_member(original, "notes.txt", b"hello"))
    refused(path)
    folder = tmp_path / "folder.npz"
    folder.mkdir()
    with pytest.raises(ValueError) as caught:
        cnnlab.load(folder)
    assert_one_clean_error(caught.value, folder)


def test_a_state_dict_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.npz"
    cnnlab.save(small_run().model.state_dict(), path)
    assert "state_dict" in str(refused(path))


SCHEDULES = {
    "StepLR": {"step_size": 2}, "MultiStepLR": {"milestones": [1, 3]}, "ExponentialLR": {"gamma": 0.9},
    "CosineAnnealingLR": {"T_max": 4}, "ReduceLROnPlateau": {"patience": 0},
    "OneCycleLR": {"max_lr": 0.1, "total_steps": 10, "cycle_momentum": False}, "WarmupCosineLR": {"T_max": 10, "warmup": 2},
}


@pytest.mark.parametrize("opt_name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta"])
def test_every_optimizer_and_schedule_passes_the_checks(tmp_path, opt_name):
    """The checks refuse nothing cnnlab writes: each optimizer after a step, with each schedule."""
    for sched_name, kwargs in SCHEDULES.items():
        if sched_name == "OneCycleLR":   # cycling momentum too where the optimizer has one
            kwargs = {**kwargs, "cycle_momentum": opt_name in ("SGD", "Adam", "AdamW", "RMSprop")}
        run = small_run()
        opt = getattr(optim, opt_name)(run.model.parameters(), lr=0.01)
        run.optimizer, run.scheduler = opt, getattr(lr_scheduler, sched_name)(opt, **kwargs)
        nn.functional.cross_entropy(run.model(cnnlab.randn(2, 1, 4, 4)), cnnlab.tensor(np.array([0, 1]))).backward()
        opt.step()
        run.scheduler.step(*([0.5] if sched_name == "ReduceLROnPlateau" else []))
        path = tmp_path / f"{opt_name}-{sched_name}.npz"
        save_checkpoint(path, run, EXTRA)
        back = resume(path, None, 3)
        assert type(back.optimizer).__name__ == opt_name and type(back.scheduler).__name__ == sched_name


# ------------------------------------------------------------------ random damage
def check_result(path: Path, original_data: dict, rewritten: bool) -> None:
    try:
        ckpt = load_checkpoint(path)
    except ValueError as e:
        assert_one_clean_error(e, path)
        event("refused")
        return
    event("loaded")
    if not rewritten:   # bytes were damaged: only what zip does not checksum may differ
        assert same(ckpt, original_data)
        return
    if not same(ckpt, original_data):   # valid but different metadata: it must then work
        model_from_checkpoint(ckpt)
        resume(path, None, 3)


@pytest.fixture(scope="module")
def original_data(original, tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.npz"
    path.write_bytes(original)
    return load_checkpoint(path)


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(cut=st.floats(0, 1, exclude_max=True))
def test_truncated_anywhere(original, original_data, tmp_path_factory, cut):
    path = tmp_path_factory.mktemp("cut") / "checkpoint.npz"
    path.write_bytes(original[: int(len(original) * cut)])
    check_result(path, original_data, rewritten=False)


@SETTINGS
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=6),
       near_end=st.booleans())
def test_bytes_flipped_anywhere(original, original_data, tmp_path_factory, flips, near_end):
    data = bytearray(original)
    # half the examples hit the zip directory at the end, where most of the structure is
    start = max(0, len(data) - 600) if near_end else 0
    for where, xor in flips:
        data[start + int((len(data) - start) * where)] ^= xor
    path = tmp_path_factory.mktemp("flip") / "checkpoint.npz"
    path.write_bytes(bytes(data))
    check_result(path, original_data, rewritten=False)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**12) | st.floats(allow_nan=True) | st.text(max_size=5)
    | st.sampled_from(["a0", "a3", "a99", "__tensor__", "__dict__", "SGD", "StepLR", "Conv2d", "sequential"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["__tensor__", "__ndarray__", "__dict__", "__list__", "__tuple__", "x"]), inner, max_size=2),
    max_leaves=8)


def paths_in(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths_in(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths_in(v, prefix + (i,))


@SETTINGS
@given(pick=st.floats(0, 1, exclude_max=True), value=JSON, delete=st.booleans())
def test_metadata_rewritten(original, original_data, tmp_path_factory, pick, value, delete):
    meta = meta_of(original)
    spots = list(paths_in(meta))[1:]
    spot = spots[int(len(spots) * pick)]
    parent = meta
    for key in spot[:-1]:
        parent = parent[key]
    if delete:
        del parent[spot[-1]]
    else:
        parent[spot[-1]] = value
    path = tmp_path_factory.mktemp("meta") / "checkpoint.npz"
    path.write_bytes(with_meta(original, json.dumps(meta)))
    check_result(path, original_data, rewritten=True)


# ------------------------------------------------------------------ the command line
@pytest.fixture(scope="module")
def damaged_run(original, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runs") / "broken"
    folder.mkdir()
    (folder / "checkpoint.npz").write_bytes(with_meta(original, json.dumps(["not", "a", "checkpoint"])))
    return folder


@pytest.mark.parametrize("command", [
    ["evaluate", "{run}"],
    ["predict", "{run}", "{image}"],
    ["export", "{run}", "-o", "{tmp}/exported"],
    ["summary", "{run}"],
    ["train", "--resume", "{run}", "--limit", "64"],
])
def test_the_cli_says_one_line_and_exits_2(damaged_run, tmp_path, command):
    from cnnlab.assets import sample_image

    args = [a.format(run=damaged_run, image=sample_image("mnist_7.png"), tmp=tmp_path) for a in command]
    r = subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, cwd=tmp_path,
                       env=dict(os.environ, CNNLAB_QUIET="1"), timeout=300)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "allow_pickle" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "broken" in lines[0], r.stderr
