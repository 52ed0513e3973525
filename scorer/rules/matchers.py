"""One multi-pattern matcher per field: every atom of the field, tested in one pass per value.

* ``eq``: a dict lookup of the lower-cased value (cased: of the value itself);
* ``contains`` / ``startswith`` / ``endswith``: one Aho-Corasick automaton (pyahocorasick)
  over the lower-cased value finds every pattern occurrence at once; the position decides
  which kinds it satisfies (start at 0, end at the value's end, anywhere);
* ``re``: one RE2 set (google-re2, linear time: no catastrophic backtracking) over the
  value cut to :data:`REGEX_MAX_CHARS`;
* ``cidr``: the address masked once per prefix length present, then a dict lookup;
* ``lt``/``lte``/``gt``/``gte``: the value parsed once as a number;
* ``exists``: any present value; ``null``: absent or empty (see :meth:`FieldMatcher.missing`).

``fieldref`` compares two columns and is the engine's (:mod:`scorer.rules.engine`).
"""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Callable, Iterable

import ahocorasick
import re2

from scorer.rules import longtext
from scorer.rules.longtext import LongMatcher
from scorer.rules.model import Atom

# Longest prefix of a value a regex sees: RE2 is linear in it, this bounds the constant.
REGEX_MAX_CHARS = 16384
# Up to this many substring patterns, str's own search (``in``, memchr-fast) beats walking
# an automaton over every character of a long value (keyword search over a whole event).
FEW_PATTERNS = 8
# Values longer than this (PowerShell ScriptBlockText / ContextInfo / Payload) go through one
# Hyperscan scan of the field's literals and regexes (scorer.rules.longtext), several times
# faster on long text than the automaton, which stays for short values. The scanner is built
# by prepare_long when the pack is loaded (scorer.rules.scanners), never by match: building
# one would stall that batch 10-90 ms; until then long values take the automaton (same hits).
LONG_VALUE = 512
LONG_MAX_PATTERNS = 2500
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge}
_POS_ANY, _POS_START, _POS_END = 0, 1, 2
_POSITION = {"contains": _POS_ANY, "startswith": _POS_START, "endswith": _POS_END}


def regex_options() -> re2.Options:
    # A set's DFA cache grows on demand up to this; generous, so that no search of a bounded
    # value exhausts it (a set has no slower fallback).
    opts = re2.Options()
    opts.max_mem = 256 << 20
    return opts


class FieldMatcher:
    """Every atom on one field; :meth:`match` returns the ids of the atoms a value satisfies."""

    def __init__(self, atoms: Iterable[tuple[int, Atom]]) -> None:
        self.eq: dict[str, list[int]] = {}
        self.eq_cased: dict[str, list[int]] = {}
        self.substr: ahocorasick.Automaton | None = None
        self.substr_cased: ahocorasick.Automaton | None = None
        self.long: LongMatcher | None = None  # literals and regexes of long values
        # Or, without one, the regexes of every value: an RE2 set builds its DFA lazily, and the
        # first sight of new text cost CommandLine's 2-6 ms at 300-500 characters (24 at 600).
        self.regex_scanner: LongMatcher | None = None
        self._long_patterns: dict[str, list[tuple[int, int, int]]] = {}
        self.few: list[tuple[str, tuple[tuple[int, int, int], ...]]] = []
        self.few_cased: list[tuple[str, tuple[tuple[int, int, int], ...]]] = []
        self.regex: re2.Set | None = None
        self.regex_ids: list[int] = []
        self.cidr: dict[tuple[int, int], dict[int, list[int]]] = {}
        self.compare: list[tuple[int, Callable[[float, float], bool], float]] = []
        self.exists: list[int] = []
        self.missing: list[int] = []  # atoms a missing value satisfies (null; eq '' / '-')
        substr: dict[bool, dict[str, list[tuple[int, int, int]]]] = {False: {}, True: {}}
        regexes: list[tuple[int, str]] = []
        for aid, atom in atoms:
            kind, pattern = atom.kind, atom.pattern
            if kind == "eq":
                (self.eq_cased if atom.cased else self.eq).setdefault(pattern, []).append(aid)
                if pattern in ("", "-"):  # decoding drops empty and "-" values: absent here
                    self.missing.append(aid)
            elif kind in _POSITION:
                if not pattern:
                    self.exists.append(aid)
                else:
                    substr[atom.cased].setdefault(pattern, []).append((aid, _POSITION[kind], len(pattern)))
            elif kind == "re":
                regexes.append((aid, pattern))
            elif kind == "cidr":
                net = ipaddress.ip_network(pattern, strict=False)
                key = (net.version, net.prefixlen)
                self.cidr.setdefault(key, {}).setdefault(int(net.network_address), []).append(aid)
            elif kind in _COMPARE:
                self.compare.append((aid, _COMPARE[kind], float(pattern)))
            elif kind == "exists":
                self.exists.append(aid)
            elif kind == "null":
                self.missing.append(aid)
            else:
                raise ValueError(f"atom kind {kind!r} has no field matcher")
        if len(substr[False]) <= FEW_PATTERNS:
            self.few = [(p, tuple(e)) for p, e in substr[False].items()]
        else:
            self.substr = _automaton(substr[False])
            self._long_patterns = substr[False]
        # A scanner for tens of thousands of patterns (CommandLine) takes a second to build:
        # such a field keeps the automaton even for its (rare) long values.
        self.long_ok = len(substr[False]) + len(regexes) <= LONG_MAX_PATTERNS
        if len(substr[True]) <= FEW_PATTERNS:
            self.few_cased = [(p, tuple(e)) for p, e in substr[True].items()]
        else:
            self.substr_cased = _automaton(substr[True])
        if regexes:
            self.regex = re2.Set.SearchSet(regex_options())
            for aid, pattern in regexes:
                self.regex.Add(pattern)
                self.regex_ids.append(aid)
            self.regex.Compile()
        self._regexes = regexes

    def match(self, value: str) -> list[int]:
        """Atom ids ``value`` (a present value) satisfies."""
        out: list[int] = list(self.exists)
        long = self.long if len(value) > LONG_VALUE else None
        lower = value.lower() if self.eq or self.few or (self.substr is not None and long is None) else value
        hit = self.eq.get(lower)
        if hit:
            out.extend(hit)
        if self.eq_cased:
            hit = self.eq_cased.get(value)
            if hit:
                out.extend(hit)
        if long is not None:
            long.match(value, out)  # substrings and regexes, one scan
        elif self.substr is not None:
            _substr(self.substr, lower, out)
        elif self.few:
            _few(self.few, lower, out)
        if self.substr_cased is not None:
            _substr(self.substr_cased, value, out)
        elif self.few_cased:
            _few(self.few_cased, value, out)
        if self.regex is not None and long is None:
            if self.regex_scanner is not None:
                self.regex_scanner.match(value, out)
            else:
                found = self.regex.Match(utf8(value[:REGEX_MAX_CHARS]))
                if found:
                    ids = self.regex_ids
                    out.extend(ids[i] for i in found)
        if self.cidr:
            out.extend(self._cidr(value))
        if self.compare:
            out.extend(self._compare(value))
        return out

    def prepare_long(self) -> bool:
        """Builds the field's long-value scanner (:mod:`scorer.rules.longtext`), or its regex
        scanner, if it has one and it is not built yet; whether it built one. ~1 s of CPU for the shipped pack's fields
        without the cache of :mod:`scorer.rules.scanners`: call it where the pack is loaded."""
        if self.long is not None or self.regex_scanner is not None or not longtext.AVAILABLE:
            return False
        if self.substr is not None and self.long_ok:
            split: dict[int, dict[str, list[int]]] = {_POS_ANY: {}, _POS_START: {}, _POS_END: {}}
            for pattern, entries in self._long_patterns.items():
                for aid, position, _ in entries:
                    split[position].setdefault(pattern, []).append(aid)
            self.long = LongMatcher(split[_POS_ANY], split[_POS_START], split[_POS_END], self._regexes)
        elif self._regexes:
            self.regex_scanner = LongMatcher({}, {}, {}, self._regexes)
        else:
            return False
        return True

    def _cidr(self, value: str) -> list[int]:
        try:
            addr = ipaddress.ip_address(value.strip().split("%", 1)[0])
        except ValueError:
            return []
        as_int, width = int(addr), addr.max_prefixlen
        out: list[int] = []
        for (version, prefix), nets in self.cidr.items():
            if version == addr.version:
                hit = nets.get(as_int >> (width - prefix) << (width - prefix) if prefix else 0)
                if hit:
                    out.extend(hit)
        return out

    def _compare(self, value: str) -> list[int]:
        try:
            number = float(int(value, 0)) if value[:2].lower() == "0x" else float(value)
        except ValueError:
            return []
        return [aid for aid, op, bound in self.compare if op(number, bound)]


def utf8(value: str) -> bytes:
    """``value`` as UTF-8 for RE2, a lone surrogate (JSON allows one) replaced, never raised on."""
    try:
        return value.encode()
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace")


def _automaton(patterns: dict[str, list[tuple[int, int, int]]]) -> ahocorasick.Automaton | None:
    if not patterns:
        return None
    auto = ahocorasick.Automaton()
    for pattern, entries in patterns.items():
        auto.add_word(pattern, tuple(entries))
    auto.make_automaton()
    return auto


def _substr(auto: ahocorasick.Automaton, text: str, out: list[int]) -> None:
    last = len(text) - 1
    for end, entries in auto.iter(text):
        for aid, position, length in entries:
            if position == _POS_ANY or (position == _POS_START and end == length - 1) or (
                    position == _POS_END and end == last):
                out.append(aid)


def _few(patterns: list[tuple[str, tuple[tuple[int, int, int], ...]]], text: str, out: list[int]) -> None:
    for pattern, entries in patterns:
        if pattern in text:
            for aid, position, _ in entries:
                if position == _POS_ANY or (position == _POS_START and text.startswith(pattern)) or (
                        position == _POS_END and text.endswith(pattern)):
                    out.append(aid)
