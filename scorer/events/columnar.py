"""A micro-batch's values of one kind decoded at once, checked by column, not per record.

The per-record path (:class:`scorer.events.decode.EventDecoder`) pays a Python call, the
checks of :mod:`scorer.events.fastpath` and, for flows, a dict of ~80 CICFlowMeter
statistics per record. Here msgspec decodes every value of the batch (one ``map``, no
Python frame per record) and the checks run over columns with numpy and sets
(:mod:`scorer.events.column_checks`):

- flows decode into :data:`FlowView`: FlowRecord's fields, but the statistics in a struct
  of the CICFlowMeter names (:data:`FlowStats`), validated as numbers (msgspec refuses
  non-finite JSON numbers) without a dict, its keys or a sum per record. Features read the
  few statistics they need; an alerting row is decoded whole (:func:`expand`) for its finding.
  Where the native scanner is built, canonical flows skip msgspec too: ``Stats.rows`` reads
  each record's fields into one batch's columns and answers a FlowRow per flow (the view's
  attributes, made Python objects only when read: :func:`flow_rows`);
- EDR events and SIEM alerts decode into their canonical structs (the rules stage and the
  features read their ``fields``), checked by :func:`scorer.events.fastpath.accept`; EDR events
  for feature sets that read views as :class:`scorer.events.edrrows.EndpointRow`, their
  ``fields`` a native mapping over the record's bytes (its values made when read).

Nothing is accepted here that the per-record fast path would refuse: a refused position
(bad JSON, another source form, a value the adapters normalise or refuse, statistics of
other names) takes the per-record path, which decides exactly as before, dead-letter
reason included. docs/benchmarks.md compares this with a JSON-to-Arrow reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any, TypeVar

import msgspec

import scorer.native
from scorer.events.column_checks import all_events_good, checked_events, checked_flows
from scorer.events.decode import EventDecoder
from scorer.events.edrrows import ROW_DECODER, EndpointRow, canonical, index_rows
from scorer.events.fastpath import DECODE_ERRORS, accept, decode_canonical
from scorer.events.flowviews import (
    CIC_STATISTICS,
    READ_STATISTICS,
    VIEWS,
    FlowStats,
    FlowView,
    RawFlowView,
    Row,
    checked_stats,
    cut_rows,
    decode_all,
    stat_attr,
    statistics,
    stats_reader,
)
from scorer.events.structs import STRUCT_OF_KIND, Event, EventKind, SourceRef

__all__ = ["CIC_STATISTICS", "READ_STATISTICS", "VIEWS", "FlowStats", "FlowView", "RawFlowView", "decode_kind",
           "decode_rows", "expand", "stat_attr", "statistics", "where"]

_DECODERS: dict[EventKind, msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(struct) for kind, struct in STRUCT_OF_KIND.items()
}
_VIEW_DECODER = msgspec.json.Decoder(FlowView)
_UID = attrgetter("uid")


def decode_rows(
    kind: EventKind, values: Sequence[bytes | None], max_bytes: int, views: bool = False,
) -> list[Row | None]:
    """A row per value, ``None`` where the value must take the per-record path. ``views`` (for
    feature sets that read them, ``reads_views``): flows as :data:`FlowView` rows, EDR events as
    :class:`EndpointRow` where the native FieldMap is in use."""
    return decode_kind(kind, values, max_bytes, views)[0]


def decode_kind(
    kind: EventKind, values: Sequence[bytes | None], max_bytes: int, views: bool = False,
) -> tuple[list[Row | None], bool]:
    """:func:`decode_rows`' rows, and whether every one is a row with a uid (the pipeline's
    common case: no record to decode one by one, no uid to stamp). Its fast paths make no
    Python object per row but the rows: a micro-batch of 50 records pays for every call."""
    if kind is not EventKind.NETFLOW:
        lazy = views and kind is EventKind.EDR and scorer.native.module("_fieldmap") is not None
        decode = ROW_DECODER.decode if lazy else _DECODERS[kind].decode
        try:  # one C-level map; a value that raises (a tombstone among them) sends the batch below
            rows: list[Row | None] = list(map(decode, values))  # type: ignore[arg-type]  # None raises TypeError
            if lazy:
                for i in index_rows(rows):  # an object the FieldMap does not take: msgspec decides it
                    rows[i] = _DECODERS[kind].decode(values[i])  # type: ignore[arg-type]  # decoded above: not None
        except (*DECODE_ERRORS, TypeError):
            return _refused_events(kind, values, max_bytes)
        if _oversized(values, max_bytes):  # no None among them: each decoded
            return _refused_events(kind, values, max_bytes)
        if all_events_good(kind, rows):
            return rows, all(scorer.native.column(rows, "uid"))
        return checked_events(kind, rows), False
    stats = stats_reader() if views else None
    if stats is not None:
        rows = stats.rows(values if isinstance(values, list) else list(values), max_bytes)
        if None not in rows:  # every flow a FlowRow: Stats.rows makes none of a uid "" or none
            return rows, True
        return _rest_cut(stats, values, max_bytes, rows), False
    rows = _sized(decode_all((_VIEW_DECODER if views else _DECODERS[kind]).decode, values), values, max_bytes)
    if views:
        return checked_flows(rows), False
    return [None if r is None else accept(r) for r in rows], False


def _oversized(values: Sequence[Any], max_bytes: int) -> bool:
    """Whether some value is longer than ``max_bytes``: one native loop where built (a Python call
    of len() per value cost ~300 instructions an event); else a total within the bound bounds
    each (a sum of lengths costs less than their max)."""
    native = scorer.native.module()
    if native is not None and isinstance(values, list):
        return bool(native.longest(values) > max_bytes)
    return sum(map(len, values)) > max_bytes and max(map(len, values)) > max_bytes


def _refused_events(kind: EventKind, values: Sequence[bytes | None], max_bytes: int) -> tuple[list[Row | None], bool]:
    """:func:`decode_kind` of EDR events or SIEM alerts of which some may be refused: each
    value decoded on its own, then the column checks."""
    rows = _sized(decode_all(_DECODERS[kind].decode, values), values, max_bytes)
    return checked_events(kind, rows), False


def flow_rows(stats: Any, values: Sequence[bytes | None], max_bytes: int) -> list[Row | None]:
    """Flows read by the native scanner: the plain records straight into one batch's columns
    (``Stats.rows``: a FlowRow each, its values made Python objects only when read), the rest
    (a record it is not sure of, a uid to stamp, a text the checks refuse...) by the cut path."""
    listed = values if isinstance(values, list) else list(values)
    rows: list[Row | None] = stats.rows(listed, max_bytes)
    return rows if None not in rows else _rest_cut(stats, listed, max_bytes, rows)


def _rest_cut(stats: Any, values: Sequence[bytes | None], max_bytes: int, rows: list[Row | None]) -> list[Row | None]:
    """``rows`` (``Stats.rows``') with the flows it left None read by the cut path."""
    rest = [i for i, row in enumerate(rows) if row is None]
    for i, row in zip(rest, _cut_flows(stats, [values[i] for i in rest], max_bytes), strict=True):
        rows[i] = row
    return rows


def _cut_flows(stats: Any, values: Sequence[bytes | None], max_bytes: int) -> list[Row | None]:
    """The views of flows cut by the native scanner (:func:`flow_rows`' reference path)."""
    rows, uncut, clean = cut_rows(stats, values)
    rows = _sized(rows, values, max_bytes)
    if uncut:
        rows = checked_stats(stats, rows)
    return checked_flows(rows, clean)


def _sized(rows: list[Row | None], values: Sequence[bytes | None], max_bytes: int) -> list[Row | None]:
    """``rows`` without the rows of tombstones and values over ``max_bytes`` (the per-record
    path gives those their dead-letter reasons)."""
    if None in values or max(map(len, values), default=0) > max_bytes:  # type: ignore[arg-type]
        return [None if v is None or len(v) > max_bytes else r for v, r in zip(values, rows, strict=True)]
    return rows


def expand(kind: EventKind, row: Row, value: bytes, ref: SourceRef) -> Event:
    """The canonical event of a decoded row (a :data:`FlowView` is decoded whole again, an
    :class:`EndpointRow`'s fields made a dict)."""
    if type(row) is EndpointRow:
        return canonical(row)
    if not isinstance(row, VIEWS):
        return row  # type: ignore[no-any-return]
    uid: str = _UID(row)
    event = decode_canonical(kind, value)
    if event is None:
        # The fast path leaves a few records the view's checks take to the generic path (a
        # flow's statistics each finite, their sum past the largest double): decide them as
        # the per-record decoding does.
        generic = EventDecoder(len(value)).decode(kind, value, ref)
        if not isinstance(generic, Event):  # the view's checks accept nothing it refuses: a bug
            raise ValueError(f"{ref}: a record decoded as a view was refused whole: {generic.message}")
        event = generic
    return event if event.uid else msgspec.structs.replace(event, uid=uid)


H = TypeVar("H")


def where(values: list[H]) -> dict[H, list[int]]:
    """Each distinct value (first seen first) with the positions holding it, ascending: a
    batch's records grouped by kind in one native pass where built."""
    native = scorer.native.module()
    if native is not None:
        out: dict[H, list[int]] = native.where(values)
        return out
    return where_reference(values)


def where_reference(values: list[H]) -> dict[H, list[int]]:
    """:func:`where` in Python (the native code's reference)."""
    out: dict[H, list[int]] = {}
    for i, value in enumerate(values):
        out.setdefault(value, []).append(i)
    return out
