"""Errors that tell the user which layer failed, what it expected and what it got."""
from __future__ import annotations


class LayerError(RuntimeError, ValueError):
    """A bad input to an op, later tagged with the layer it happened in.

    A RuntimeError, as PyTorch's shape errors are (tutorial code catches those), and a
    ValueError, as it always was here.

    The op raises it with its own name ("conv2d") and the detail; every Module
    it passes through on the way out adds its attribute name, so the final
    message reads e.g. ``features.0 (Conv2d): expected input with 3 channels ...``.
    """

    def __init__(self, op: str, detail: str):
        super().__init__(detail)
        self.op = op
        self.detail = detail
        self.path: list[str] = []
        self.layer_type: str | None = None

    def __str__(self) -> str:
        if self.layer_type is None:
            return f"{self.op}: {self.detail}"
        where = ".".join(self.path) if self.path else "model"
        return f"{where} ({self.layer_type}): {self.detail}"


class MismatchError(RuntimeError, ValueError):
    """Shapes, devices or dtypes that do not fit together (outside a layer): a RuntimeError as
    in PyTorch, and a ValueError as it always was here."""


def shape_str(shape) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"
