"""How tensors print: `cnnlab.set_printoptions`, PyTorch's knobs over NumPy's formatter.

>>> cnnlab.set_printoptions(precision=2)
>>> cnnlab.tensor([1.2345, 2.0])
tensor([1.23, 2.  ])
>>> cnnlab.set_printoptions(profile="default")
"""
from __future__ import annotations

import sys

import numpy as np

# cnnlab's own defaults (NumPy's shortest round-trip digits), not PyTorch's fixed 4 decimals
_DEFAULTS = {"precision": 8, "threshold": 200, "edgeitems": 3, "linewidth": 75, "sci_mode": None}
_PROFILES = {"default": _DEFAULTS,
             "short": {**_DEFAULTS, "precision": 2, "threshold": 1000, "edgeitems": 2},
             "full": {**_DEFAULTS, "threshold": sys.maxsize}}
_options = dict(_DEFAULTS)


def set_printoptions(precision: int | None = None, threshold: int | None = None, edgeitems: int | None = None,
                     linewidth: int | None = None, profile: str | None = None, sci_mode: bool | None = None) -> None:
    """PyTorch's print options: digits after the point, how many elements before the
    middle is elided (threshold, showing edgeitems at each end), line width, and
    sci_mode (True: always scientific, False: never, None: automatic). profile is
    'default', 'short' or 'full' and is applied first."""
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"profile must be one of {sorted(_PROFILES)}, got {profile!r}")
        _options.update(_PROFILES[profile])
    given = {"precision": precision, "threshold": threshold, "edgeitems": edgeitems, "linewidth": linewidth}
    _options.update({k: v for k, v in given.items() if v is not None})
    if sci_mode is not None or profile is not None:
        _options["sci_mode"] = sci_mode


def format_values(values: np.ndarray, prefix: str) -> str:
    """values as a tensor's repr shows them, after `prefix` (so continuation lines align)."""
    o = _options
    kwargs = {}
    if o["sci_mode"] is True and values.dtype.kind == "f":
        digits = o["precision"]
        kwargs["formatter"] = {"float_kind": lambda v: f"{v:.{digits}e}"}
    elif o["sci_mode"] is False:
        kwargs["suppress_small"] = True
    return np.array2string(values, separator=", ", prefix=prefix, precision=o["precision"],
                           threshold=o["threshold"], edgeitems=o["edgeitems"], max_line_width=o["linewidth"],
                           **kwargs)
