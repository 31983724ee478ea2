"""Open the cnnlab desktop app (the Convolution lab first).

examples:
  cnnlab gui
  cnnlab gui --view pool
  cnnlab gui --view forward --screenshot lab.png    # render headlessly and save a PNG
"""
from __future__ import annotations

import argparse

HELP = "open the desktop app (Convolution lab)"
VIEWS = ("forward", "pool", "backward", "rgb", "dilation")  # gui.conv_lab.VIEWS, named without importing Qt


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--view", choices=VIEWS, default=None, help="start in a prepared view")
    parser.add_argument("--screenshot", metavar="PATH", help="save a PNG of the window and exit")
    parser.add_argument("--step", type=int, default=None, help="with --view: the step to show")


def run(args: argparse.Namespace) -> int:
    try:
        from gui.app import main
    except ImportError as e:  # PySide6/pyqtgraph missing, or the gui package not installed
        print(f"cnnlab gui: cannot start the desktop app: {e}")
        return 1
    argv = []
    if args.view:
        argv += ["--view", args.view]
    if args.screenshot:
        argv += ["--screenshot", args.screenshot]
    if args.step is not None:
        argv += ["--step", str(args.step)]
    return main(argv)
