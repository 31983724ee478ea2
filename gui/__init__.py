"""cnnlab's desktop app (PySide6). Qt lives only here; the engine never imports it.

Start it with `cnnlab gui` or `cnnlab-gui`; see `gui.app.main`.
"""
import os

# numba's workers sleep at once after each kernel in the app's process (the engine's default
# is a short spin, cnnlab/backends/cpu_threads.py): on 2 cores the spinning workers took the
# cores the GUI thread draws on (benchmarks/bench_gui.py, dashboard while training: 3,162 img/s
# passive against 2,826 spinning, though headless training is faster spinning). Read when the
# engine's thread pool starts, so it must be set before the first kernel; yours wins.
os.environ.setdefault("CNNLAB_THREAD_WAIT", "passive")
