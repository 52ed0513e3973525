"""Flows' CICFlowMeter statistics in the columnar path (:mod:`scorer.events.columnar`):
the views flows decode into, and the statistics features read from them.

Three views, FlowRecord's fields and types each, ``extra`` aside: :data:`FlowView` (the
statistics parsed into :data:`FlowStats`, the Python reference), and for the native scanner
(:mod:`scorer.native`) :data:`RawFlowView` (their JSON bytes, checked and read in C) and
:data:`CutFlowView` (cut out of the record in C before msgspec sees it, ``extra`` holding
only :data:`READ_STATISTICS` as packed float64). The scanner's own rows, :data:`FlowRow`
(``Stats.rows``: a canonical record's fields read into one batch's columns), answer
CutFlowView's attributes with the same values; a record they are not sure of is cut.
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
from scorer.events.convert import INT_LIMIT, MAX_TEXT, MISSING_TEXTS
from scorer.events.fastpath import DECODE_ERRORS, FLOW_INTS, FLOW_TEXTS
from scorer.events.structs import FlowRecord

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



def _view(name: str, extra: Any, default: Any) -> type[msgspec.Struct]:
    """FlowView with another type for ``extra``."""
    return msgspec.defstruct(
        name,
        [(f.name, extra, msgspec.field(default=default)) if f.name == "extra"
         else (f.name, f.type, msgspec.field(default=f.default)) if f.required is False
         else (f.name, f.type) for f in msgspec.structs.fields(FlowView)],
        kw_only=True, frozen=True, gc=False,
    )


# The views of the native scanner (scorer.native), no 81 Python floats per flow to build and
# free: the statistics left as their JSON bytes, checked and read in C (:func:`statistics`);
# or, the common case, cut out of the record by ``Stats.cut`` before msgspec sees it (its
# validating skip of the raw object cost more than the scan), ``extra`` then holding only the
# READ_STATISTICS as packed float64.
RawFlowView = _view("RawFlowView", msgspec.Raw, msgspec.Raw(b"{}"))
CutFlowView = _view("CutFlowView", bytes, b"")
# The native scanner's rows (``Stats.rows``): CutFlowView's attributes read from one batch's
# columns, where the extension is built (whatever SCORER_NATIVE says: a row may outlive a switch).
_NATIVE = scorer.native.built_module()
FlowRow: type | None = getattr(_NATIVE, "FlowRow", None)
VIEWS: tuple[type, ...] = (FlowView, RawFlowView, CutFlowView) + ((FlowRow,) if FlowRow is not None else ())

_RAW_VIEW_DECODER = msgspec.json.Decoder(RawFlowView)
_CUT_VIEW_DECODER = msgspec.json.Decoder(CutFlowView)
_STATS_DECODER = msgspec.json.Decoder(FlowStats)
Row = Any  # a view, or the kind's canonical event


def statistics(extras: Sequence[Any], names: tuple[str, ...]) -> npt.NDArray[np.float64]:
    """``[n, len(names)]``: the named statistics of each row's ``extra`` (a view's struct, its
    raw JSON, a cut view's packed READ_STATISTICS, or an event's dict), 0.0 where a record
    does not carry one."""
    attrs = tuple(stat_attr(name) for name in names)
    types = set(map(type, extras))
    if bytes in types:
        return _cut_statistics(extras, names, types)
    if types == {msgspec.Raw}:
        out = np.empty((len(extras), len(names)), dtype=np.float64)
        stats = stats_reader()
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


# The record's texts the cut looks at on the way (scorer.events.column_checks' checks of them).
_CUT_TEXTS = ("uid", *FLOW_TEXTS)


@functools.cache
def _stats_scanner(native: Any) -> Any:
    return native.Stats(tuple(name.encode() for name in CIC_STATISTICS), tuple(map(_STAT_INDEX.get, READ_STATISTICS)),
                        texts=tuple(name.encode() for name in _CUT_TEXTS),
                        missing=tuple(sorted(text.encode() for text in MISSING_TEXTS)), max_text=MAX_TEXT,
                        blank_ok=_CUT_TEXTS.index("uid"), lower=_CUT_TEXTS.index("proto"))


def kept_statistics(rows: Sequence[Any]) -> npt.NDArray[np.float64] | None:
    """``[n, len(READ_STATISTICS)]`` of rows that are all FlowRows, copied from their batches'
    columns; None for any other rows (or the native part off): :func:`statistics` reads them."""
    native = scorer.native.module()
    if native is None or not rows:
        return None
    out = np.empty((len(rows), len(READ_STATISTICS)), dtype=np.float64)
    return out if native.flow_kept(rows if isinstance(rows, list) else list(rows), out) else None


def stats_reader() -> Any:
    """The native statistics scanner, or None: the Python reference (SCORER_NATIVE, scorer.native)."""
    native = scorer.native.module()
    return None if native is None else _stats_scanner(native)


def _cut_statistics(extras: Sequence[Any], names: tuple[str, ...], types: set[type]) -> npt.NDArray[np.float64]:
    """:func:`statistics` of cut views (packed READ_STATISTICS), other rows among them (whole
    views, events of records the per-record path decoded) read as :func:`statistics` reads them."""
    picks = None  # all of them, in order (netflow's features)
    if names != READ_STATISTICS:
        missing = set(names) - set(READ_STATISTICS)
        if missing:  # a cut view carries no other statistic: a feature set reading one needs the cut widened
            raise ValueError(f"flow views carry only {READ_STATISTICS} of the statistics, not {sorted(missing)}")
        picks = [READ_STATISTICS.index(name) for name in names]
    cut = list(extras) if types == {bytes} else [x for x in extras if type(x) is bytes]
    packed = np.frombuffer(b"".join(cut), np.float64).reshape(len(cut), len(READ_STATISTICS))
    packed = packed.copy() if picks is None else packed[:, picks]  # a writable array, as a gather gives
    if types == {bytes}:
        return np.ascontiguousarray(packed)
    out = np.empty((len(extras), len(names)), dtype=np.float64)
    where = np.fromiter((type(x) is bytes for x in extras), bool, len(extras))
    out[where] = packed
    out[~where] = statistics([x for x in extras if type(x) is not bytes], names)
    return out


def cut_rows(stats: Any, values: Sequence[bytes | None]) -> tuple[list[Row | None], bool, bool]:
    """Rows of flows whose statistics the scanner cut out (CutFlowView) and, where it left a
    record whole, of the record (RawFlowView); whether any was left whole; whether none was
    and the scanner found every record's texts clean (the columnar path's text checks pass)."""
    cut, clean = stats.cut(values if isinstance(values, list) else list(values))
    if None not in cut:
        return decode_all(_CUT_VIEW_DECODER.decode, cut), False, clean
    cuts, raws = _CUT_VIEW_DECODER.decode, _RAW_VIEW_DECODER.decode
    rows = [_decode_one(raws, v) if c is None else _decode_one(cuts, c) for c, v in zip(cut, values, strict=True)]
    return rows, True, False


def decode_all(decode: Any, values: Sequence[bytes | None]) -> list[Row | None]:
    try:
        # One C-level map over the batch; a value that raises sends the batch below.
        return list(map(decode, values))
    except (*DECODE_ERRORS, TypeError):
        return [_decode_one(decode, v) for v in values]


def checked_stats(stats: Any, rows: list[Row | None]) -> list[Row | None]:
    """Rows whose raw statistics FlowStats would refuse become None (the per-record path then
    decides, as for a FlowView whose decode failed); the scanner answers the common case."""
    present: list[Any] = [r for r in rows if r is not None and type(r) is RawFlowView]
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
