"""Qt test set-up: no screen needed, and no test may leave a thread running."""
from __future__ import annotations

import os
import threading
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists

import pytest  # noqa: E402
from PySide6.QtCore import QEventLoop, QThread, QThreadPool, QTimer  # noqa: E402


def spin_events(ms: int) -> None:
    """Let the Qt event loop run for `ms` milliseconds. Not QTest.qWait: that holds the
    interpreter lock between events and starves a training thread."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


@pytest.fixture
def spin():
    return spin_events


@pytest.fixture(autouse=True)
def app_thread_wait_undone():
    """gui.app.main sets CNNLAB_THREAD_WAIT for the app's process; in the test process that
    would reach the other tests' child processes, so each test's change is undone after it."""
    saved = os.environ.get("CNNLAB_THREAD_WAIT")
    yield
    if saved is None:
        os.environ.pop("CNNLAB_THREAD_WAIT", None)
    else:
        os.environ["CNNLAB_THREAD_WAIT"] = saved


@pytest.fixture(autouse=True)
def no_threads_left_running(request):
    """Fail a test that leaves a Python thread, a QThread or a thread-pool job running
    (after giving them two seconds to finish)."""
    before = set(threading.enumerate())
    started: list[QThread] = []
    original_start = QThread.start

    def recording_start(self, *args):
        started.append(self)
        return original_start(self, *args)

    QThread.start = recording_start
    try:
        yield
    finally:
        QThread.start = original_start
    deadline = time.monotonic() + 2.0

    def leftovers() -> list[str]:
        py = [t.name for t in threading.enumerate()
              if t not in before and t.is_alive() and not isinstance(t, threading._DummyThread)]
        qt = [type(t).__name__ for t in started if _running(t)]
        pool = QThreadPool.globalInstance().activeThreadCount()
        return py + qt + ([f"{pool} QThreadPool job(s)"] if pool else [])

    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.02)
    left = leftovers()
    if left:
        pytest.fail(f"{request.node.name} left threads running: {', '.join(left)}")


def _running(thread: QThread) -> bool:
    try:
        return thread.isRunning()
    except RuntimeError:  # the C++ object is gone, so the thread is too
        return False
