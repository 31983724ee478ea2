"""Helpers shared by the sub-commands: the engine's answers to user input, with every
mistake turned into a UsageError (one line on stderr, exit status 2)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from ..cli import UsageError


def usage(job: Callable[..., Any], *args: Any, where: str | None = None) -> Any:
    """job(*args), with a ValueError or DataError (bad input, missing files) as a UsageError."""
    from ..data import DataError

    try:
        return job(*args)
    except (ValueError, DataError) as e:
        raise UsageError(f"{where}: {e}" if where else str(e)) from e


def model_kwargs(pairs: list[str]) -> dict[str, Any]:
    """--model-arg width=64 dropout=0.1 -> {'width': 64, 'dropout': 0.1}."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--model-arg expects KEY=VALUE, got {pair!r}")
        for conv in (int, float):
            try:
                out[key] = conv(value)
                break
            except ValueError:
                continue
        else:
            out[key] = {"true": True, "false": False}.get(value.lower(), value)
    return out


def build_model(name: str, shape: tuple[int, int, int], num_classes: int, extra: dict[str, Any]):
    from ..recipe import zoo_model

    return usage(zoo_model, name, shape, num_classes, extra)


def checkpoint_file(path: str) -> Path:
    from ..checkpoint import checkpoint_file

    return checkpoint_file(path)


def checkpoint(path: str) -> dict[str, Any]:
    """The checkpoint a user named: a file or a run folder."""
    from ..checkpoint import open_checkpoint

    return usage(open_checkpoint, path)


def model_from(ckpt: dict[str, Any], path: str):
    from ..checkpoint import model_from_checkpoint

    return usage(model_from_checkpoint, ckpt, where=path)


def check_fits(ckpt: dict[str, Any], shape, num_classes: int, where: str) -> None:
    from ..checkpoint import check_fits

    usage(check_fits, ckpt, shape, num_classes, where)


def default_out(model: str, data: str) -> str:
    import time

    stem = Path(data).name if os.sep in data or Path(data).is_dir() else data
    return str(Path("runs") / f"{model}-{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
