"""A training session's settings — model (or layer list), dataset, hyper-parameters, device,
seed, probe — saved as a small JSON file and reopened, e.g. to start a lesson where the
teacher left it.

>>> save_session("lesson1.json", Session(model="fcnet", epochs=2))
>>> load_session("lesson1.json").model
'fcnet'
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

SESSION_FORMAT = "cnnlab-session"
VERSION = 1
OPTIMIZERS = ("adam", "sgd", "adamw")


@dataclass
class Session:
    model: str = "convnet"              # a zoo name, or "custom" for `layers`
    layers: list[dict[str, Any]] | None = None
    dataset: str = "mnist-sample"       # a catalogue name or a folder path
    limit: int = 0                      # use only N training (and N validation) images; 0 = all
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    batch_size: int = 64
    epochs: int = 3
    device: str = "cpu"
    seed: int = 0
    probe: int = 0                      # which validation sample is the probe

    def check(self) -> None:
        """Raise ValueError naming the first setting that cannot be used."""
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("batch_size", "epochs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.model == "custom" and not self.layers:
            raise ValueError("a custom model needs its layer list")


def session_to_dict(s: Session) -> dict[str, Any]:
    return {"format": SESSION_FORMAT, "version": VERSION, **asdict(s)}


def session_from_dict(d: dict[str, Any], where: str = "session") -> Session:
    if not isinstance(d, dict) or d.get("format") != SESSION_FORMAT:
        raise ValueError(f"{where} is not a cnnlab session file (no \"format\": \"{SESSION_FORMAT}\")")
    if int(d.get("version", 0)) > VERSION:
        raise ValueError(f"{where} was written by a newer cnnlab (session version {d['version']})")
    known = {f.name: f for f in fields(Session)}
    kwargs = {}
    for k, v in d.items():
        if k not in known:
            continue
        default = getattr(Session, k, None)
        try:  # numbers typed by hand as strings, ints given for floats ...
            kwargs[k] = type(default)(v) if isinstance(default, (int, float, str)) and v is not None else v
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {k} = {v!r} is not a valid {type(default).__name__}") from None
    s = Session(**kwargs)
    try:
        s.check()
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    return s


def save_session(path: str | os.PathLike, s: Session) -> None:
    """Write the settings as JSON, atomically (a crash never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(session_to_dict(s), f, indent=1)
    os.replace(tmp, path)


def load_session(path: str | os.PathLike) -> Session:
    try:
        d = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    return session_from_dict(d, str(path))
