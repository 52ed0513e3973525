"""The hot path's native part (C, ``_native.c``), with the Python code as its reference.

Built by setuptools when the package is installed (``pip install``, ``make``). A source
tree without the built module (the GPU device machine runs the scorer from one) uses the
Python code, which computes the very same values: tests/native runs both on every stream.

``SCORER_NATIVE`` chooses, read each time a feature set is built: ``auto`` (default: native
when built), ``0`` (the Python reference), ``1`` (native, or ImportError if it is not built).
"""

from __future__ import annotations

import os
from types import ModuleType

_built: ModuleType | None
try:
    from scorer.native import _native as _built
except ImportError:  # not built: the Python reference runs
    _built = None

ENV = "SCORER_NATIVE"


def module() -> ModuleType | None:
    """The native module if this process is to use it, else None (the Python reference)."""
    choice = os.environ.get(ENV, "auto").strip().lower()
    if choice in ("0", "false", "no", "off"):
        return None
    if choice in ("1", "true", "yes", "on") and _built is None:
        raise ImportError(f"{ENV}={choice} but scorer.native._native is not built (pip install the package)")
    return _built


def built() -> bool:
    return _built is not None
