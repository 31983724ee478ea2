"""cnnlab in Jupyter: the convolution lab and live training inline, and rich display.

    pip install -e '.[notebook]'      # ipywidgets + JupyterLab
    python3 dev.py lessons            # JupyterLab on notebooks/

>>> from cnnlab.notebook import lab, monitor
>>> lab([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])          # doctest: +SKIP
>>> fit(model, loader, opt, callbacks=[monitor(layers=["conv1"], probe=image)])   # doctest: +SKIP

The widgets (`lab`, `monitor`) need ipywidgets; they load on first use, so the engine's
`_repr_html_` methods can use `cnnlab.notebook.rich` without any widget library. Nothing
here imports Qt.
"""
from __future__ import annotations

from typing import Any

__all__ = ["lab", "Lab", "monitor", "Monitor", "show", "metrics", "summary_html", "scene_svg"]

_LAZY = {"lab": "lab_widget", "Lab": "lab_widget", "monitor": "live_training", "Monitor": "live_training",
         "show": "rich", "metrics": "rich", "summary_html": "rich", "scene_svg": "svg"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
