"""EDR events whose ``fields`` are read from the record's bytes, not decoded into a dict.

An EDR event's ``fields`` (~12 pairs, ~470 of a record's ~860 bytes) were ~65% of its msgspec
decode, and the rules stage and the features read a few of them. On the columnar path msgspec
decodes an :class:`EndpointRow`, whose ``fields`` it leaves as the object's raw JSON, and the
native ``index_rows`` (scorer/native/_fieldmap.c) puts in its place a ``FieldMap``: a
read-only mapping indexed once over those bytes, each value made a ``str`` when first read.
An object the map does not take (a duplicate key, an escaped or non-ASCII key, a value that is
not a string...) leaves its row to msgspec's decode of the whole :class:`EndpointEvent`, which
decides it as before. Findings encode the canonical event (:func:`canonical`).

Everything that reads an event's ``fields`` reads it as a ``Mapping`` (``get``, ``in``,
``values()``...); the natives read a ``FieldMap`` through its C API (_fieldmap.h).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

import scorer.native
from scorer.events.structs import EndpointEvent

if TYPE_CHECKING:
    from scorer.native import _fieldmap

__all__ = ["ENDPOINT_TYPES", "EndpointRow", "FieldMap", "canonical", "index_rows"]


class EndpointRow(EndpointEvent, frozen=True, kw_only=True, omit_defaults=True):
    """An EndpointEvent as the columnar decode makes it: ``fields`` decoded as its raw JSON (its
    slot is EndpointEvent's own), then holding a ``FieldMap`` over those bytes."""

    fields: msgspec.Raw = msgspec.Raw(b"{}")  # type: ignore[assignment]  # a FieldMap once indexed


# What an EDR batch's events are (exactly: the natives that read their slots check the type).
ENDPOINT_TYPES: tuple[type[EndpointEvent], ...] = (EndpointEvent, EndpointRow)
_NATIVE = scorer.native.built_module("_fieldmap")
# Where the extension is built, whatever SCORER_NATIVE says: a row may outlive a switch.
FieldMap: type[_fieldmap.FieldMap] | None = getattr(_NATIVE, "FieldMap", None)  # (a registered Mapping)
ROW_DECODER: msgspec.json.Decoder[EndpointRow] = msgspec.json.Decoder(EndpointRow)


def index_rows(rows: list[Any]) -> list[int]:
    """Each :class:`EndpointRow` of ``rows`` (None skipped) with a ``FieldMap`` in place of its raw
    ``fields``; the positions whose object the map refused, left as they were, ascending."""
    native = scorer.native.module("_fieldmap")
    if native is None:
        raise RuntimeError("scorer.native._fieldmap is not in use")
    refused: list[int] = native.index_rows(rows, msgspec.Raw)
    return refused


def canonical(row: EndpointEvent) -> EndpointEvent:
    """``row`` as the EndpointEvent the per-record decode makes of its record (a plain event is
    itself): ``fields`` a dict, for what encodes or keys by the exact type (findings)."""
    if type(row) is not EndpointRow:
        return row
    values = msgspec.structs.asdict(row)
    fields = values["fields"]
    values["fields"] = fields.to_dict() if FieldMap is not None and type(fields) is FieldMap \
        else msgspec.json.decode(fields, type=dict[str, str])
    return EndpointEvent(**values)
