"""pySigma's parsed conditions (after the processing pipelines) lowered to the rule IR.

pySigma has already applied the modifiers: ``contains``/``startswith``/``endswith`` are
wildcards on a :class:`SigmaString`, ``base64``/``base64offset``/``windash``/``wide``
expansions are :class:`SigmaExpansion` (OR) or plain strings, ``all`` is an AND, ``re`` a
:class:`SigmaRegularExpression`, ``cidr`` a :class:`SigmaCIDRExpression`,
``gt``/``gte``/``lt``/``lte`` a :class:`SigmaCompareExpression`, ``exists`` a
:class:`SigmaExists`, ``cased`` a :class:`SigmaCasedString`, ``fieldref`` a
:class:`SigmaFieldReference`, ``null`` a :class:`SigmaNull`. Here each becomes atoms
(``Atom`` leaves) in an and/or/not tree; anything else raises :class:`Unsupported`.

Sigma strings match case-insensitively (patterns are lower-cased) unless ``cased``;
regular expressions are case-sensitive unless ``|i``, and are searched (not anchored). A
string with a wildcard inside becomes an anchored RE2 regex. A field-less keyword searches
every text value of the event (field ``*``, substring or regex search).
"""

from __future__ import annotations

from typing import Any

import re2
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from scorer.rules.fields import KEYWORDS
from scorer.rules.matchers import regex_options
from scorer.rules.model import Atom

MAX_PATTERN_CHARS = 4096
_FLAGS = {SigmaRegularExpressionFlag.IGNORECASE: "i", SigmaRegularExpressionFlag.MULTILINE: "m",
          SigmaRegularExpressionFlag.DOTALL: "s"}


class Unsupported(Exception):
    """The rule uses something the engine does not evaluate (the reason says what)."""


def lower(node: Any) -> Any:
    """A parsed pySigma condition as a tree with :class:`Atom` leaves."""
    if isinstance(node, ConditionAND | ConditionOR):
        op = "and" if isinstance(node, ConditionAND) else "or"
        args: list[Any] = [op]
        for arg in node.args:
            sub = lower(arg)
            args.extend(sub[1:] if isinstance(sub, list) and sub[0] == op else [sub])
        return args
    if isinstance(node, ConditionNOT):
        return ["not", lower(node.args[0])]
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return value(node.field, node.value)
    if isinstance(node, ConditionValueExpression):
        return value(None, node.value)
    raise Unsupported(f"condition element {type(node).__name__}")


def value(field: str | None, v: Any) -> Any:
    """The test ``field`` = ``v`` (``field`` None: a keyword) as a tree."""
    key = KEYWORDS if field is None else field
    if isinstance(v, SigmaExpansion):
        return ["or", *(value(field, x) for x in v.values)]
    if isinstance(v, SigmaString):
        return _string(key, v, isinstance(v, SigmaCasedString), keyword=field is None)
    if isinstance(v, SigmaRegularExpression):
        flags = "".join(sorted(_FLAGS[f] for f in v.flags))
        pattern = str(v.regexp)
        return Atom(key, "re", _checked_regex(f"(?{flags}){pattern}" if flags else pattern), "i" not in flags)
    if isinstance(v, SigmaBool):
        return Atom(key, "contains" if field is None else "eq", "true" if v.boolean else "false")
    if isinstance(v, SigmaNumber):
        return Atom(key, "contains" if field is None else "eq", str(v.number))
    if field is None:
        raise Unsupported(f"keyword of type {type(v).__name__}")
    if isinstance(v, SigmaNull):
        return Atom(key, "null", "")
    if isinstance(v, SigmaExists):
        atom = Atom(key, "exists", "")
        return atom if v.exists else ["not", atom]
    if isinstance(v, SigmaCIDRExpression):
        return Atom(key, "cidr", str(v.network))
    if isinstance(v, SigmaCompareExpression):
        return Atom(key, v.op.name.lower(), str(v.number.number))
    if isinstance(v, SigmaFieldReference):
        if v.starts_with or v.ends_with:
            raise Unsupported("fieldref with startswith/endswith")
        return Atom(key, "fieldref", v.field)
    raise Unsupported(f"value type {type(v).__name__} ({field})")


def _string(key: str, s: SigmaString, cased: bool, *, keyword: bool) -> Any:
    parts: list[Any] = list(s.s)
    if any(isinstance(p, Placeholder) for p in parts):
        raise Unsupported(f"placeholder (expand modifier) in {key}")
    lead = bool(parts) and parts[0] is SpecialChars.WILDCARD_MULTI
    trail = len(parts) > int(lead) and parts[-1] is SpecialChars.WILDCARD_MULTI
    inner = parts[int(lead):len(parts) - int(trail)]
    norm = str if cased else str.lower
    if all(isinstance(p, str) for p in inner):
        literal = norm("".join(inner))
        if len(literal) > MAX_PATTERN_CHARS:
            raise Unsupported(f"value of {len(literal)} chars in {key}")
        if not literal:
            return Atom(key, "exists", "") if (lead or trail) else Atom(key, "eq", "", cased)
        if keyword or (lead and trail):
            return Atom(key, "contains", literal, cased)
        if lead:
            return Atom(key, "endswith", literal, cased)
        if trail:
            return Atom(key, "startswith", literal, cased)
        return Atom(key, "eq", literal, cased)
    # A wildcard inside the value: an anchored regex (unanchored for keywords).
    body = "".join(re2.escape(p) if isinstance(p, str) else (".*" if p is SpecialChars.WILDCARD_MULTI else ".")
                   for p in inner)
    head = "" if lead or keyword else "^"
    tail = "" if trail or keyword else "$"
    flags = "(?s)" if cased else "(?is)"
    return Atom(key, "re", _checked_regex(f"{flags}{head}{body}{tail}"), cased)


def _checked_regex(pattern: str) -> str:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise Unsupported(f"regex of {len(pattern)} chars")
    try:
        re2.compile(pattern, regex_options())
    except re2.error as exc:
        raise Unsupported(f"regex {pattern!r} is not RE2 syntax: {exc}") from None
    return pattern
