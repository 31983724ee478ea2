"""Can Qt open a window here? Asked before Qt is, because Qt answers a display it cannot
open by aborting the whole process (exit 134). Standard library only, so `dev.py` runs
this file as a script with the project's Python before it chooses the app or headless
training; `gui.app.main` asks it too.

    python gui/display.py        # prints what is missing and exits 1, or exits 0 silently

On Linux with X11 it checks the libraries Qt's X11 plugin loads, and that the X server in
$DISPLAY answers; Wayland, Qt's other platforms, Windows and macOS are left to Qt.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

# Qt 6.5+ loads this one at run time, so the plugin's link table does not show it
_LOADED_LATER = ("libxcb-cursor.so.0",)
_SERVER_WAIT = 5.0   # seconds; a remote DISPLAY behind a firewall never answers


def display_problem(environ: dict[str, str] | None = None) -> str | None:
    """Why Qt could not open a window here, in one sentence, or None when it can (as far
    as can be told without starting Qt)."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return None
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None   # offscreen, wayland, vnc ...: chosen on purpose
    if not platform and env.get("WAYLAND_DISPLAY") and _wayland_answers(env):
        return None
    display = env.get("DISPLAY", "")
    if not display:
        return "no screen found (DISPLAY is not set)"
    problems = []
    missing = missing_x_libraries()
    if missing:
        problems.append(f"the X11 libraries Qt needs are missing: {', '.join(missing)} (on Debian/Ubuntu: "
                        f"sudo apt install {' '.join(_debian_package(m) for m in missing)})")
    server = _x_server_problem(display)
    if server:
        problems.append(server)
    return f"cannot open the display {display}: " + "; and ".join(problems) if problems else None


def missing_x_libraries() -> list[str]:
    """The shared libraries Qt's X11 platform plugin needs that this system lacks."""
    plugin = _xcb_plugin()
    if plugin is None:   # PySide6 laid out otherwise, or absent: Qt will say so itself
        return []
    try:
        out = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=20).stdout
        missing = re.findall(r"^\s*(\S+) => not found", out, re.MULTILINE)
    except (OSError, subprocess.SubprocessError):   # no ldd (musl, minimal images): the loader names the first
        missing = _first_unloadable(str(plugin))
    missing += [name for name in _LOADED_LATER if name not in missing and _first_unloadable(name)]
    return sorted(set(missing), key=missing.index)


def _xcb_plugin() -> Path | None:
    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    plugin = Path(list(spec.submodule_search_locations)[0]) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def _first_unloadable(library: str) -> list[str]:
    try:
        ctypes.CDLL(library)
        return []
    except OSError as e:
        found = re.search(r"([\w.+-]+\.so[\w.]*): cannot open", str(e))
        return [found.group(1) if found else library]


def _debian_package(soname: str) -> str:
    """libxcb-icccm.so.4 -> libxcb-icccm4, libxkbcommon-x11.so.0 -> libxkbcommon-x11-0 (Debian's rule)."""
    stem, _, version = soname.partition(".so")
    version = version.lstrip(".").split(".")[0]
    return (stem + ("-" if stem[-1:].isdigit() else "") + version).lower()


def _x_server_problem(display: str) -> str | None:
    """None when the X server in `display` accepts a connection; else why not."""
    libxcb = ctypes.util.find_library("xcb")
    if libxcb:
        answer: list[str | None] = []
        worker = threading.Thread(target=lambda: answer.append(_xcb_connect(libxcb, display)), daemon=True)
        worker.start()
        worker.join(_SERVER_WAIT)
        return answer[0] if answer else f"the X server there did not answer within {_SERVER_WAIT:g} s"
    return _socket_problem(display)


def _xcb_connect(library: str, display: str) -> str | None:
    """Connect as Qt will, through libxcb (which also reads the X authority file)."""
    try:
        xcb = ctypes.CDLL(library)
    except OSError:
        return _socket_problem(display)
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    conn = xcb.xcb_connect(display.encode(), None)
    try:
        error = xcb.xcb_connection_has_error(conn)
    finally:
        xcb.xcb_disconnect(conn)   # required even for a failed connection
    if error == 0:
        return None
    return "no X server answers there, or it refused the connection (is one running, and is DISPLAY right?)"


def _socket_problem(display: str) -> str | None:
    """Without libxcb, only whether something listens where an X server would."""
    found = re.fullmatch(r"(?:(?P<host>[^:]*):)?(?P<number>\d+)(?:\.\d+)?", display.rsplit("/", 1)[-1])
    if found is None:
        return f"DISPLAY={display!r} is not of the form [host]:number"
    host, number = found.group("host") or "", int(found.group("number"))
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"   # a file, or Linux's abstract socket of that name
        return None if _listens(path) or _listens("\0" + path) else "no X server listens there"
    try:
        socket.create_connection((host, 6000 + number), timeout=_SERVER_WAIT).close()
        return None
    except OSError as e:
        return f"no X server answers there ({e.strerror or e})"


def _wayland_answers(env: dict[str, str]) -> bool:
    name = env["WAYLAND_DISPLAY"]
    return _listens(name if name.startswith("/") else os.path.join(env.get("XDG_RUNTIME_DIR", ""), name))


def _listens(address: str) -> bool:
    """Whether a local (Unix) socket accepts a connection at `address`."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(_SERVER_WAIT)
        try:
            s.connect(address)
            return True
        except OSError:
            return False


if __name__ == "__main__":
    reason = display_problem()
    if reason:
        print(reason)
    sys.exit(1 if reason else 0)
