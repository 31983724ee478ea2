"""The cnnlab desktop app: a main window with one tab per tool, the Convolution lab first.

    cnnlab-gui                                   # or: cnnlab gui
    cnnlab-gui --view pool --screenshot pool.png # render headlessly and save a PNG

Other tools (training dashboard, network, predictions) add tabs with `add_tab`.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from PySide6.QtWidgets import QApplication, QMainWindow, QTabWidget, QWidget

from .conv_lab import VIEWS, ConvLab


class MainWindow(QMainWindow):
    """The top window: `tabs` holds the tools; `conv_lab` is the first."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("cnnlab")
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)
        self.conv_lab = ConvLab()
        self.add_tab(self.conv_lab, "Convolution lab")
        self.resize(1360, 860)

    def add_tab(self, widget: QWidget, title: str) -> int:
        return self.tabs.addTab(widget, title)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="cnnlab-gui", description="The cnnlab desktop app.")
    p.add_argument("--view", choices=sorted(VIEWS), help="start in a prepared view")
    p.add_argument("--step", type=int, help="with --view: the step to show")
    p.add_argument("--screenshot", metavar="PATH", help="save a PNG of the window and exit (works headless)")
    p.add_argument("--size", default="1360x860", help="window size WxH (default 1360x860)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Open the app; with --screenshot, render the window to a PNG and exit."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    headless = (sys.platform.startswith("linux") and not os.environ.get("DISPLAY")
                and not os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("QT_QPA_PLATFORM"))
    if headless and args.screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # no screen needed for a screenshot
    elif headless and QApplication.instance() is None:
        # Qt would abort the whole process; say what to do instead.
        print("cnnlab-gui: no screen found (DISPLAY is not set). Run it on a desktop, under "
              "xvfb-run, or use --screenshot PATH to render the window without a screen.", file=sys.stderr)
        return 1
    app = QApplication.instance() or QApplication([sys.argv[0]])
    window = MainWindow()
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"cnnlab-gui: --size must look like 1360x860, got {args.size!r}", file=sys.stderr)
        return 2
    window.resize(w, h)
    if args.view:
        window.conv_lab.apply_view(args.view, args.step)
    window.show()
    if args.screenshot:
        app.processEvents()
        ok = window.grab().save(args.screenshot)
        window.close()
        if not ok:
            print(f"cnnlab-gui: could not write {args.screenshot}", file=sys.stderr)
            return 1
        print(f"saved {args.screenshot}")
        return 0
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
