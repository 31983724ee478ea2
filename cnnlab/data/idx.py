"""Read and write the IDX format of MNIST and Fashion-MNIST (plain or gzip-compressed).

An IDX file is a 4-byte magic number, `ndim` big-endian uint32 sizes, then the values
in row-major order, big-endian. The magic number is two zero bytes, a type code
(0x08 = uint8) and `ndim`: 2051 (0x00000803) for images N x rows x cols, 2049
(0x00000801) for labels.

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "x-idx1-ubyte.gz")
>>> write_idx(path, np.array([3, 1, 4], dtype=np.uint8))
>>> read_idx(path, magic=2049)
array([3, 1, 4], dtype=uint8)
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

# type code -> big-endian dtype
_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in _TYPES.items()}


def read_bytes(path: str | os.PathLike) -> bytes:
    """A file's bytes, gunzipped if it is a gzip (recognised by content, not name)."""
    data = Path(path).read_bytes()
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except EOFError:
        raise DataError(
            f"{path}: the gzip stream ends early (a truncated or half-downloaded file)"
        ) from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: corrupt gzip data ({e})") from None


def parse_idx(data: bytes, *, magic: int | None = None, name: str = "IDX data") -> np.ndarray:
    """Decode IDX bytes into an array in native byte order.

    `magic`, when given, is the magic number the caller expects (2051 images, 2049
    labels); anything else raises DataError naming `name`.
    """
    if len(data) < 4:
        raise DataError(f"{name}: {len(data)} bytes is too short for an IDX header")
    got = int.from_bytes(data[:4], "big")
    if magic is not None and got != magic:
        raise DataError(f"{name}: expected IDX magic number {magic}, got {got}")
    code, ndim = data[2], data[3]
    if data[:2] != b"\0\0" or code not in _TYPES or ndim == 0:
        raise DataError(f"{name}: {got} (0x{got:08x}) is not an IDX magic number")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: the header promises {ndim} sizes but the file ends first")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _TYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(
            f"{name}: the header promises shape {shape} ({expected} bytes in all), "
            f"the file has {len(data)} bytes"
            + (" (truncated)" if len(data) < expected else "")
        )
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # a writable copy, native order


def read_idx(path: str | os.PathLike, *, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip or plain) into an array; errors name the file."""
    return parse_idx(read_bytes(path), magic=magic, name=str(path))


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write an array as IDX; gzip it when `compress` (default: the name ends in .gz).

    The gzip header carries no time stamp or name, so the same array gives the same
    bytes on every run.
    """
    array = np.ascontiguousarray(array)
    code = _CODES.get(array.dtype)
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    data = header + array.astype(_TYPES[code], copy=False).tobytes()
    path = Path(path)
    if compress if compress is not None else path.suffix == ".gz":
        with open(path, "wb") as raw, gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6
        ) as f:
            f.write(data)
    else:
        path.write_bytes(data)
