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
* without the ``hyperscan`` package (a platform with no wheel) no scanner is built: long
  values take the automaton and RE2 set of short values.

The databases are built when the pack is loaded and cached on disk (:mod:`scorer.rules.scanners`).
"""

from __future__ import annotations

from collections.abc import Iterable

import re2

from scorer.rules.scanners import database

try:  # optional at run time: without it, long values take the short values' path
    import hyperscan
except (ImportError, OSError):  # pragma: no cover - where the wheel or its library is missing
    hyperscan = None  # type: ignore[assignment]
AVAILABLE = hyperscan is not None


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

    Hyperscan runs on UTF-8 bytes without its UTF-8 mode (which compiles ~20x slower), so
    it scans what the automaton of short values searches: the lower-cased value (for an
    ASCII value, the value itself, its literals folded by Hyperscan's ASCII caseless
    matching). Literals are byte strings (UTF-8 never puts an ASCII byte inside a multi-byte
    character), exact on any text; regexes are exact on ASCII text within RE2's
    :data:`~scorer.rules.matchers.REGEX_MAX_CHARS`, so a regex hit counts only there; other
    values have their regexes run by RE2 (``fallback``), as short values do. Regexes with an
    end anchor or non-ASCII always run in RE2 (``always``).
    """

    def __init__(self, contains: dict[str, list[int]], starts: dict[str, list[int]], ends: dict[str, list[int]],
                 regexes: list[tuple[int, str]]) -> None:
        self.starts, self.ends = starts, ends
        self.start_lengths = sorted({len(p) for p in starts})
        self.end_lengths = sorted({len(p) for p in ends})
        self.scanner = None
        self.ids: list[list[int]] = []  # scanner pattern index -> atom ids
        self.first_regex = 0  # scanner patterns from here on are regexes
        always: list[tuple[list[int], str]] = []
        fallback: list[tuple[list[int], str]] = []
        fast: list[tuple[list[int], bytes, int]] = []
        single = hyperscan.HS_FLAG_SINGLEMATCH
        for literal, ids in contains.items():
            fast.append((ids, _byte_literal(literal), single | hyperscan.HS_FLAG_CASELESS))
        self.first_regex = len(fast)
        for aid, regex in regexes:
            if _has_anchor_at_end(regex) or not regex.isascii():
                always.append(([aid], regex))
            else:
                fast.append(([aid], regex.encode(), single | hyperscan.HS_FLAG_ALLOWEMPTY))
                fallback.append(([aid], regex))
        if fast:
            self.scanner = database([p for _, p, _ in fast], [f for _, _, f in fast])
            self.scratch = hyperscan.Scratch(self.scanner)
            self.ids = [ids for ids, _, _ in fast]
        self.always = _Re2Set(always)
        self.fallback = _Re2Set(fallback)

    def match(self, value: str, out: list[int]) -> None:
        from scorer.rules.matchers import REGEX_MAX_CHARS

        ascii_only = value.isascii()
        regexes_here = ascii_only and len(value) <= REGEX_MAX_CHARS
        # Lower-casing may change a non-ASCII value's length: heads, tails and literals are
        # then looked for in the lower-cased whole, as the automaton does.
        literals = self.first_regex or self.start_lengths or self.end_lengths
        lower = None if ascii_only or not literals else value.lower()
        if self.start_lengths:
            longest = self.start_lengths[-1]
            head = value[:longest].lower() if lower is None else lower[:longest]
            for length in self.start_lengths:
                hit = self.starts.get(head[:length])
                if hit:
                    out.extend(hit)
        if self.end_lengths:
            longest = self.end_lengths[-1]
            tail = value[-longest:].lower() if lower is None else lower[-longest:]
            for length in self.end_lengths:
                hit = self.ends.get(tail[-length:])
                if hit:
                    out.extend(hit)
        if self.scanner is not None and (regexes_here or self.first_regex):
            found: list[int] = []
            text = value if lower is None else lower
            self.scanner.scan(text.encode("utf-8", "replace"), match_event_handler=_collect, context=found,
                              scratch=self.scratch)
            ids, first_regex = self.ids, self.first_regex
            for i in found:
                if regexes_here or i < first_regex:
                    out.extend(ids[i])
        self.always.match(value, out)
        if not regexes_here:
            self.fallback.match(value, out)


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


def _byte_literal(literal: str) -> bytes:
    """``literal``'s UTF-8 bytes as a Hyperscan pattern (every byte escaped: nothing special)."""
    return b"\\x" + literal.encode("utf-8", "replace").hex(":").encode().replace(b":", b"\\x")


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
