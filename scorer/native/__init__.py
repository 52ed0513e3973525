"""The hot path's native part (C: ``_native.c``, ``_edr.c``, ``_rules.c``), with the Python code as its reference.

Built by setuptools when the package is installed (``pip install``, ``make``). A source
tree without the built modules (the GPU device machine runs the scorer from one) uses the
Python code, which computes the very same values: tests/native runs both on every stream.

- ``_native``: the netflow and SIEM entity windows, the flows' CIC statistics;
- ``_edr``: the EDR features' and the Sigma rule engine's per-row passes;
- ``_rules``: the rule engine's per-batch passes (a batch's field reads and value grouping, its
  (Channel, EventID) pairs, the conditions its atoms trigger);
- ``_kafka``: the producer's per-record work (placement, filling record batches);
- ``_fieldmap``: an EDR event's ``fields`` as a mapping over its record's bytes (scorer.events.edrrows).

``SCORER_NATIVE`` chooses: ``auto`` (default: native when built), ``0`` (the Python
reference), ``1`` (native, or ImportError if it is not built). It is read once, at import:
:func:`module` is asked for every column of every batch, and reading the environment cost
more than some of those columns. Whoever changes the variable afterwards (tests switch
paths) calls :func:`refresh`, or installs :func:`choices` of a value for a while.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from operator import attrgetter
from types import ModuleType
from typing import Any

ENV = "SCORER_NATIVE"
NAMES = ("_native", "_edr", "_rules", "_kafka", "_fieldmap")


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"scorer.native.{name}")
    except ImportError:  # not built: the Python reference runs
        return None


_BUILT: dict[str, ModuleType | None] = {name: _load(name) for name in NAMES}
# Per module, what module() answers: the module, None (the reference), or False: asked for
# ("1") but not built, which module() raises as ImportError when that module is asked for.
Choices = dict[str, ModuleType | bool | None]


def choices(raw: str | None) -> Choices:
    """What ``SCORER_NATIVE=raw`` chooses for each module (None: the variable unset)."""
    choice = (raw or "auto").strip().lower()
    if choice in ("0", "false", "no", "off"):
        return dict.fromkeys(NAMES, None)
    required = choice in ("1", "true", "yes", "on")
    return {name: False if built is None and required else built for name, built in _BUILT.items()}


_CHOSEN: Choices = choices(os.environ.get(ENV))


def refresh() -> None:
    """Read ``SCORER_NATIVE`` again (after a change to the environment)."""
    global _CHOSEN
    _CHOSEN = choices(os.environ.get(ENV))


def module(name: str = "_native") -> ModuleType | None:
    """The native module ``name`` if this process is to use it, else None (the Python reference)."""
    chosen = _CHOSEN[name]
    if chosen is False:
        raise ImportError(f"{ENV}=1 but scorer.native.{name} is not built (pip install the package)")
    return chosen  # type: ignore[return-value]  # False is handled just above


def built(name: str = "_native") -> bool:
    return _BUILT[name] is not None


def built_module(name: str = "_native") -> ModuleType | None:
    """The native module ``name`` when built, whatever ``SCORER_NATIVE`` says (for tests that
    compare it with the reference)."""
    return _BUILT[name]


def column(events: Sequence[object], attr: str) -> list[Any]:
    """An attribute over a batch: ``_native.column`` reads a struct field through its slot
    (~5x fewer instructions per event than attrgetter's look-up, and less set-up), the
    reference a C-level ``map`` (no Python frame per event); the same list. Here, beside the
    module choice, so that the decode step (scorer.events) and the features share one reader."""
    native = module()
    if native is not None:
        out: list[Any] = native.column(events if isinstance(events, list) else list(events), attr)
        return out
    return list(map(attrgetter(attr), events))
