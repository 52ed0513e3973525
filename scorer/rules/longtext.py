"""Long values (PowerShell ``ContextInfo``/``ScriptBlockText``/``Payload``, classic ``Data``):
one pass of a multi-pattern scanner instead of an automaton walked from Python.

A field's atoms on a value over :data:`~scorer.rules.matchers.LONG_VALUE` characters:

* ``startswith``/``endswith``: the value's head and tail, lower-cased, looked up by length in a
  dict (exact, no scan);
* ``contains`` and ``re``: one **Hyperscan** database (pip ``hyperscan``: Intel's SIMD
  multi-pattern engine, linear time, no backtracking), literals case-insensitive, every
  pattern reported once; measured ~3x faster than an RE2 set on 5 kB PowerShell values
  (docs/rules.md). Regexes whose meaning could differ from RE2's (``$``: PCRE also matches
  before a final newline; non-ASCII patterns or text) run in RE2 (see :class:`LongMatcher`);
* without the ``hyperscan`` package (a platform with no wheel): one RE2 set of everything,
  literals as ``(?i)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import re2

try:  # optional at run time: the RE2 set below is the fallback
    import hyperscan
except (ImportError, OSError):  # pragma: no cover - where the wheel or its library is missing
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
    (lower-cased) and regexes, each given as ``pattern -> atom ids``.

    Hyperscan runs on the value's UTF-8 bytes without its UTF-8 mode (which compiles ~20x
    slower): exact for ASCII literals on any text (UTF-8 never puts an ASCII byte inside a
    multi-byte character) and for regexes on ASCII text. So a regex hit counts only for an
    ASCII value; a non-ASCII value has its regexes run by RE2 (``unicode``). Non-ASCII
    literals and regexes with an end anchor always run in RE2 (``always``).
    """

    def __init__(self, contains: dict[str, list[int]], starts: dict[str, list[int]], ends: dict[str, list[int]],
                 regexes: list[tuple[int, str]], *, use_hyperscan: bool = True) -> None:
        self.starts, self.ends = starts, ends
        self.start_lengths = sorted({len(p) for p in starts})
        self.end_lengths = sorted({len(p) for p in ends})
        self.scanner = None
        self.ids: list[list[int]] = []  # scanner pattern index -> atom ids
        self.first_regex = 0  # scanner patterns from here on are regexes
        always: list[tuple[list[int], str]] = []
        unicode: list[tuple[list[int], str]] = []
        fast: list[tuple[list[int], bytes, int]] = []
        if hyperscan is not None and use_hyperscan:
            single = hyperscan.HS_FLAG_SINGLEMATCH
            for literal, ids in contains.items():
                if literal.isascii():
                    fast.append((ids, re2.escape(literal).encode(), single | hyperscan.HS_FLAG_CASELESS))
                else:
                    always.append((ids, "(?i)" + re2.escape(literal)))
            self.first_regex = len(fast)
            for aid, regex in regexes:
                if _has_anchor_at_end(regex) or not regex.isascii():
                    always.append(([aid], regex))
                else:
                    fast.append(([aid], regex.encode(), single | hyperscan.HS_FLAG_ALLOWEMPTY))
                    unicode.append(([aid], regex))
        else:
            always = [(ids, "(?i)" + re2.escape(literal)) for literal, ids in contains.items()]
            always += [([aid], regex) for aid, regex in regexes]
        if fast:
            db = hyperscan.Database()
            db.compile(expressions=[p for _, p, _ in fast], ids=list(range(len(fast))), elements=len(fast),
                       flags=[f for _, _, f in fast])
            self.scanner = db
            self.scratch = hyperscan.Scratch(db)
            self.ids = [ids for ids, _, _ in fast]
        self.always = _Re2Set(always)
        self.unicode = _Re2Set(unicode)

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
        ascii_only = value.isascii()
        if self.scanner is not None:
            found: list[int] = []
            self.scanner.scan(value.encode("utf-8", "replace"), match_event_handler=_collect, context=found,
                              scratch=self.scratch)
            ids, first_regex = self.ids, self.first_regex
            for i in found:
                if ascii_only or i < first_regex:
                    out.extend(ids[i])
        self.always.match(value, out)
        if not ascii_only:
            self.unicode.match(value, out)


class _Re2Set:
    """An RE2 set of ``(atom ids, pattern)``; matches nothing when empty."""

    def __init__(self, patterns: list[tuple[list[int], str]]) -> None:
        self.ids = [ids for ids, _ in patterns]
        self.set = _re2_set(p for _, p in patterns) if patterns else None

    def match(self, value: str, out: list[int]) -> None:
        if self.set is not None:
            from scorer.rules.matchers import REGEX_MAX_CHARS, utf8

            hits = self.set.Match(utf8(value[:REGEX_MAX_CHARS]))
            if hits:
                for i in hits:
                    out.extend(self.ids[i])


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
