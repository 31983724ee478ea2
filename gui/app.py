"""The cnnlab desktop app: a main window with one tab per tool — the Convolution lab, the
training dashboard (Train), the Network and Predict views.

    cnnlab-gui                                   # or: cnnlab gui
    cnnlab-gui --view pool --screenshot pool.png # render headlessly and save a PNG
    cnnlab-gui --view train --train-steps 50 --screenshot train.png

It opens on the Train tab with the offline MNIST sample and seed 004's ConvNet chosen,
so pressing Start shows training at once; the lab stays the first tab.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QMainWindow, QMessageBox, QTabWidget, QWidget

from .conv_lab import VIEWS, ConvLab
from .display import display_problem
from .network_view import NetworkView
from .predict_view import PredictView
from .shapes import check_layers, fit_problems
from .train_view import TrainView

TABS = ("train", "network", "predict")


class MainWindow(QMainWindow):
    """The top window: `tabs` holds the tools; `conv_lab` is the first, then `train_view`,
    `network_view` and `predict_view`."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("cnnlab")
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)
        self.conv_lab = ConvLab()
        self.add_tab(self.conv_lab, "Convolution lab")
        self.train_view = TrainView()
        self.add_tab(self.train_view, "Train")
        self.network_view = NetworkView()
        self.add_tab(self.network_view, "Network")
        self.predict_view = PredictView(self.train_view.predictor)
        self.add_tab(self.predict_view, "Predict")
        self.tabs.setCurrentWidget(self.train_view)
        self.resize(1360, 860)

        self._network_version = -1
        self.train_view.sigModelChanged.connect(self._model_changed)
        self.train_view.sigStepInLab.connect(self.step_in_lab)
        self.tabs.currentChanged.connect(self._tab_changed)
        self._model_changed()

    def add_tab(self, widget: QWidget, title: str) -> int:
        return self.tabs.addTab(widget, title)

    def show_view(self, name: str) -> None:
        """'train', 'network', 'predict', or one of the lab's VIEWS."""
        if name in TABS:
            self.tabs.setCurrentWidget(getattr(self, f"{name}_view"))
        else:
            self.conv_lab.apply_view(name)
            self.tabs.setCurrentWidget(self.conv_lab)

    def step_in_lab(self, request: dict) -> None:
        """Open the lab on a real layer (from the Train view's filters)."""
        self.conv_lab.load_layer(**request)
        self.tabs.setCurrentWidget(self.conv_lab)

    def _model_changed(self) -> None:
        # the other views only redraw when they are on screen (and the Network view only
        # when the architecture changed), so training never waits for them
        current = self.tabs.currentWidget()
        self.predict_view.sample_dataset = self.train_view.val_set
        if current is self.predict_view:
            self.predict_view.classify()
        elif current is self.network_view:
            self._refresh_network()

    def _tab_changed(self) -> None:
        self._model_changed()

    def _refresh_network(self) -> None:
        tv = self.train_view
        key = tv.architecture
        if key == self._network_version:
            return
        self._network_version = key
        if tv.model is not None:
            self.network_view.set_model(tv.model_copy(), tv.input_shape, tv.settings.batch.value(), tv.label())
            return
        s = tv.settings.session()
        if s.model == "custom":  # the shapes up to the layer that fails, and its arithmetic
            checks = check_layers(s.layers or [], tv.input_shape)
            self.network_view.show_misfit(checks, tv.input_shape, fit_problems(checks, len(tv.classes)))
        else:
            self.network_view.show_problem(tv.controller.problem)

    # ------------------------------------------------------------ closing
    def ask_on_close(self) -> str:
        """'save', 'discard' or 'cancel' when closing during training (a dialog; tests replace it)."""
        box = QMessageBox(QMessageBox.Icon.Question, "Training is running",
                          "A run is still training. Save a checkpoint before closing?",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard"}.get(QMessageBox.StandardButton(answer), "cancel")

    def ask_checkpoint_path(self) -> str:
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint", "checkpoint.npz", "Checkpoints (*.npz)")
        return path

    def closeEvent(self, event) -> None:
        tv = self.train_view
        if tv.is_training():
            was_running = tv.state == "running"
            tv.pause()
            answer = self.ask_on_close()
            if answer == "cancel":
                if was_running:
                    tv.resume()
                event.ignore()
                return
            tv.shutdown()  # stops between steps and joins the thread
            if answer == "save":
                path = self.ask_checkpoint_path()
                if path:
                    try:
                        tv.save_checkpoint(path)
                    except OSError as e:  # say so, but still close: the user chose to
                        QMessageBox.warning(self, "Checkpoint not saved", f"Could not write {path}:\n{e}")
        super().closeEvent(event)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="cnnlab-gui", description="The cnnlab desktop app.")
    p.add_argument("--view", choices=sorted(VIEWS) + list(TABS), help="start in a prepared view or tab")
    p.add_argument("--step", type=int, help="with a lab --view: the step to show")
    p.add_argument("--train-steps", type=int, default=0, metavar="N",
                   help="train the default model N steps first (then it pauses), e.g. for a screenshot")
    p.add_argument("--screenshot", metavar="PATH", help="save a PNG of the window and exit (works headless)")
    p.add_argument("--size", default="1360x860", help="window size WxH (default 1360x860)")
    p.add_argument("--presenter", action="store_true", help="open the lab in presenter mode (large, high contrast)")
    return p.parse_args(argv)


def _wait_for(signal, ms: int) -> None:
    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def use_app_thread_wait() -> None:
    """numba's workers sleep at once after each kernel in the app's process (the engine's
    default is a short spin, cnnlab/backends/cpu_threads.py): on 2 cores the spinning workers
    took the cores the GUI thread draws on (benchmarks/bench_gui.py, dashboard while training:
    3,162 img/s passive against 2,826 spinning). Read when the engine's thread pool starts, at
    the first kernel, so call it before that; a value of the user's wins."""
    os.environ.setdefault("CNNLAB_THREAD_WAIT", "passive")


def main(argv: Sequence[str] | None = None) -> int:
    """Open the app; with --screenshot, render the window to a PNG and exit."""
    use_app_thread_wait()
    args = _parse(sys.argv[1:] if argv is None else argv)
    # Qt aborts the whole process on a display it cannot open: ask first, and say what is missing
    problem = display_problem() if QApplication.instance() is None else None
    if problem and args.screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # no screen needed for a screenshot
    elif problem:
        print(f"cnnlab-gui: {problem}. Run it on a desktop, under xvfb-run, or use --screenshot PATH "
              "to render the window without a screen.", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication([sys.argv[0]])
    window = MainWindow()
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"cnnlab-gui: --size must look like 1360x860, got {args.size!r}", file=sys.stderr)
        return 2
    window.resize(w, h)
    if args.presenter:
        window.conv_lab.set_presenter(True)
    if args.view in VIEWS:
        window.conv_lab.apply_view(args.view, args.step)
        window.tabs.setCurrentWidget(window.conv_lab)
    elif args.view:
        window.show_view(args.view)
    window.show()
    tv = window.train_view
    if args.train_steps > 0:
        tv.train_steps(args.train_steps)
        while tv.state not in ("paused", "idle"):
            _wait_for(tv.sigStateChanged, 60_000)
        if tv.state == "paused":
            done = tv.evaluate_now()  # a confusion matrix for the picture, even mid-epoch (on the training thread)
            while done is not None and not done.done():
                _wait_for(tv.controller.sigConfusion, 100)
            app.processEvents()  # the result arrives as a queued signal
    if args.view == "predict":
        window.predict_view.draw_example()
    if args.screenshot:
        for _ in range(3):
            app.processEvents()
        ok = window.grab().save(args.screenshot)
        tv.shutdown()
        window.close()
        if not ok:
            print(f"cnnlab-gui: could not write {args.screenshot}", file=sys.stderr)
            return 1
        print(f"saved {args.screenshot}")
        return 0
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
