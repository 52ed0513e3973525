"""Long values take another path (one Hyperscan scan); it must agree with the short path."""

from __future__ import annotations

import random

import pytest

from scorer.rules import matchers
from scorer.rules.longtext import LongMatcher
from scorer.rules.matchers import FieldMatcher
from scorer.rules.model import Atom

ATOMS = [
    Atom("f", "contains", "invoke-expression"), Atom("f", "contains", "downloadstring("),
    Atom("f", "contains", "привет"), Atom("f", "startswith", "hostapplication="), Atom("f", "endswith", ".ps1"),
    Atom("f", "endswith", "\r\n"), Atom("f", "eq", "x"), Atom("f", "re", r"(?i)\$env:temp\\[a-z]+\.exe"),
    Atom("f", "re", r"EngineVersion=2\.\d$"), Atom("f", "re", "(?s)begin.*end"), Atom("f", "contains", "a", True),
    *(Atom("f", "contains", f"pattern{i:03d}") for i in range(40)),
]


def _values() -> list[str]:
    rng = random.Random(7)
    pieces = ["Invoke-Expression", "DownloadString(", "ПРИВЕТ", "HostApplication=", "$env:TEMP\\evil.exe", "begin",
              "end", "EngineVersion=2.0", ".PS1", "\r\n", "PATTERN017", "pattern039", "filler text ", "\n"]
    out = []
    for _ in range(300):
        parts = [rng.choice(pieces) for _ in range(rng.randint(1, 12))]
        filler = "z" * rng.randint(0, 700)
        out.append(rng.choice(["", filler]) + "".join(parts) + rng.choice(["", filler]))
    return out


@pytest.mark.parametrize("use_hyperscan", [True, False])
def test_long_path_agrees_with_the_automaton(monkeypatch: pytest.MonkeyPatch, use_hyperscan: bool) -> None:
    matcher = FieldMatcher(enumerate(ATOMS))
    values = _values()
    monkeypatch.setattr(matchers, "LONG_VALUE", 10**9)  # everything through the automaton
    expected = [sorted(set(matcher.match(v))) for v in values]
    monkeypatch.setattr(matchers, "LONG_VALUE", 0)  # everything through the long path
    if not use_hyperscan:
        original = LongMatcher.__init__

        def without(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            original(self, *args, **{**kwargs, "use_hyperscan": False})

        monkeypatch.setattr(LongMatcher, "__init__", without)
    got = [sorted(set(matcher.match(v))) for v in values]
    assert got == expected
    assert sum(1 for e in expected if e) > 200
