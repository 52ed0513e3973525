"""The fast path's acceptance checks run over a decoded batch's columns, not per record.

:mod:`scorer.events.columnar` decodes a micro-batch of one kind at once; these decide which
of its rows the per-record fast path (:func:`scorer.events.fastpath.accept`,
:func:`~scorer.events.fastpath.flow_ok`) would accept: finite times, integers within
``INT_LIMIT``, no rule hits sent in, texts within ``MAX_TEXT`` and none of the missing markers.
A refused row becomes ``None`` and takes the per-record path, which gives its dead-letter
reason. Apart from the decoding because they are the one place the two paths must agree
(the native ``bounded`` and ``Stats.cut`` mirror them; tests/native compares), and each
check has a C-level pass for the common all-good batch before a column-by-column look.
"""

from __future__ import annotations

import math
from operator import attrgetter

import numpy as np

import scorer.native
from scorer.events.convert import INT_LIMIT, MAX_TEXT, MISSING_TEXTS
from scorer.events.fastpath import FLOW_TEXTS
from scorer.events.flowviews import Row
from scorer.events.structs import EventKind


def checked_flows(rows: list[Row | None], clean: bool = False) -> list[Row | None]:
    """The flows the fast path's checks (:func:`scorer.events.fastpath.flow_ok`) accept, by
    column; ``clean``: the native cut has checked every row's texts on the way."""
    present = rows if None not in rows else [r for r in rows if r is not None]
    if not present or _all_flows_good(present, clean):
        return rows
    refused = np.zeros(len(present), dtype=bool)
    for name in ("ts", "duration"):
        refused |= ~np.isfinite(np.fromiter(map(attrgetter(name), present), np.float64, len(present)))
    for name in ("uid", *FLOW_TEXTS):
        column = list(map(attrgetter(name), present))
        distinct = set(column)
        if _all_good(distinct, name):
            continue
        bad = {t for t in distinct if _bad_text(t, name)}
        if bad:
            refused |= np.fromiter((t in bad for t in column), bool, len(present))
    if not refused.any():
        return rows
    keep = iter((~refused).tolist())
    return [r if r is not None and next(keep) else None for r in rows]


_TEXT_GETTERS = tuple(attrgetter(name) for name in FLOW_TEXTS if name != "proto")


def _all_flows_good(flows: list[Row], clean: bool) -> bool:
    """Whether every flow passes every check (the common case), in C-level passes over the
    batch whatever its size: the texts of all columns as one set (the checks but proto's
    lower case are the same for each), unless ``clean`` says they pass. False: look column
    by column."""
    # A finite sum means every value is finite (NaN and inf propagate); one that overflows
    # merely sends the batch to the column-by-column look, which decides precisely.
    if not math.isfinite(sum(map(_TS, flows)) + sum(map(_DURATION, flows))):
        return False
    if clean:
        return True
    texts = set(map(_PROTO, flows))
    if not _all_good(texts, "proto"):
        return False
    for getter in _TEXT_GETTERS:
        texts.update(map(getter, flows))
    return _all_good(texts, "") and _all_good(set(map(_UID, flows)), "uid")


# What :func:`scorer.events.fastpath.accept` bounds on EDR events and SIEM alerts: integers
# (msgspec takes any size; the generic path refuses beyond INT_LIMIT), rule hits (the rules
# stage's to set) and a finite ts, here checked by column.
_EVENT_INTS = {EventKind.EDR: ("event_code", "process_id", "dst_port", "logon_type"), EventKind.SIEM: ("severity",)}


def checked_events(kind: EventKind, rows: list[Row | None]) -> list[Row | None]:
    """The EDR events or SIEM alerts :func:`scorer.events.fastpath.accept` accepts, by column."""
    present = rows if None not in rows else [r for r in rows if r is not None]
    if not present or all_events_good(kind, present):
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


def all_events_good(kind: EventKind, events: list[Row]) -> bool:
    """Whether every event passes :func:`checked_events`' checks (the common case), in C-level
    passes (a finite sum: every ts finite). False: look column by column."""
    native = scorer.native.module()
    if native is not None:  # one pass over the events instead of a set per column
        return bool(native.bounded(events, _TS_ONLY, _EVENT_INTS[kind], INT_LIMIT, _EMPTY[kind])) or \
            _all_events_good_reference(kind, events)
    return _all_events_good_reference(kind, events)


_TS_ONLY = ("ts",)
_EMPTY = {EventKind.EDR: ("rule_hits",), EventKind.SIEM: ()}


def _all_events_good_reference(kind: EventKind, events: list[Row]) -> bool:
    """:func:`all_events_good` in Python (the native ``bounded``'s reference)."""
    if not math.isfinite(sum(map(_TS, events))):
        return False
    for name in _EVENT_INTS[kind]:
        values = set(map(attrgetter(name), events)) - _UNSET
        if values and (max(values) > INT_LIMIT or min(values) < -INT_LIMIT):
            return False
    return kind is not EventKind.EDR or not any(map(_RULE_HITS, events))


_UID = attrgetter("uid")
_TS = attrgetter("ts")
_DURATION = attrgetter("duration")
_PROTO = attrgetter("proto")
_RULE_HITS = attrgetter("rule_hits")


def _all_good(distinct: set[str | None], name: str) -> bool:
    """Whether no value of ``distinct`` is a :func:`_bad_text` (False: look at each)."""
    texts = distinct - _UNSET_UID if name == "uid" else distinct - _UNSET
    if not texts:
        return True
    return (max(map(len, texts)) <= MAX_TEXT and MISSING_TEXTS.isdisjoint(texts)  # type: ignore[arg-type]
            and (name != "proto" or all(map(str.islower, texts))))  # type: ignore[arg-type]


_UNSET: set[str | None] = {None}
_UNSET_UID: set[str | None] = {None, ""}  # "" is the uid's own default


def _bad_text(text: str | None, name: str) -> bool:
    if text is None or (name == "uid" and text == ""):  # "" is the uid's own default
        return False
    return len(text) > MAX_TEXT or text in MISSING_TEXTS or (name == "proto" and not text.islower())
