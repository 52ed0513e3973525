"""One EDR micro-batch as the feature blocks read it, and the blocks' column groups as data
(:class:`Group`), which one native pass runs over a batch (:class:`Plan`); the matrix they write
into is a :class:`scorer.features.sheet.Sheet`.

A small batch (tens of events at 10,000 events/s) paid mostly for Python calls per column group (~50 a
batch, each a read, a factorisation and a fill: benchmarks.md sections 20, 26, 31); the native pass does
them in C, with each distinct key's row from the blocks' own functions (tests/features compares them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any, NamedTuple

import scorer.native
from scorer.events.edrrows import ENDPOINT_TYPES
from scorer.events.structs import EndpointEvent
from scorer.features.base import F64, column, numbers, only
from scorer.features.sheet import Row, Sheet, positions
from scorer.features.texts import Texts, factorize, first_texts, zeros

PathRows = tuple[str, tuple[float, ...], tuple[float, ...]]  # basename, flags, hashed one-hot
SEP = "\x1f"  # between the parts of a composite key
FIRST, JOIN, WORDS, TUPLE, RAW = range(5)  # how a Group's key is made of its parts
_ATTR_OF = {"c": "event_code", "f": "fields"}  # the attribute a Group's part of these kinds reads


def split_key(key: str, parts: int) -> list[str]:
    """A composite key's ``parts`` values. A value that itself holds SEP (a hostile event: JSON
    carries any control character) makes more pieces than parts: the extra ones stay in the
    last part, so such an event still gets a row (the same on the native and the Python
    path, which share the row functions) instead of failing its whole batch."""
    pieces = key.split(SEP)
    if len(pieces) == parts:
        return pieces
    if len(pieces) > parts:
        return [*pieces[:parts - 1], SEP.join(pieces[parts - 1:])]
    return pieces + [""] * (parts - len(pieces))


class Codes:
    """A batch's event codes, factorised once for every gate and table of the blocks."""

    __slots__ = ("_by_code", "distinct", "inverse", "n")

    def __init__(self, evs: Sequence[EndpointEvent]) -> None:
        self.n = len(evs)
        self.distinct, self.inverse = factorize(column(evs, "event_code"))
        self._by_code: list[list[int]] | None = None

    def rows(self, gate: frozenset[int]) -> list[int]:
        """The rows whose event code is in ``gate``, ascending."""
        if gate.isdisjoint(self.distinct):  # most gates: no event of the batch (one C-level pass)
            return []
        hit = [j for j, code in enumerate(self.distinct) if code in gate]
        if len(hit) == len(self.distinct):
            return list(range(self.n))
        # Each distinct code's rows, listed once for all the gates of the batch: a numpy mask
        # per gate cost ~4% of the CPU of 50-record batches (a batch has a few codes).
        by_code = self._by_code
        if by_code is None:
            by_code = self._by_code = [[] for _ in self.distinct]
            for row, j in enumerate(self.inverse.tolist()):
                by_code[j].append(row)
        if len(hit) == 1:
            return list(by_code[hit[0]])
        return sorted(chain.from_iterable(by_code[j] for j in hit))

    def put(self, sheet: Sheet, first: str, width: int, row: Callable[[Any], Row]) -> None:
        """:meth:`Sheet.put_rows` of ``row(code)`` for each distinct event code."""
        sheet.put_rows(first, width, self.inverse, [row(c) for c in self.distinct])


# The attributes and fields the Python blocks read by column: a column no event of a batch carries
# (:func:`present`; most columns of a small batch) is the batch's blank column without a read.
ATTRS = ("parent_image", "parent_command_line", "command_line", "target_filename", "target_object",
         "image_loaded", "integrity_level", "user", "logon_type", "dst_port", "signed")
FIELDS = ("OriginalFileName", "TargetImage", "GrantedAccess", "ScriptBlockText", "Payload", "HostApplication",
          "Details", "PrivilegeList", "EnabledPrivilegeList")
_ATTRS, _FIELDS = frozenset(ATTRS), frozenset(FIELDS)


def present(events: list[EndpointEvent], attrs: tuple[str, ...], fields: list[Mapping[str, str]],
            names: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """The ``attrs`` some event holds a value of (not None, not ``""``), and the ``names`` some mapping
    of ``fields`` holds a true value of (natively: one pass, stopping at the first holder of each)."""
    native = scorer.native.module("_edr")
    if native is not None:
        out: tuple[set[str], set[str]] = native.present(events, attrs, fields, names)
        return out
    return present_reference(events, attrs, fields, names)


def present_reference(events: Sequence[EndpointEvent], attrs: tuple[str, ...],
                      fields: Sequence[Mapping[str, str]], names: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """:func:`present` in Python (the native code's reference)."""
    held = {a for a in attrs if any(_holds(getattr(e, a)) for e in events)}
    return held, {name for name in names if any(f.get(name) for f in fields)}


def _holds(value: object) -> bool:
    return value is not None and value != ""


class EdrBatch:
    """The events, the columns several blocks read, and the :class:`Sheet` of ``names``. ``absent``:
    the :data:`ATTRS` no event holds a value of; ``keys``: the :data:`FIELDS` some event holds."""

    __slots__ = ("_blank", "_numbers", "absent", "codes", "events", "fields", "keys", "n", "sheet")

    def __init__(self, events: Sequence[object], names: tuple[str, ...], what: str) -> None:
        only(events, ENDPOINT_TYPES, what)
        evs: list[EndpointEvent] = events if isinstance(events, list) else list(events)  # type: ignore[arg-type]
        self.events: Sequence[EndpointEvent] = evs
        self.n = len(events)
        self.fields: list[Mapping[str, str]] = column(evs, "fields")
        held, self.keys = present(evs, ATTRS, self.fields, FIELDS)
        self.absent = _ATTRS - held
        self.codes = Codes(self.events)
        self.sheet = Sheet(names, self.n)
        self._numbers: dict[tuple[str, float], F64] = {}
        # The column every event leaves empty, and its Texts: most columns of a small batch.
        self._blank: tuple[list[str], Texts] | None = None

    def texts(self, values: list[str]) -> Texts:
        if self._blank is not None and values is self._blank[0]:
            return self._blank[1]
        return Texts(values)

    def attribute(self, attr: str) -> list[str]:
        """A text attribute of every event, ``""`` when missing."""
        if attr in self.absent:
            return self.blank()
        values = column(self.events, attr)
        return self.blank() if values.count(None) == self.n else first_texts(values)

    def field(self, name: str) -> list[str]:
        """``fields[name]`` of every event, ``""`` when missing."""
        if name in _FIELDS and name not in self.keys:
            return self.blank()
        values = first_texts(None, self.fields, name)
        return self.blank() if values.count("") == self.n else values

    def blank(self) -> list[str]:
        """``""`` for every event (one list a batch: not to be changed)."""
        if self._blank is None:
            values = [""] * self.n
            self._blank = values, Texts(values)
        return self._blank[0]

    def put_found(self, first: str, width: int, values: list[str], rows_of: Callable[[str], Row]) -> None:
        """The ``width`` columns from ``first`` on: ``rows_of`` (cached) each distinct value."""
        texts = self.texts(values)
        if not texts.blank():  # a row of "" with nothing found is zeros
            rows = list(map(rows_of, texts.distinct))
            self.sheet.put_rows(first, width, None if texts.identity else texts.inverse, rows)

    def put_paths(self, texts: Texts, first: str, width: int, rows_of: Callable[[str], PathRows],
                  hashed: str) -> list[str]:
        """A path column's flags (from ``first`` on) and hashed basename (from ``hashed`` on), once
        per distinct path (``rows_of``: scorer.features.edr.path_rows); each row's basename."""
        if texts.blank():  # no path: every flag and bucket is 0
            return self.blank()
        rows = list(map(rows_of, texts.distinct))
        inverse = None if texts.identity else texts.inverse
        self.sheet.put_rows(first, width, inverse, [flags for _, flags, _ in rows])
        self.sheet.put_rows(hashed, len(rows[0][2]), inverse, [onehot for _, _, onehot in rows])
        bases = [base for base, _, _ in rows]
        return bases if inverse is None else [bases[j] for j in inverse.tolist()]

    def put_group(self, g: Group) -> None:
        """The Python reference of a group of one attribute, field (``put_found``) or number."""
        (kind, name), = g.parts
        if kind == "n":
            self.put_numbers(g.first, g.width, name, g.default, g.row)
        else:
            self.put_found(g.first, g.width, self.attribute(name) if kind == "a" else self.field(name), g.row)

    def put_numbers(self, first: str, width: int, attr: str, default: float, row: Callable[[float], Row]) -> None:
        """:meth:`Sheet.put_rows` of ``row(v)`` for each distinct value ``v`` of :meth:`numbers`."""
        if attr in self.absent or column(self.events, attr).count(None) == self.n:  # no event has one (most batches)
            self.sheet.put_rows(first, width, zeros(self.n), [row(default)])
            return
        distinct, inverse = factorize(self.numbers(attr, default).tolist())
        self.sheet.put_rows(first, width, inverse, list(map(row, distinct)))

    def numbers(self, attr: str, default: float) -> F64:
        """:func:`scorer.features.base.numbers`, read once per batch."""
        key = (attr, default)
        out = self._numbers.get(key)
        if out is None:
            out = self._numbers[key] = numbers(self.events, attr, default)
        return out


class Group(NamedTuple):
    """A block's columns as the native pass runs them: ``row(key)`` of each event's key (made of
    ``parts`` by ``mode``, zeros for ``""``) in the ``width`` columns from ``first`` on (the parts,
    modes, ``gate``, ``require`` and ``path`` are told in scorer/native/_edr.c, ``plan``)."""

    first: str
    width: int
    row: Callable[[Any], Any]
    parts: tuple[tuple[str, str], ...]
    mode: int = FIRST
    gate: frozenset[int] | None = None
    require: int = -1
    sep: str = SEP
    default: float = -1.0
    path: tuple[str, int, str] | None = None  # the one-hot's first column and width, the basename's slot


class Plan:
    """``groups`` over a feature set's ``names``, compiled for the native pass on first use; the
    events are ``event_type``'s, or one of its types (EDR's, or SIEM alerts: groups without gates or
    event codes)."""

    __slots__ = ("_compiled", "event_type", "groups", "names")

    def __init__(self, groups: tuple[Group, ...], names: tuple[str, ...],
                 event_type: type | tuple[type, ...] = ENDPOINT_TYPES) -> None:
        self.groups, self.names, self.event_type = groups, names, event_type
        self._compiled: object = None

    def sheet(self, events: Sequence[object]) -> Sheet | None:
        """The batch's :class:`Sheet`, every group written by the native pass; None where the native
        module is off or the pass refuses the batch (the Python blocks then decide it: events of
        another type than the plan's are refused there)."""
        native = scorer.native.module("_edr")
        if native is None:
            return None
        evs = events if isinstance(events, list) else list(events)
        if self._compiled is None:
            at, slots, specs = positions(self.names), list[str](), list[Any]()
            attrs = {"event_code": 0, "fields": 1}  # a part's attribute ("c": the event code, "f": a field)
            for g in self.groups:
                parts = tuple((kind, slots.index(name) if kind == "p" else attrs.setdefault(
                    _ATTR_OF.get(kind, name), len(attrs)), name) for kind, name in g.parts)
                path = (at[g.path[0]], g.path[1], len(slots)) if g.path is not None else (0, 0, -1)
                slots += [g.path[2]] if g.path is not None else []
                specs.append((at[g.first], g.width, *path, g.mode, g.require, g.sep, g.row, g.gate, g.default, parts))
            self._compiled = native.plan(specs, tuple(attrs), len(slots), self.event_type)
        sheet = Sheet(self.names, len(evs))
        return sheet if native.run(self._compiled, evs, sheet.out) else None
