"""cnnlab's desktop app (PySide6). Qt lives only here; the engine never imports it.

Start it with `cnnlab gui` or `cnnlab-gui`; see `gui.app.main`.
"""

# cnnlab first, before pyqtgraph loads NumPy: cnnlab sets how long OpenBLAS's
# threads spin after a product, which OpenBLAS reads only when NumPy loads it.
import cnnlab as _cnnlab  # noqa: E402,F401
