"""cnnlab's desktop app (PySide6). Qt lives only here; the engine never imports it.

Start it with `cnnlab gui` or `cnnlab-gui`; see `gui.app.main`.
"""

