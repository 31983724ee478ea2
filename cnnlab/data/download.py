"""Fetch dataset files into a cache folder, verified and never half-written.

Every file is written to a temporary name in the destination folder, checked against
its published md5, and only then renamed into place, so a crash, a dropped connection
or a corrupt mirror never leaves a file that a later run would trust.

>>> from cnnlab.data.download import cache_dir
>>> cache_dir("/tmp/my-data")
PosixPath('/tmp/my-data')
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

from .errors import ChecksumError, DataError, DownloadError

ENV_VAR = "CNNLAB_DATA"

Fetch = Callable[[str, BinaryIO], None]
"""A function that writes the bytes found at a URL into an open binary file."""


@dataclass(frozen=True)
class RemoteFile:
    """One published file of a dataset.

    `raw_md5` is the md5 of a gzip's decompressed content, where known: a copy that was
    re-compressed (different gzip bytes, same content) is accepted through it.
    """

    name: str
    md5: str
    size: int | None = None
    raw_md5: str | None = None


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds downloaded datasets, one sub-folder per dataset.

    Chosen in this order: the `root` argument, the environment variable `CNNLAB_DATA`,
    then the user cache folder (for example ~/.cache/cnnlab/datasets on Linux).
    """
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("cnnlab")) / "datasets"


def file_md5(path: str | os.PathLike, *, decompress: bool = False) -> str:
    """The md5 of a file, or of its gzip-decompressed content when `decompress`."""
    h = hashlib.md5()
    opener = gzip.open if decompress else open
    try:
        with opener(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: not a complete gzip file ({e})") from None
    return h.hexdigest()


def verify(path: str | os.PathLike, spec: RemoteFile) -> None:
    """Raise ChecksumError unless `path` has the published md5 of `spec`.

    A gzip whose own md5 differs is still accepted when its decompressed content has
    the published `raw_md5` (the shared MNIST images file is such a re-compressed copy).
    """
    got = file_md5(path)
    if got == spec.md5:
        return
    expected = f"md5 {spec.md5}"
    if spec.raw_md5:
        expected += f" (or {spec.raw_md5} for its decompressed content)"
        try:
            if file_md5(path, decompress=True) == spec.raw_md5:
                return
        except DataError as e:
            raise ChecksumError(f"{path}: expected {expected}, got md5 {got}; {e}") from None
    raise ChecksumError(f"{path}: checksum mismatch: expected {expected}, got md5 {got}")


def _urlopen_fetch(url: str, out: BinaryIO) -> None:
    with urllib.request.urlopen(url, timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0)
        done = 0
        show = sys.stderr.isatty() and total > 0
        while chunk := response.read(1 << 16):
            out.write(chunk)
            done += len(chunk)
            if show:
                print(f"\r  {done / 1e6:6.1f} / {total / 1e6:.1f} MB", end="", file=sys.stderr)
        if show:
            print(file=sys.stderr)


def fetch_file(
    spec: RemoteFile,
    folder: str | os.PathLike,
    mirrors: Sequence[str],
    *,
    fetch: Fetch | None = None,
) -> Path:
    """Download `spec` from the first mirror that serves it intact; return its path.

    Each mirror is a base URL (`https://...`, `file://...`) that `spec.name` is appended
    to. The bytes go to a temporary file beside the destination, which is renamed into
    place only after its checksum matches.

    Raises:
        ChecksumError: a mirror served bytes with the wrong checksum (and none served
            the right ones).
        DownloadError: no mirror could be reached.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / spec.name
    fetch = fetch or _urlopen_fetch
    failures: list[str] = []
    bad_checksum = False
    for base in mirrors:
        url = base.rstrip("/") + "/" + spec.name
        print(f"Downloading {url}", file=sys.stderr)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.name}.", suffix=".part", dir=folder)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                fetch(url, out)
                out.flush()
                os.fsync(out.fileno())
            verify(tmp, spec)
            os.replace(tmp, dest)
            return dest
        except ChecksumError as e:
            bad_checksum = True
            failures.append(f"{url}: {str(e).replace(str(tmp), 'the downloaded file')}")
        except (OSError, ValueError) as e:  # URLError is an OSError; ValueError: bad URL
            failures.append(f"{url}: {e}")
        finally:
            tmp.unlink(missing_ok=True)  # whatever went wrong, leave no partial file
    detail = "\n  ".join(failures) or "no mirror given"
    if bad_checksum:
        raise ChecksumError(
            f"{dest}: no mirror served it with the published md5 {spec.md5}; "
            f"nothing was kept:\n  {detail}"
        )
    raise DownloadError(f"could not download {spec.name}:\n  {detail}")


def manual_instructions(folder: Path, specs: Sequence[RemoteFile], mirrors: Sequence[str]) -> str:
    """The paragraph telling an offline user which files to place where."""
    lines = [f"Offline? Put these files by hand into {folder}:"]
    lines += [f"  {s.name}  (md5 {s.md5})" for s in specs]
    if mirrors:
        lines.append(f"They are published at {mirrors[0]}")
    lines.append(f"(Set {ENV_VAR} or pass root= to use another data folder.)")
    return "\n".join(lines)


def ensure_files(
    title: str,
    folder: str | os.PathLike,
    specs: Sequence[RemoteFile],
    mirrors: Sequence[str],
    *,
    fetch: Fetch | None = None,
) -> None:
    """Make sure every file of `specs` is in `folder` with its published checksum.

    A file already there is verified first and fetched again only if it fails.
    """
    folder = Path(folder)
    for spec in specs:
        dest = folder / spec.name
        if dest.exists():
            try:
                verify(dest, spec)
                continue
            except DataError as e:
                print(f"{e}; downloading it again", file=sys.stderr)
        try:
            fetch_file(spec, folder, mirrors, fetch=fetch)
        except (ChecksumError, DownloadError) as e:
            raise type(e)(f"{title}: {e}\n{manual_instructions(folder, specs, mirrors)}") from None


def copy_atomically(src: BinaryIO, dest: Path) -> None:
    """Write a stream to `dest` through a temporary file, so `dest` is whole or absent."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        os.replace(tmp_name, dest)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
