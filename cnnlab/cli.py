"""The `cnnlab` command. Each sub-command lives in `cnnlab/commands/<name>.py`.

A command module exposes `HELP` (one line), `add_arguments(parser)` and
`run(args) -> int`. Bad user input raises `UsageError`, which becomes one clear
line on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from typing import Sequence

from . import __version__, commands


class UsageError(Exception):
    """A mistake in what the user asked for; printed as one line, exit status 2."""


def _command_modules():
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield info.name, importlib.import_module(f"{commands.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description="cnnlab: a CNN engine and lab for learning how convolutional networks work.",
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _command_modules():
        p = sub.add_parser(
            name.replace("_", "-"),
            help=module.HELP,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        status = int(args._run(args) or 0)
        sys.stdout.flush()   # here, so that a closed pipe is met inside the handler below
        return status
    except UsageError as e:
        print(f"cnnlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncnnlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`cnnlab evaluate run | head`): stop quietly, as other tools do;
        # point stdout at devnull so the interpreter's final flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
