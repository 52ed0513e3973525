"""An alert's finding as JSON bytes: ``_findings.c`` when built and chosen, else the Python
reference (:mod:`scorer.alerts.ocsf`'s structs, which :mod:`scorer.alerts.findingjson` uses then).

``SCORER_NATIVE`` chooses as for the other native modules (:mod:`scorer.native`): the C module
runs where the project's native part does (``scorer.native.module()`` answers a module), and
when it is not built the Python reference runs (with ``SCORER_NATIVE=1``: ImportError, as
for the others). Both write the very same bytes: tests/alerts compare them on every alert of
the bundled capture and on hostile strings.
Its parts take Python callables for what they must write as msgspec does (floats, caches'
misses): ``_ENCODE`` and ``_DECODE_FLOATS`` here; score records take the caller's encoder.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from operator import attrgetter, itemgetter
from types import ModuleType
from typing import Any

import msgspec

import scorer.native

try:
    _BUILT: ModuleType | None = importlib.import_module("scorer.native._findings")
except ImportError:  # not built: the Python reference runs
    _BUILT = None

_ENCODE = msgspec.json.Encoder().encode
_DECODE_FLOATS = msgspec.json.Decoder(list[float]).decode


def module() -> ModuleType | None:
    """``_findings`` if this process is to use it, else None (the Python reference)."""
    if scorer.native.module() is None:
        return None
    if _BUILT is None and os.environ.get(scorer.native.ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        raise ImportError(f"{scorer.native.ENV}=1 but scorer.native._findings is not built (pip install the package)")
    return _BUILT


def built() -> bool:
    return _BUILT is not None


def flow_extra(raw: Any, names: tuple[bytes, ...]) -> bytes | None:
    """A flow's statistics (``raw``: its JSON object as the record carries it, keys among
    ``names`` and in their order) as msgspec writes the ``dict[str, float]`` decoding gives; None
    when the C module is off or the object is not that plain case (the caller decodes whole)."""
    native = module()
    if native is None:
        return None
    return native.flow_extra(raw, names, _DECODE_FLOATS, _ENCODE)  # type: ignore[no-any-return]


def flow_split(record: bytes, names: tuple[bytes, ...]) -> tuple[bytes, bytes | None] | None:
    """A flow record with its statistics' object replaced by ``{}``, and the statistics as
    :func:`flow_extra` writes them (None: the record has none); None when the C module is off
    or the record is not the plain case (the caller decodes it whole)."""
    native = module()
    if native is None:
        return None
    return native.flow_split(record, names, _DECODE_FLOATS, _ENCODE)  # type: ignore[no-any-return]


def item_column(items: Sequence[tuple[Any, Any]], attr: str) -> list[Any]:
    """``[event.<attr> for event, _ in items]`` (a batch's rows): one C pass, no list of the
    events first; the reference a C-level ``map`` (the same list)."""
    native = module()
    if native is not None:
        return native.item_column(items if isinstance(items, list) else list(items), attr)  # type: ignore[no-any-return]
    return list(map(attrgetter(attr), map(_EVENT, items)))


_EVENT = itemgetter(0)
