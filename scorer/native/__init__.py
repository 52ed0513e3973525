"""The hot path's native part (C: ``_native.c``, ``_edr.c``), with the Python code as its reference.

Built by setuptools when the package is installed (``pip install``, ``make``). A source
tree without the built modules (the GPU device machine runs the scorer from one) uses the
Python code, which computes the very same values: tests/native runs both on every stream.

- ``_native``: the netflow and SIEM entity windows, the flows' CIC statistics;
- ``_edr``: the EDR features' and the Sigma rule engine's per-row passes.

``SCORER_NATIVE`` chooses, read at every call so that tests can switch: ``auto`` (default:
native when built), ``0`` (the Python reference), ``1`` (native, or ImportError if it is
not built).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

ENV = "SCORER_NATIVE"
NAMES = ("_native", "_edr")


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"scorer.native.{name}")
    except ImportError:  # not built: the Python reference runs
        return None


_BUILT: dict[str, ModuleType | None] = {name: _load(name) for name in NAMES}
# (module, the variable's raw value) -> the answer: asked once per column of every batch.
_CHOICE: dict[tuple[str, str | None], ModuleType | None] = {}


def module(name: str = "_native") -> ModuleType | None:
    """The native module ``name`` if this process is to use it, else None (the Python reference)."""
    raw = os.environ.get(ENV)
    try:
        return _CHOICE[name, raw]
    except KeyError:
        pass
    choice = (raw or "auto").strip().lower()
    built = _BUILT[name]
    if choice in ("0", "false", "no", "off"):
        built = None
    elif choice in ("1", "true", "yes", "on") and built is None:
        raise ImportError(f"{ENV}={choice} but scorer.native.{name} is not built (pip install the package)")
    _CHOICE[name, raw] = built
    return built


def built(name: str = "_native") -> bool:
    return _BUILT[name] is not None


def built_module(name: str = "_native") -> ModuleType | None:
    """The native module ``name`` when built, whatever ``SCORER_NATIVE`` says (for tests that
    compare it with the reference)."""
    return _BUILT[name]
