"""`cnnlab.save` / `cnnlab.load`: state dicts and checkpoints without pickle.

The file is a NumPy .npz archive. Arrays are stored as members named by their
position in the object; everything else (dict keys, numbers, strings, lists)
goes into one JSON member, `__cnnlab__`, that points at the arrays. Loading
uses allow_pickle=False, so opening a file never runs code. Writes go to a
temporary file in the same folder and are renamed into place, so a crash never
leaves a half-written checkpoint where the old one was.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

from .creation import from_numpy
from .tensor import Tensor

_META = "__cnnlab__"
FORMAT_VERSION = 1


def _encode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, Tensor):
        key = f"a{len(arrays)}"
        arrays[key] = np.array(obj.detach().numpy(), order="C")  # keeps 0-d arrays 0-d
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = np.array(obj, order="C")
        return {"__ndarray__": key}
    if isinstance(obj, dict):
        items = [[_encode(k, arrays) if not isinstance(k, str) else k, _encode(v, arrays)] for k, v in obj.items()]
        return {"__dict__": items}
    if isinstance(obj, (list, tuple)):
        return {"__tuple__" if isinstance(obj, tuple) else "__list__": [_encode(v, arrays) for v in obj]}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cnnlab.save: cannot store a {type(obj).__name__}; use tensors, arrays, numbers, "
                    f"strings, lists and dicts")


def _decode(obj: Any, arrays) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return from_numpy(np.array(arrays[obj["__tensor__"]]))
        if "__ndarray__" in obj:
            return np.array(arrays[obj["__ndarray__"]])
        if "__dict__" in obj:
            return {(_decode(k, arrays) if isinstance(k, dict) else k): _decode(v, arrays) for k, v in obj["__dict__"]}
        if "__tuple__" in obj:
            return tuple(_decode(v, arrays) for v in obj["__tuple__"])
        if "__list__" in obj:
            return [_decode(v, arrays) for v in obj["__list__"]]
    return obj


def save(obj: Any, f: str | os.PathLike | io.IOBase) -> None:
    """Write a state dict (or any nest of dicts/lists of tensors, arrays, numbers, strings) to f.

    >>> cnnlab.save(model.state_dict(), "convnet.npz")
    """
    arrays: dict[str, np.ndarray] = {}
    meta = {"format": "cnnlab", "version": FORMAT_VERSION, "root": _encode(obj, arrays)}
    arrays[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    if not isinstance(f, (str, os.PathLike)):
        np.savez(f, **arrays)
        return
    write_atomically(f, lambda fh: np.savez(fh, **arrays))


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Call write(file) on a temporary file beside `path`, then rename it into place: a crash
    or an error leaves the old file (and no temporary). Creates the folder.

    >>> write_atomically("metrics.json", lambda f: f.write(text.encode()))
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(f: str | os.PathLike | io.IOBase, map_location: Any = None, weights_only: bool = True) -> Any:
    """Read what `save` wrote. Never unpickles; a damaged or foreign file raises ValueError naming it.

    map_location='cpu' is accepted for PyTorch compatibility (tensors load on the CPU).
    """
    name = str(f) if isinstance(f, (str, os.PathLike)) else getattr(f, "name", "<stream>")
    if isinstance(f, (str, os.PathLike)) and not os.path.exists(f):
        raise FileNotFoundError(f"cnnlab.load: no such file: {name}")
    try:
        z = np.load(f, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError(f"cnnlab.load: {name} is a single .npy array, not a file cnnlab.save wrote")
        with z:
            if _META not in z.files:
                raise ValueError(f"cnnlab.load: {name} is an .npz file but not one cnnlab wrote "
                                 f"(no {_META} entry)")
            meta = json.loads(bytes(z[_META]).decode("utf-8"))
            arrays = {k: z[k] for k in z.files if k != _META}
    except ValueError as e:
        if str(e).startswith("cnnlab.load"):
            raise
        raise ValueError(f"cnnlab.load: {name} is not a cnnlab file (not an .npz archive): {e}") from e
    except (zipfile.BadZipFile, OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError, TypeError) as e:
        raise ValueError(f"cnnlab.load: {name} is not a readable cnnlab file (truncated or corrupt?): {e}") from e
    if meta.get("format") != "cnnlab":
        raise ValueError(f"cnnlab.load: {name} was not written by cnnlab.save")
    if meta.get("version", 0) > FORMAT_VERSION:
        raise ValueError(f"cnnlab.load: {name} uses format version {meta['version']}, newer than this "
                         f"cnnlab understands ({FORMAT_VERSION}); upgrade cnnlab")
    return _decode(meta["root"], arrays)
