"""The training dashboard's two measured targets (issue 6), on the default model.

    python benchmarks/bench_gui.py [--steps 300] [--repeat 3] [--batch 64]
    xvfb-run -a python benchmarks/bench_gui.py     # on a real (virtual) X screen

1. Responsiveness: while the dashboard trains at full speed, a 5 ms QTimer heartbeat
   records the longest gap between two of its ticks: the longest time the Qt event loop
   was blocked (target < 100 ms). Measured from the first step drawn to the end, in a
   run of its own (the heartbeat's 200 wake-ups a second would slow training a little).
2. Throughput: images per second of the same run with the dashboard visible at its
   default refresh (curves 5 Hz, pictures 2 Hz), against the same recipe run headless
   (`cnnlab.recipe.build_run(...).run()`) in the same process (target >= 85 %).

Both use the app's default recipe (seed 004's ConvNet on the embedded MNIST sample) with
`--steps` batches of `--batch` images (one epoch of a spread subset, as the app's "Images" box makes it, with a
validation pass on as many images at its end). Headless and dashboard runs alternate,
`--repeat` times each, after one warm-up run, so a machine shared with other jobs hurts
both alike; the spread is printed. Each repeat is three runs: headless, dashboard,
dashboard with the heartbeat.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if not os.environ.get("DISPLAY") and not os.environ.get("QT_QPA_PLATFORM"):
    os.environ["QT_QPA_PLATFORM"] = "offscreen"

from gui.app import use_app_thread_wait  # noqa: E402

use_app_thread_wait()   # as the app's own process runs (gui.app.main)
from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cnnlab.recipe import Recipe, build_run, load_data  # noqa: E402


def headless(recipe: Recipe) -> float:
    """Images per second of the same recipe's run without the dashboard (`Run.run()` in this thread)."""
    data = load_data(recipe)
    run = build_run(recipe, data)
    t0 = time.perf_counter()
    run.run()
    return len(data.train) / (time.perf_counter() - t0)


def dashboard(window, heartbeat: bool) -> tuple[float, float, int]:
    """(images per second, longest event-loop gap in ms, heartbeat ticks) of one dashboard run.
    The heartbeat wakes the GUI thread 200 times a second, which itself costs the worker
    some time (the GIL changes hands each time), so throughput is timed without it."""
    tv = window.train_view
    tv.reset()
    gaps = {"max": 0.0, "ticks": 0, "on": False}
    clock = QElapsedTimer()

    def beat() -> None:
        if gaps["on"]:
            gaps["max"] = max(gaps["max"], clock.restart())
            gaps["ticks"] += 1
        elif tv.curves.point_count():  # from the first step drawn: start-up is not "training"
            gaps["on"] = True
            clock.restart()

    heart = QTimer()
    heart.setInterval(5)
    heart.timeout.connect(beat)
    if heartbeat:
        heart.start()
    loop = QEventLoop()
    tv.sigRunFinished.connect(loop.quit)
    t0 = time.perf_counter()
    tv.start()
    loop.exec()
    wall = time.perf_counter() - t0
    gaps["on"] = False
    heart.stop()
    tv.sigRunFinished.disconnect(loop.quit)
    return len(tv.train_set) / wall, gaps["max"], gaps["ticks"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300, help="batches per run (default 300)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()

    app = QApplication.instance() or QApplication([])
    from gui.app import MainWindow
    from gui.session import Session

    window = MainWindow()
    window.resize(1360, 860)
    window.show()
    tv = window.train_view
    tv.settings.apply(Session(limit=args.steps * args.batch, batch_size=args.batch, epochs=1))
    app.processEvents()
    print(f"platform {app.platformName()}; {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f}; convnet, batch {args.batch}, {len(tv.train_set)} training "
          f"and {len(tv.val_set)} validation images per run", flush=True)
    recipe = tv.settings.session().recipe()
    headless(recipe)  # warm-up: kernels loaded, caches hot
    dashboard(window, False)
    ratios, gaps, fits, dashes = [], [], [], []
    for i in range(args.repeat):
        h = headless(recipe)
        d, _, _ = dashboard(window, False)
        _, gap, ticks = dashboard(window, True)
        fits.append(h)
        dashes.append(d)
        ratios.append(d / h)
        gaps.append(gap)
        print(f"run {i + 1}: headless fit {h:7,.0f} img/s | dashboard {d:7,.0f} img/s = {d / h:6.1%} | "
              f"with the heartbeat: longest event-loop block {gap:5.0f} ms ({ticks} beats) | "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"throughput ratio: median of the paired ratios {statistics.median(ratios):.1%}, range {min(ratios):.1%} "
          f"to {max(ratios):.1%}; median dashboard / median headless {statistics.median(dashes) / statistics.median(fits):.1%} "
          f"({statistics.median(dashes):,.0f} / {statistics.median(fits):,.0f} img/s) (target >= 85%)")
    print(f"longest event-loop block: median {statistics.median(gaps):.0f} ms, worst {max(gaps):.0f} ms "
          f"(target < 100 ms)")
    tv.shutdown()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
