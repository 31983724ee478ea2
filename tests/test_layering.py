"""The engine never imports Qt; the GUI reaches the engine only through its public API."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QT = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "shiboken6")


def test_importing_every_engine_module_loads_no_qt():
    code = (
        "import importlib, pkgutil, sys, cnnlab\n"
        "for m in pkgutil.walk_packages(cnnlab.__path__, 'cnnlab.'):\n"
        "    if m.name != 'cnnlab.backends.cuda' and not m.name.endswith('__main__'):\n"  # cuda: needs a GPU or the simulator
        "        importlib.import_module(m.name)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {QT!r}]\n"
        "assert not bad, bad\n"
        "print('modules', len([m for m in sys.modules if m.startswith('cnnlab')]))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.split()[-1]) > 30


def test_no_qt_import_statement_in_the_engine():
    offenders = []
    for path in (ROOT / "cnnlab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in QT + ("gui",)
                          and "commands" not in path.parts]
    assert not offenders, offenders


def test_gui_uses_only_public_engine_names():
    private = []
    for path in (ROOT / "gui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cnnlab"):
                parts = node.module.split(".")
                private += [f"{path.name}: from {node.module} import {a.name}" for a in node.names
                            if a.name.startswith("_") or any(p.startswith("_") for p in parts)]
    assert not private, private


JUPYTER = ("ipywidgets", "IPython", "ipykernel", "jupyter_client", "jupyterlab", "nbclient", "nbformat", "anywidget",
           "traitlets", "comm")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_the_desktop_app_never_imports_jupyter():
    offenders = [f"{path.relative_to(ROOT)}: {name}" for path in (ROOT / "gui").rglob("*.py")
                 for name in _imports(path)
                 if name.split(".")[0] in JUPYTER or name.startswith("cnnlab.notebook")]
    assert not offenders, offenders


def _top_level_modules_after(statement: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after running `statement`."""
    probe = f"{statement}; import sys, json; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return set(json.loads(r.stdout.splitlines()[-1]))


def test_the_notebook_widgets_load_no_qt_and_the_engine_no_widgets():
    """cnnlab.notebook's widgets import ipywidgets, never Qt; importing the engine (whose
    `_repr_html_` methods use cnnlab.notebook.rich) loads no widget library."""
    engine = _top_level_modules_after("import cnnlab, cnnlab.explain, cnnlab.summary, cnnlab.notebook.rich")
    assert not engine & {"ipywidgets", "IPython"}, engine & {"ipywidgets", "IPython"}
    widgets = _top_level_modules_after("import cnnlab.notebook.lab_widget, cnnlab.notebook.live_training")
    assert "ipywidgets" in widgets and not widgets & set(QT), widgets & set(QT)
