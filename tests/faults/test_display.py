"""A DISPLAY that cannot be opened: `cnnlab gui` says what is missing (the X libraries or
the server) in one line and exits 2, where Qt would abort (exit 134); `dev.py run` trains
headless instead, saying why."""
from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gui import display

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the X11 check is Linux's")


def no_x_server_at(number: int) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        for address in (f"/tmp/.X11-unix/X{number}", f"\0/tmp/.X11-unix/X{number}"):
            try:
                s.connect(address)
                return False
            except OSError:
                pass
    return True


def screenless_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "DISPLAY")}
    return {**env, "CNNLAB_QUIET": "1", **extra}


@pytest.mark.skipif(not no_x_server_at(99), reason="an X server runs on :99 here")
def test_cnnlab_gui_on_a_display_without_a_server(tmp_path):
    r = subprocess.run([sys.executable, "-m", "cnnlab", "gui"], capture_output=True, text=True, cwd=tmp_path,
                       env=screenless_env(DISPLAY=":99"), timeout=300)
    assert r.returncode == 2, (r.returncode, r.stderr)   # not Qt's abort (134)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "cannot open the display :99" in lines[0]
    assert "no X server answers there" in lines[0] or "libraries Qt needs are missing" in lines[0]


def test_a_screenshot_needs_no_display(tmp_path):
    shot = tmp_path / "lab.png"
    r = subprocess.run([sys.executable, "-m", "cnnlab", "gui", "--view", "pool", "--screenshot", str(shot)],
                       capture_output=True, text=True, cwd=tmp_path, env=screenless_env(DISPLAY=":99"), timeout=300)
    assert r.returncode == 0, r.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_what_the_check_says(monkeypatch):
    monkeypatch.setattr(display, "missing_x_libraries", lambda: [])
    monkeypatch.setattr(display, "_x_server_problem", lambda d: "no X server answers there")
    assert display.display_problem({"DISPLAY": ":99"}) == "cannot open the display :99: no X server answers there"
    assert display.display_problem({}) == "no screen found (DISPLAY is not set)"
    assert display.display_problem({"DISPLAY": ":99", "QT_QPA_PLATFORM": "offscreen"}) is None
    monkeypatch.setattr(display, "missing_x_libraries", lambda: ["libxcb-cursor.so.0", "libxkbcommon-x11.so.0"])
    text = display.display_problem({"DISPLAY": ":99"})
    assert "libxcb-cursor.so.0, libxkbcommon-x11.so.0" in text
    assert "apt install libxcb-cursor0 libxkbcommon-x11-0" in text and text.endswith("no X server answers there")
    monkeypatch.setattr(display, "_x_server_problem", lambda d: None)
    assert display.display_problem({"DISPLAY": ":0"}).startswith("cannot open the display :0: the X11 libraries")


def test_the_libraries_reported_missing_are_missing():
    for name in display.missing_x_libraries():
        assert display._first_unloadable(name) == [name]


def test_the_socket_check_finds_a_listener():
    number = next(n for n in range(4200, 4300) if no_x_server_at(n))
    assert display._socket_problem(f":{number}") == "no X server listens there"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(f"\0/tmp/.X11-unix/X{number}")   # Linux's abstract name: no file is made
        server.listen(1)
        assert display._socket_problem(f":{number}") is None
        assert display._socket_problem(f"unix:{number}.0") is None
    assert "not of the form" in display._socket_problem("nonsense")


def load_dev():
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not no_x_server_at(99), reason="an X server runs on :99 here")
def test_dev_run_trains_headless_when_no_window_can_open(monkeypatch, capsys):
    dev = load_dev()
    ran: list[list] = []
    monkeypatch.setattr(dev, "ensure_env", lambda extras: None)
    monkeypatch.setattr(dev, "_run", lambda cmd, env=None: ran.append([str(c) for c in cmd]) or 0)
    monkeypatch.setattr(dev, "PY", Path(sys.executable))   # the check runs with this Python
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert dev.main(["run"]) == 0
    assert ran[-1][0].endswith("cnnlab") and ran[-1][1:3] == ["train", "--out"]
    assert ran[-1][3].startswith("runs/demo")
    out = capsys.readouterr().out
    assert "cannot open the display :99" in out and "runs headless" in out
    monkeypatch.setattr(dev, "_display_problem", lambda: None)
    assert dev.main(["run"]) == 0 and ran[-1][1:] == ["gui"]
