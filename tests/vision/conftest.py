"""The vision tests write their files with the data tests' helpers (tests/data/datafiles.py)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))

from datafiles import data_root  # noqa: E402, F401  (the fixture: an empty $CNNLAB_DATA)
