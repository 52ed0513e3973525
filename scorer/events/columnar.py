"""A micro-batch's values of one kind decoded at once, checked by column, not per record.

The per-record path (:class:`scorer.events.decode.EventDecoder`) pays a Python call, the
checks of :mod:`scorer.events.fastpath` and, for flows, a dict of ~80 CICFlowMeter
statistics per record. Here msgspec decodes every value of the batch (one ``map``, no
Python frame per record) and the checks run over columns with numpy and sets:

- flows decode into :data:`FlowView`: FlowRecord's fields, but the statistics in a struct
  of the CICFlowMeter names (:data:`FlowStats`), validated as numbers (msgspec refuses
  non-finite JSON numbers) without a dict, its keys or a sum per record. Features read the
  few statistics they need; an alerting row is decoded whole (:func:`expand`) for its finding;
- EDR events and SIEM alerts decode into their canonical structs (the rules stage and the
  features read their ``fields``), checked by :func:`scorer.events.fastpath.accept`.

Nothing is accepted here that the per-record fast path would refuse: a refused position
(bad JSON, another source form, a value the adapters normalise or refuse, statistics of
other names) takes the per-record path, which decides exactly as before, dead-letter
reason included. docs/benchmarks.md compares this with a JSON-to-Arrow reader.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from operator import attrgetter
from typing import Annotated, Any

import msgspec
import numpy as np
import numpy.typing as npt

import scorer.native
from scorer.events.convert import _MISSING, INT_LIMIT, MAX_TEXT
from scorer.events.fastpath import DECODE_ERRORS, FLOW_INTS, FLOW_TEXTS, accept, decode_canonical
from scorer.events.structs import STRUCT_OF_KIND, Event, EventKind, FlowRecord, SourceRef

# CICFlowMeter's statistics (CIC-IDS2017 column names, as canonical flows carry them).
CIC_STATISTICS: tuple[str, ...] = (
    "Flow Duration", "Total Fwd Packet", "Total Bwd packets", "Total Length of Fwd Packet",
    "Total Length of Bwd Packet", "Fwd Packet Length Max", "Fwd Packet Length Min",
    "Fwd Packet Length Mean", "Fwd Packet Length Std", "Bwd Packet Length Max", "Bwd Packet Length Min",
    "Bwd Packet Length Mean", "Bwd Packet Length Std", "Flow Bytes/s", "Flow Packets/s", "Flow IAT Mean",
    "Flow IAT Std", "Flow IAT Max", "Flow IAT Min", "Fwd IAT Total", "Fwd IAT Mean", "Fwd IAT Std",
    "Fwd IAT Max", "Fwd IAT Min", "Bwd IAT Total", "Bwd IAT Mean", "Bwd IAT Std", "Bwd IAT Max",
    "Bwd IAT Min", "Fwd PSH Flags", "Bwd PSH Flags", "Fwd URG Flags", "Bwd URG Flags", "Fwd RST Flags",
    "Bwd RST Flags", "Fwd Header Length", "Bwd Header Length", "Fwd Packets/s", "Bwd Packets/s",
    "Packet Length Min", "Packet Length Max", "Packet Length Mean", "Packet Length Std",
    "Packet Length Variance", "FIN Flag Count", "SYN Flag Count", "RST Flag Count", "PSH Flag Count",
    "ACK Flag Count", "URG Flag Count", "CWR Flag Count", "ECE Flag Count", "Down/Up Ratio",
    "Average Packet Size", "Fwd Segment Size Avg", "Bwd Segment Size Avg", "Fwd Bytes/Bulk Avg",
    "Fwd Packet/Bulk Avg", "Fwd Bulk Rate Avg", "Bwd Bytes/Bulk Avg", "Bwd Packet/Bulk Avg",
    "Bwd Bulk Rate Avg", "Subflow Fwd Packets", "Subflow Fwd Bytes", "Subflow Bwd Packets",
    "Subflow Bwd Bytes", "FWD Init Win Bytes", "Bwd Init Win Bytes", "Fwd Act Data Pkts",
    "Fwd Seg Size Min", "Active Mean", "Active Std", "Active Max", "Active Min", "Idle Mean", "Idle Std",
    "Idle Max", "Idle Min", "ICMP Code", "ICMP Type", "Total TCP Flow Time",
)


@functools.cache
def stat_attr(name: str) -> str:
    """The :data:`FlowStats` attribute of a statistic: ``"FIN Flag Count"`` -> ``fin_flag_count``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


# A statistic absent from a record reads 0.0, as ``extra.get(name, 0.0)`` does.
FlowStats: type[msgspec.Struct] = msgspec.defstruct(
    "FlowStats", [(stat_attr(n), float, msgspec.field(default=0.0, name=n)) for n in CIC_STATISTICS],
    forbid_unknown_fields=True, frozen=True, gc=False,
)
# FlowRecord's own fields and types (so both accept the same records), statistics aside; the
# integers the generic path bounds are bounded by the decoder (a value beyond refuses the row,
# which then takes the per-record path, as a check after decoding would send it).
_BOUNDED = Annotated[int, msgspec.Meta(ge=-INT_LIMIT, le=INT_LIMIT)]
FlowView: type[msgspec.Struct] = msgspec.defstruct(
    "FlowView",
    [(f.name, FlowStats, msgspec.field(default_factory=FlowStats)) if f.name == "extra"
     else (f.name, _BOUNDED if f.name in FLOW_INTS else f.type, msgspec.field(default=f.default))
     if f.required is False
     else (f.name, _BOUNDED if f.name in FLOW_INTS else f.type) for f in msgspec.structs.fields(FlowRecord)],
    kw_only=True, frozen=True, gc=False,
)

# The same view with the statistics left as their JSON bytes, for the native scanner
# (scorer.native): no 81 Python floats per flow to build and free; they are checked in C and
# the few that features read are read in C (:func:`statistics`).
RawFlowView: type[msgspec.Struct] = msgspec.defstruct(
    "RawFlowView",
    [(f.name, msgspec.Raw, msgspec.field(default=msgspec.Raw(b"{}"))) if f.name == "extra"
     else (f.name, f.type, msgspec.field(default=f.default)) if f.required is False
     else (f.name, f.type) for f in msgspec.structs.fields(FlowView)],
    kw_only=True, frozen=True, gc=False,
)
VIEWS = (FlowView, RawFlowView)

_DECODERS: dict[EventKind, msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(struct) for kind, struct in STRUCT_OF_KIND.items()
}
_VIEW_DECODER = msgspec.json.Decoder(FlowView)
_RAW_VIEW_DECODER = msgspec.json.Decoder(RawFlowView)
_STATS_DECODER = msgspec.json.Decoder(FlowStats)
Row = Any  # a FlowView, or the kind's canonical event
_UID = attrgetter("uid")


def decode_rows(
    kind: EventKind, values: Sequence[bytes | None], max_bytes: int, views: bool = False,
) -> list[Row | None]:
    """A row per value, ``None`` where the value must take the per-record path. ``views``:
    flows as :data:`FlowView` rows (for feature sets that read them, ``reads_views``)."""
    views = views and kind is EventKind.NETFLOW
    stats = _stats_reader() if views else None
    decode = (_DECODERS[kind] if not views else _VIEW_DECODER if stats is None else _RAW_VIEW_DECODER).decode
    try:
        # One C-level map over the batch; a value that raises sends the batch below.
        rows: list[Row | None] = list(map(decode, values))  # type: ignore[arg-type]
    except (*DECODE_ERRORS, TypeError):
        rows = [_decode_one(decode, v) for v in values]
    if None in values or max(map(len, values), default=0) > max_bytes:  # type: ignore[arg-type]
        rows = [None if v is None or len(v) > max_bytes else r for v, r in zip(values, rows, strict=True)]
    if stats is not None:
        rows = _checked_stats(stats, rows)
    if views:
        return _checked_flows(rows)
    if kind is EventKind.NETFLOW:
        return [None if r is None else accept(r) for r in rows]
    return _checked_events(kind, rows)


def expand(kind: EventKind, row: Row, value: bytes, ref: SourceRef) -> Event:
    """The canonical event of a decoded row (a :data:`FlowView` is decoded whole again)."""
    if not isinstance(row, VIEWS):
        return row  # type: ignore[no-any-return]
    uid: str = _UID(row)
    event = decode_canonical(kind, value)
    if event is None:  # the view's checks are the fast path's: this is a bug, not bad input
        raise ValueError(f"{ref}: a record decoded as a view was refused whole")
    return event if event.uid else msgspec.structs.replace(event, uid=uid)


def statistics(extras: Sequence[Any], names: tuple[str, ...]) -> npt.NDArray[np.float64]:
    """``[n, len(names)]``: the named statistics of each row's ``extra`` (a view's struct, its
    raw JSON, or an event's dict), 0.0 where a record does not carry one."""
    attrs = tuple(stat_attr(name) for name in names)
    types = set(map(type, extras))
    if types == {msgspec.Raw}:
        out = np.empty((len(extras), len(names)), dtype=np.float64)
        stats = _stats_reader()
        # The scanner reads what it is sure of; the rest (escaped names, long integers...) and
        # every row when the native part is off go through FlowStats, its reference.
        unsure = range(len(extras)) if stats is None else stats.columns(
            extras if isinstance(extras, list) else list(extras), tuple(map(_STAT_INDEX.__getitem__, names)), out)
        for i in unsure:
            out[i] = attrgetter(*attrs)(_STATS_DECODER.decode(extras[i])) if attrs else ()
        return out
    if types == {FlowStats}:
        rows = list(map(attrgetter(*attrs), extras))  # tuples (one value each for one name)
    else:  # events (or events and views): the statistics dict, a view's struct or its JSON
        rows = [tuple(x.get(name, 0.0) for name in names) if isinstance(x, dict) else
                tuple(getattr(_STATS_DECODER.decode(x) if isinstance(x, msgspec.Raw) else x, attr) for attr in attrs)
                for x in extras]
    return np.array(rows, dtype=np.float64).reshape(len(extras), len(names))


_STAT_INDEX = {name: i for i, name in enumerate(CIC_STATISTICS)}


# What the netflow features read of the statistics: read while checking, for columns().
READ_STATISTICS = ("FIN Flag Count", "RST Flag Count", "Fwd RST Flags", "Bwd RST Flags")


@functools.cache
def _stats_scanner(native: Any) -> Any:
    return native.Stats(tuple(name.encode() for name in CIC_STATISTICS), tuple(map(_STAT_INDEX.get, READ_STATISTICS)))


def _stats_reader() -> Any:
    """The native statistics scanner, or None: the Python reference (SCORER_NATIVE, scorer.native)."""
    native = scorer.native.module()
    return None if native is None else _stats_scanner(native)


def _checked_stats(stats: Any, rows: list[Row | None]) -> list[Row | None]:
    """Rows whose raw statistics FlowStats would refuse become None (the per-record path then
    decides, as for a FlowView whose decode failed); the scanner answers the common case."""
    present = [r for r in rows if r is not None]
    flags = stats.check(list(map(_EXTRA, present)))
    if all(flags):
        return rows
    refused: set[int] = set()
    for row, ok in zip(present, flags, strict=True):
        if not ok:
            try:
                _STATS_DECODER.decode(row.extra)
            except (*DECODE_ERRORS, TypeError):
                refused.add(id(row))
    return [None if r is None or id(r) in refused else r for r in rows] if refused else rows


_EXTRA = attrgetter("extra")


def _decode_one(decode: Any, value: bytes | None) -> Row | None:
    try:
        return decode(value)
    except (*DECODE_ERRORS, TypeError):
        return None


def _checked_flows(rows: list[Row | None]) -> list[Row | None]:
    """The flows the fast path's checks (:func:`scorer.events.fastpath.flow_ok`) accept, by column."""
    present = [r for r in rows if r is not None]
    if not present:
        return rows
    refused = np.zeros(len(present), dtype=bool)
    for name in ("ts", "duration"):
        refused |= ~np.isfinite(np.fromiter(map(attrgetter(name), present), np.float64, len(present)))
    for name in ("uid", *FLOW_TEXTS):
        column = list(map(attrgetter(name), present))
        distinct = set(column)
        if _all_good(distinct, name):  # the common case, decided by C-level passes
            continue
        bad = {t for t in distinct if _bad_text(t, name)}
        if bad:
            refused |= np.fromiter((t in bad for t in column), bool, len(present))
    if not refused.any():
        return rows
    keep = iter((~refused).tolist())
    return [r if r is not None and next(keep) else None for r in rows]


# What :func:`scorer.events.fastpath.accept` bounds on EDR events and SIEM alerts: integers
# (msgspec takes any size; the generic path refuses beyond INT_LIMIT), rule hits (the rules
# stage's to set) and a finite ts, here checked by column.
_EVENT_INTS = {EventKind.EDR: ("event_code", "process_id", "dst_port", "logon_type"), EventKind.SIEM: ("severity",)}


def _checked_events(kind: EventKind, rows: list[Row | None]) -> list[Row | None]:
    """The EDR events or SIEM alerts :func:`scorer.events.fastpath.accept` accepts, by column."""
    present = rows if None not in rows else [r for r in rows if r is not None]
    if not present:
        return rows
    refused = ~np.isfinite(np.fromiter(map(attrgetter("ts"), present), np.float64, len(present)))
    for name in _EVENT_INTS[kind]:
        column = list(map(attrgetter(name), present))
        # Few distinct values (codes, ports, ids): each is looked at once.
        bad = {v for v in set(column) if v is not None and abs(v) > INT_LIMIT}
        if bad:
            refused |= np.fromiter((v in bad for v in column), bool, len(present))
    if kind is EventKind.EDR and any(map(attrgetter("rule_hits"), present)):
        refused |= np.fromiter(map(bool, map(attrgetter("rule_hits"), present)), bool, len(present))
    if not refused.any():
        return rows
    keep = iter((~refused).tolist())
    return [r if r is not None and next(keep) else None for r in rows]


def _all_good(distinct: set[str | None], name: str) -> bool:
    """Whether no value of ``distinct`` is a :func:`_bad_text` (False: look at each)."""
    texts = distinct - _UNSET_UID if name == "uid" else distinct - _UNSET
    if not texts:
        return True
    return (max(map(len, texts)) <= MAX_TEXT and _MISSING.isdisjoint(texts)  # type: ignore[arg-type]
            and (name != "proto" or all(map(str.islower, texts))))  # type: ignore[arg-type]


_UNSET: set[str | None] = {None}
_UNSET_UID: set[str | None] = {None, ""}  # "" is the uid's own default


def _bad_text(text: str | None, name: str) -> bool:
    if text is None or (name == "uid" and text == ""):  # "" is the uid's own default
        return False
    return len(text) > MAX_TEXT or text in _MISSING or (name == "proto" and not text.islower())
