"""The event loop never blocks for 100 ms, at epoch ends too: the real main window
(offscreen) trains the default ConvNet for several short epochs while a 10 ms QTimer
beats on the GUI thread, and no gap between two beats may reach 100 ms.

A busy machine (two cores shared with other jobs) may keep the GUI thread waiting for a
core although it is ready to run; that is the machine's doing, not the app's. Linux
counts it per thread in /proc/self/task/<tid>/schedstat (first field: nanoseconds run,
second: nanoseconds runnable but waiting on a run queue). So a gap is split into the GUI
thread's own work (always charged to the app), its wait for a core (never charged), and
the rest, asleep: waiting for the interpreter lock, a lock or a join. That sleep is
charged too, less the time the process's other threads spent waiting for a core meanwhile
(the lock's holder, descheduled, cannot hand it back). Without schedstat (not Linux) the
whole gap counts.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QEventLoop, QTimer

from gui.app import MainWindow
from gui.session import Session

BLOCK = 0.100       # seconds: the README's promise
EPOCHS = 4          # three epoch ends at least while the heartbeat runs, then the run's end


class Heartbeat:
    """A 10 ms QTimer on the GUI thread; every beat records the wall clock, the scheduler's
    counts (see above) and the epochs done so far."""

    def __init__(self, epochs) -> None:
        self.epochs = epochs
        self._gui = str(threading.get_native_id())
        self.has_schedstat = Path(f"/proc/self/task/{self._gui}/schedstat").exists()
        self.beats: list[tuple[float, float, float, dict[str, float], int]] = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._beat)

    def _counts(self) -> tuple[float, float, dict[str, float]]:
        """The GUI thread's run and run-queue seconds, and every other thread's run-queue seconds."""
        ran = waited = 0.0
        others: dict[str, float] = {}
        if self.has_schedstat:
            for task in Path("/proc/self/task").iterdir():
                try:
                    run_ns, wait_ns = (int(v) for v in (task / "schedstat").read_text().split()[:2])
                except (OSError, ValueError):  # a thread that just ended
                    continue
                if task.name == self._gui:
                    ran, waited = run_ns / 1e9, wait_ns / 1e9
                else:
                    others[task.name] = wait_ns / 1e9
        return ran, waited, others

    def _beat(self) -> None:
        self.beats.append((time.perf_counter(), *self._counts(), self.epochs()))

    def start(self) -> None:
        self._beat()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self._beat()

    def gaps(self) -> list[tuple[float, float, int]]:
        """(wall gap, the app's part of it, epochs done) between consecutive beats."""
        out = []
        for (t0, ran0, wait0, oth0, _), (t1, ran1, wait1, oth1, epochs) in zip(self.beats, self.beats[1:]):
            gap, ran, waited = t1 - t0, ran1 - ran0, wait1 - wait0
            asleep = max(gap - ran - waited, 0.0)
            others = sum(w - oth0.get(tid, 0.0) for tid, w in oth1.items())  # threads alive at the end
            out.append((gap, ran + max(asleep - others, 0.0), epochs))
        return out


def wait_for(signal, seconds: float) -> None:
    """Run the event loop until `signal` (None: none) or the timeout. Not QTest.qWait: it
    holds the interpreter lock between events and would starve the training thread."""
    loop = QEventLoop()
    if signal is not None:
        signal.connect(loop.quit)
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


@pytest.mark.parametrize("tab", ["train", "predict"])
def test_the_event_loop_never_blocks_across_epoch_ends(qtbot, tab):
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    tv = window.train_view
    tv.settings.apply(Session(limit=256, batch_size=32, epochs=EPOCHS))  # 8 steps an epoch, 256 to validate
    window.show_view(tab)  # the Predict tab classifies with the latest weights as they come
    if tab == "predict":
        window.predict_view.draw_example()
    # The window's first layout and paint (about 50 ms of the GUI thread, twice that on a
    # loaded machine) is the app starting, not training: it happens before the heartbeat.
    wait_for(None, 0.3)
    heart = Heartbeat(lambda: tv.run.epoch if tv.run is not None else 0)
    heart.start()
    wait_for(None, 0.2)  # the loop is beating before Start
    assert len(heart.beats) >= 5
    tv.start_button.click()
    wait_for(tv.sigRunFinished, 120)
    wait_for(None, 0.1)  # what the end of the run queued is drawn too
    heart.stop()
    assert tv.run.status == "finished" and tv.run.epoch == EPOCHS
    gaps = heart.gaps()
    assert len({e for _, _, e in gaps}) >= EPOCHS  # the beat went on through every epoch end
    worst = max(gaps, key=lambda g: g[1])
    print(f"largest gap: {worst[0] * 1000:.0f} ms wall, {worst[1] * 1000:.0f} ms the app's, after epoch {worst[2]}")
    blocks = [(round(g * 1000), round(own * 1000), e) for g, own, e in gaps if own >= BLOCK]
    assert not blocks, f"the GUI thread blocked (wall ms, the app's ms, epochs done): {blocks}"
    window.close()
