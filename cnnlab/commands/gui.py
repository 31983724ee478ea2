"""Open the cnnlab desktop app: the Convolution lab, Train (the training dashboard),
Network and Predict tabs. It opens on Train with the offline MNIST sample and seed
004's ConvNet chosen: press Start.

examples:
  cnnlab gui
  cnnlab gui --view pool
  cnnlab gui --view forward --presenter               # for a projector: big, high contrast, in words
  cnnlab gui --view forward --screenshot lab.png    # render headlessly and save a PNG
  cnnlab gui --view train --train-steps 50 --screenshot train.png
"""
from __future__ import annotations

import argparse

HELP = "open the desktop app (Convolution lab, training dashboard, network, predictions)"
VIEWS = ("forward", "pool", "backward", "rgb", "dilation",  # gui.conv_lab.VIEWS, named without importing Qt
         "transpose", "im2col", "transpose-matrix")
TABS = ("train", "network", "predict")                       # gui.app.TABS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--view", choices=VIEWS + TABS, default=None,
                        help="start in a prepared lab view or on a tab")
    parser.add_argument("--screenshot", metavar="PATH", help="save a PNG of the window and exit")
    parser.add_argument("--step", type=int, default=None, help="with a lab --view: the step to show")
    parser.add_argument("--train-steps", type=int, default=0, metavar="N",
                        help="first train the chosen model N steps (then it pauses), e.g. for a screenshot")
    parser.add_argument("--size", default=None, help="window size WxH (default 1360x860)")
    parser.add_argument("--presenter", action="store_true",
                        help="open the lab in presenter mode: large fonts, high contrast, each step in words")


def run(args: argparse.Namespace) -> int:
    import sys

    try:
        from gui.app import main
    except ImportError as e:  # PySide6/pyqtgraph missing, a library Qt needs missing, or no gui package
        print(f"cnnlab gui: cannot start the desktop app: {e}", file=sys.stderr)
        return 2
    argv = []
    if args.view:
        argv += ["--view", args.view]
    if args.screenshot:
        argv += ["--screenshot", args.screenshot]
    if args.step is not None:
        argv += ["--step", str(args.step)]
    if args.train_steps:
        argv += ["--train-steps", str(args.train_steps)]
    if args.size:
        argv += ["--size", args.size]
    if args.presenter:
        argv.append("--presenter")
    return main(argv)
