"""Long values (PowerShell ``ContextInfo``/``ScriptBlockText``/``Payload``, classic ``Data``):
one pass of a multi-pattern scanner instead of an automaton walked from Python.

A field's atoms on a value over :data:`~scorer.rules.matchers.LONG_VALUE` characters:

* ``startswith``/``endswith``: the value's head and tail, lower-cased, looked up by length in a
  dict (exact, no scan);
* ``contains`` and ``re``: one **Hyperscan** database (pip ``hyperscan``: Intel's SIMD
  multi-pattern engine, linear time, no backtracking), literals case-insensitive, every
  pattern reported once; measured ~3x faster than an RE2 set on 5 kB PowerShell values
  (docs/rules.md). Regexes whose meaning could differ from RE2's (``$``: PCRE also matches
  before a final newline; non-ASCII text under ``(?i)``) stay in an RE2 set;
* without the ``hyperscan`` package (a platform with no wheel): one RE2 set of everything,
  literals as ``(?i)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import re2

try:  # optional at run time: the RE2 set below is the fallback
    import hyperscan
except ImportError:  # pragma: no cover - exercised where the wheel is missing
    hyperscan = None  # type: ignore[assignment]

def _re2_set(patterns: Iterable[str]) -> re2.Set:
    from scorer.rules.matchers import regex_options

    found = re2.Set.SearchSet(regex_options())
    for pattern in patterns:
        found.Add(pattern)
    found.Compile()
    return found


class LongMatcher:
    """Atoms of one field on long values: ``contains``/``startswith``/``endswith`` literals
    (lower-cased) and regexes, each given as ``pattern -> atom ids``."""

    def __init__(self, contains: dict[str, list[int]], starts: dict[str, list[int]], ends: dict[str, list[int]],
                 regexes: list[tuple[int, str]], *, use_hyperscan: bool = True) -> None:
        self.starts, self.ends = starts, ends
        self.start_lengths = sorted({len(p) for p in starts})
        self.end_lengths = sorted({len(p) for p in ends})
        self.ids: list[list[int]] = []  # scanner pattern index -> atom ids
        self.scanner = None
        self.fallback: re2.Set | None = None
        self.fallback_ids: list[list[int]] = []
        slow: list[tuple[list[int], str]] = []
        fast: list[tuple[list[int], bytes, int]] = []
        if hyperscan is not None and use_hyperscan:
            base = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_UTF8
            for literal, ids in contains.items():
                escaped = re2.escape(literal).encode()
                unicode = 0 if literal.isascii() else hyperscan.HS_FLAG_UCP
                fast.append((ids, escaped, base | hyperscan.HS_FLAG_CASELESS | unicode))
            for aid, regex in regexes:
                if _has_anchor_at_end(regex) or not regex.isascii():
                    slow.append(([aid], regex))
                else:
                    fast.append(([aid], regex.encode(), base | hyperscan.HS_FLAG_ALLOWEMPTY))
        else:
            slow = [(ids, "(?i)" + re2.escape(literal)) for literal, ids in contains.items()]
            slow += [([aid], regex) for aid, regex in regexes]
        if fast:
            db = hyperscan.Database()
            db.compile(expressions=[p for _, p, _ in fast], ids=list(range(len(fast))), elements=len(fast),
                       flags=[f for _, _, f in fast])
            self.scanner = db
            self.scratch = hyperscan.Scratch(db)
            self.ids = [ids for ids, _, _ in fast]
        if slow:
            self.fallback = _re2_set(p for _, p in slow)
            self.fallback_ids = [ids for ids, _ in slow]

    def match(self, value: str, out: list[int]) -> None:
        if self.start_lengths:
            head = value[:self.start_lengths[-1]].lower()
            for length in self.start_lengths:
                hit = self.starts.get(head[:length])
                if hit:
                    out.extend(hit)
        if self.end_lengths:
            tail = value[-self.end_lengths[-1]:].lower()
            for length in self.end_lengths:
                hit = self.ends.get(tail[-length:])
                if hit:
                    out.extend(hit)
        if self.scanner is not None:
            found: list[int] = []
            self.scanner.scan(value.encode("utf-8", "replace"), match_event_handler=_collect, context=found,
                              scratch=self.scratch)
            ids = self.ids
            for i in found:
                out.extend(ids[i])
        if self.fallback is not None:
            from scorer.rules.matchers import REGEX_MAX_CHARS, utf8

            hits = self.fallback.Match(utf8(value[:REGEX_MAX_CHARS]))
            if hits:
                for i in hits:
                    out.extend(self.fallback_ids[i])


def _has_anchor_at_end(regex: str) -> bool:
    r"""Whether ``regex`` has an unescaped ``$`` (``\$`` is a literal dollar).

    >>> _has_anchor_at_end(r"a$"), _has_anchor_at_end(r"\$env:TEMP"), _has_anchor_at_end("a" + "\\" * 2 + "$")
    (True, False, True)
    """
    for i, ch in enumerate(regex):
        if ch == "$":
            before = regex[:i]
            if (len(before) - len(before.rstrip("\\"))) % 2 == 0:
                return True
    return False


def _collect(index: int, start: int, end: int, flags: int, found: object) -> None:
    assert isinstance(found, list)
    found.append(index)
