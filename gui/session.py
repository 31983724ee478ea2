"""A training session: a `cnnlab.recipe.Recipe` (model or layer list, data, hyper-parameters,
schedule, normalisation, device, seed) plus the app's probe image, saved as a small JSON
file and reopened, e.g. to start a lesson where the teacher left it.

>>> save_session("lesson1.json", Session(model="fcnet", epochs=2))
>>> load_session("lesson1.json").model
'fcnet'

Version 1 files (before the recipe) named the data `dataset` and trained without a
schedule or normalisation at lr 1e-3 for 3 epochs; they reopen as exactly that.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from cnnlab.recipe import Recipe

SESSION_FORMAT = "cnnlab-session"
VERSION = 2
# what a version 1 file meant by a setting it did not write
VERSION1 = {"lr": 1e-3, "epochs": 3, "schedule": "none", "normalize": False, "augment": False}


@dataclass
class Session(Recipe):
    probe: int = 0      # which of the picker's validation samples is the probe

    def recipe(self) -> Recipe:
        return Recipe(**{f.name: getattr(self, f.name) for f in fields(Recipe)})


def session_to_dict(s: Session) -> dict[str, Any]:
    return {"format": SESSION_FORMAT, "version": VERSION, **asdict(s)}


def session_from_dict(d: dict[str, Any], where: str = "session") -> Session:
    if not isinstance(d, dict) or d.get("format") != SESSION_FORMAT:
        raise ValueError(f"{where} is not a cnnlab session file (no \"format\": \"{SESSION_FORMAT}\")")
    version = int(d.get("version", 1))
    if version > VERSION:
        raise ValueError(f"{where} was written by a newer cnnlab (session version {d['version']})")
    if version < 2:
        d = {**VERSION1, **{("data" if k == "dataset" else k): v for k, v in d.items()}}
    try:
        s = Session.from_dict(d)
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
