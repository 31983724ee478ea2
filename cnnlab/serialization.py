"""`cnnlab.save` / `cnnlab.load`: state dicts and checkpoints without pickle.

The file is a NumPy .npz archive. Arrays are stored as members named by their
position in the object; everything else (dict keys, numbers, strings, lists)
goes into one JSON member, `__cnnlab__`, that points at the arrays. Loading
never unpickles, so opening a file never runs code; it reads a member only once
its header's shape agrees with its size, checks every entry of the metadata, and
refuses anything else with one CheckpointError naming the file. Writes go to a
temporary file in the same folder and are renamed into place, so a crash never
leaves a half-written checkpoint where the old one was.
"""
from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import zipfile
import zlib
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


_TAGS = ("__tensor__", "__ndarray__", "__dict__", "__tuple__", "__list__")
# Far deeper than any state dict or checkpoint nests, and far below Python's recursion limit,
# so a hostile file is refused with a message instead of a RecursionError.
_MAX_DEPTH = 64


class CheckpointError(ValueError):
    """A file cnnlab cannot load: damaged, truncated, foreign or of the wrong shape. The
    message names the file and what is wrong, in one line."""


class _Damage(Exception):
    """What is wrong inside a file, before the caller adds the file's name."""


def _decode(node: Any, arrays: dict[str, np.ndarray], depth: int = 0) -> Any:
    """The object `_encode` turned into `node`, checking every step: a file that was changed
    after cnnlab wrote it may hold any JSON at all."""
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if depth > _MAX_DEPTH:
        raise _Damage(f"its metadata nests deeper than {_MAX_DEPTH} levels")
    if not isinstance(node, dict) or len(node) != 1 or next(iter(node)) not in _TAGS:
        raise _Damage(f"its metadata holds an entry cnnlab does not write: {_excerpt(node)}")
    (tag, value), = node.items()
    if tag in ("__tensor__", "__ndarray__"):
        if not isinstance(value, str) or value not in arrays:
            raise _Damage(f"its metadata names an array {_excerpt(value)} that the file does not hold")
        array = np.array(arrays[value])
        if tag == "__ndarray__":
            return array
        if array.dtype.kind not in "biuf":
            raise _Damage(f"array {value} holds {array.dtype} values, not numbers")
        return from_numpy(array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("=")))
    if not isinstance(value, list):
        raise _Damage(f"its metadata holds {tag} with {_excerpt(value)} where a list belongs")
    if tag != "__dict__":
        items = [_decode(v, arrays, depth + 1) for v in value]
        return tuple(items) if tag == "__tuple__" else items
    out = {}
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            raise _Damage(f"its metadata holds a dict entry {_excerpt(pair)} that is not a [key, value] pair")
        key = _decode(pair[0], arrays, depth + 1)
        try:
            hash(key)
        except TypeError:
            raise _Damage(f"its metadata holds a dict key {_excerpt(pair[0])} that cannot be a key") from None
        out[key] = _decode(pair[1], arrays, depth + 1)
    return out


def _excerpt(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except RecursionError:
        return "a deeply nested value"
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        os.chmod(tmp, _new_file_mode())   # mkstemp's 0600 would make checkpoints private, unlike other files
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _new_file_mode() -> int:
    """The mode open() gives a new file: 0666 less the umask (read by setting it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def load(f: str | os.PathLike | io.IOBase, map_location: Any = None, weights_only: bool = True) -> Any:
    """Read what `save` wrote. Never unpickles. A damaged or foreign file raises CheckpointError
    (a ValueError) naming the file and what is wrong; a missing one FileNotFoundError.

    map_location='cpu' is accepted for PyTorch compatibility (tensors load on the CPU).
    """
    name = str(f) if isinstance(f, (str, os.PathLike)) else getattr(f, "name", "<stream>")
    if isinstance(f, (str, os.PathLike)) and not os.path.exists(f):
        raise FileNotFoundError(f"cnnlab.load: no such file: {name}")
    try:
        if isinstance(f, (str, os.PathLike)):
            with open(f, "rb") as fh:
                meta, arrays = _read_archive(fh)
        else:
            meta, arrays = _read_archive(f)
        _check_meta(meta)
    except _Damage as e:
        raise CheckpointError(f"cnnlab.load: {name} {e}") from None
    except IsADirectoryError:
        raise CheckpointError(f"cnnlab.load: {name} is a folder, not a file") from None
    except PermissionError:
        raise CheckpointError(f"cnnlab.load: {name} cannot be read: permission denied") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, struct.error, zlib.error,
            NotImplementedError, RuntimeError, OverflowError, ValueError, MemoryError) as e:
        # zipfile's own words ("Bad CRC-32 for file 'a0.npy'") help; NumPy's are never passed on
        raise CheckpointError(f"cnnlab.load: {name} is damaged (truncated or corrupt?): {_reason(e)}") from None
    try:
        return _decode(meta["root"], arrays)
    except _Damage as e:
        raise CheckpointError(f"cnnlab.load: {name} is damaged: {e}") from None


def _read_archive(fh: BinaryIO) -> tuple[Any, dict[str, np.ndarray]]:
    """(metadata, {name: array}) of an archive `save` wrote; _Damage when it is not one."""
    start = fh.tell()
    magic = fh.read(6)
    fh.seek(start)
    if magic == b"\x93NUMPY":
        raise _Damage("is a single .npy array, not a file cnnlab.save wrote")
    if not magic.startswith(b"PK"):
        raise _Damage("is not a cnnlab file (not an .npz archive)")
    arrays = {}
    with zipfile.ZipFile(fh) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy") or info.is_dir():
                raise _Damage(f"holds a member {_excerpt(info.filename)} that cnnlab does not write")
            arrays[info.filename[:-4]] = _read_member(zf, info)
    meta = arrays.pop(_META, None)
    if meta is None:
        raise _Damage(f"is an .npz file but not one cnnlab wrote (no {_META} entry)")
    if meta.dtype != np.uint8 or meta.ndim != 1:
        raise _Damage(f"has a {_META} entry that is not JSON text")
    try:
        return json.loads(meta.tobytes().decode("utf-8")), arrays
    except (ValueError, UnicodeDecodeError) as e:    # JSONDecodeError is a ValueError
        raise _Damage(f"has metadata that is not valid JSON: {e}") from None
    except RecursionError:
        raise _Damage("has metadata nested too deeply to read") from None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One .npy member, read only after its header's shape and dtype agree with its size, so a
    forged shape never allocates memory; zipfile checks the CRC when the last byte is read."""
    where = f"member {info.filename}"
    with zf.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise _Damage(f"has a {where} in an unknown .npy version {version}")
            shape, fortran_order, dtype = read_header(member)
        except ValueError:
            raise _Damage(f"has a {where} whose array header is damaged") from None
        if dtype.hasobject:
            raise _Damage(f"has a {where} holding Python objects (pickled data), which cnnlab never loads")
        if any(n < 0 for n in shape):
            raise _Damage(f"has a {where} with a negative size in its shape {list(shape)}")
        count = int(np.prod(shape, dtype=object)) if shape else 1
        nbytes = count * dtype.itemsize
        if member.tell() + nbytes != info.file_size:
            raise _Damage(f"has a {where} whose shape {list(shape)} does not match its size "
                          f"({info.file_size} bytes)")
        data = member.read(nbytes)
        if len(data) != nbytes or member.read(1):
            raise _Damage(f"has a {where} that ends early")
    flat = np.frombuffer(data, dtype=dtype, count=count)
    return flat.reshape(shape[::-1]).T if fortran_order else flat.reshape(shape)


def _check_meta(meta: Any) -> None:
    if not isinstance(meta, dict) or meta.get("format") != "cnnlab" or "root" not in meta:
        raise _Damage("was not written by cnnlab.save (its metadata lacks the cnnlab format mark)")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _Damage(f"has a damaged format version {_excerpt(version)}")
    if version > FORMAT_VERSION:
        raise _Damage(f"uses format version {version}, newer than this cnnlab understands "
                      f"({FORMAT_VERSION}); upgrade cnnlab")


def _reason(error: BaseException) -> str:
    """The error's own words on one line, unless they are NumPy's advice to load unsafely."""
    text = " ".join(str(error).split()) or type(error).__name__
    return "unreadable array data" if "pickle" in text.lower() else text
