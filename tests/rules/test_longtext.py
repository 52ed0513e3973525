"""Long values take another path (one Hyperscan scan) once a field's scanner is built; it must
agree with the short path (the automaton), which long values take until then."""

from __future__ import annotations

import random

import pytest

from scorer.rules import longtext, matchers
from scorer.rules.matchers import FieldMatcher
from scorer.rules.model import Atom

ATOMS = [
    Atom("f", "contains", "invoke-expression"), Atom("f", "contains", "downloadstring("),
    Atom("f", "contains", "привет"), Atom("f", "startswith", "hostapplication="), Atom("f", "endswith", ".ps1"),
    Atom("f", "endswith", "\r\n"), Atom("f", "eq", "x"), Atom("f", "re", r"(?i)\$env:temp\\[a-z]+\.exe"),
    Atom("f", "re", r"EngineVersion=2\.\d$"), Atom("f", "re", "(?s)begin.*end"), Atom("f", "contains", "a", True),
    Atom("f", "contains", "kill"), Atom("f", "startswith", "i\u0307"),
    *(Atom("f", "contains", f"pattern{i:03d}") for i in range(40)),
]


def _values() -> list[str]:
    rng = random.Random(7)
    # The Kelvin sign and dotted capital I lower-case to ASCII (the second to two characters):
    # heads, tails and literals are looked for in the lower-cased text on both paths.
    pieces = ["Invoke-Expression", "DownloadString(", "ПРИВЕТ", "HostApplication=", "$env:TEMP\\evil.exe", "begin",
              "end", "EngineVersion=2.0", ".PS1", "\r\n", "PATTERN017", "pattern039", "filler text ", "\n",
              "\u212aill", "\u0130", "hostappl\u0130cation="]
    out = []
    for _ in range(300):
        parts = [rng.choice(pieces) for _ in range(rng.randint(1, 12))]
        filler = "z" * rng.randint(0, 700)
        out.append(rng.choice(["", filler]) + "".join(parts) + rng.choice(["", filler]))
    # Past the regexes' bound: a regex sees the prefix only, on both paths; literals the whole.
    out += [part + "y" * matchers.REGEX_MAX_CHARS + part for part in pieces]
    out += ["y" * matchers.REGEX_MAX_CHARS + part for part in pieces]
    return out


# A field's scanner: all its literals and regexes; only its regexes when its literals are too
# many (CommandLine) or few enough for str's own search.
SCANNERS = {"all": (ATOMS, 2500), "regexes, too many literals": (ATOMS, 0),
            "regexes, few literals": ([a for a in ATOMS if a.kind == "re" or "pattern" not in a.pattern], 2500)}


@pytest.mark.parametrize("scanner", SCANNERS)
def test_long_path_agrees_with_the_automaton(monkeypatch: pytest.MonkeyPatch, scanner: str) -> None:
    atoms, max_patterns = SCANNERS[scanner]
    monkeypatch.setattr(matchers, "LONG_MAX_PATTERNS", max_patterns)
    matcher = FieldMatcher(enumerate(atoms))
    values = _values()
    expected = [sorted(set(matcher.match(v))) for v in values]  # no scanner yet: the automaton
    monkeypatch.setattr(matchers, "LONG_VALUE", 0)  # every value through the scanner once built
    assert matcher.prepare_long()
    assert (matcher.long is not None) == (scanner == "all") and (matcher.regex_scanner is None) == (scanner == "all")
    assert (matcher.substr is None) == (scanner == "regexes, few literals")
    got = [sorted(set(matcher.match(v))) for v in values]
    assert got == expected
    assert sum(1 for e in expected if e) > 200


def test_no_scanner_without_hyperscan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(longtext, "AVAILABLE", False)
    matcher = FieldMatcher(enumerate(ATOMS))
    assert not matcher.prepare_long() and matcher.long is None
    assert sorted(matcher.match("z" * 600 + "Invoke-Expression")) == [0]
