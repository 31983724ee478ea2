"""The zoo's architectures in PyTorch, for side-by-side benchmarks: the PyTorch twins
built from the zoo's one definition (cnnlab/zoo_defs.py), so parameter names match and a
cnnlab state_dict loads into them.

cnnlab/zoo_twin.py is loaded by its path, not imported, so that torch_alone.py times
PyTorch in a process where cnnlab (and its thread and malloc settings) never loads.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

_spec = importlib.util.spec_from_file_location(
    "_cnnlab_zoo_twin", Path(__file__).resolve().parents[1] / "cnnlab" / "zoo_twin.py")
_twin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_twin)
_CLASSES = _twin.zoo_classes(torch)


def build(name, **kwargs):
    return _CLASSES[name](**kwargs)
