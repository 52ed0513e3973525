"""The batch engine agrees with a plain reference interpreter of the same IR, event by event.

The reference evaluates every rule on every event, one at a time, each atom with Python's
own string operations and one compiled RE2 per regex: slow (milliseconds per event), simple
enough to trust. Run on real OTRF events (a stride through every capture) and the Sigma
regression events, with the shipped pack.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
import re2

from scorer.bench.rules import otrf_events
from scorer.events import edr
from scorer.events.structs import EndpointEvent
from scorer.rules import RuleEngine
from scorer.rules.fields import getter
from scorer.rules.model import Atom
from tests.rules.helpers import SHIPPED
from tests.support.paths import DATA_DIR


class Reference:
    def __init__(self, engine: RuleEngine) -> None:
        self.engine = engine
        self.regex: dict[str, Any] = {}

    def atom(self, atom: Atom, ev: EndpointEvent) -> bool:
        value = getter(atom.field)(ev)
        if atom.kind == "null" or (atom.kind == "eq" and atom.pattern in ("", "-") and value is None):
            return value is None
        if value is None:
            return False
        if atom.kind == "fieldref":
            other = getter(atom.pattern)(ev)
            return other is not None and other.lower() == value.lower()
        if atom.kind == "exists":
            return True
        if atom.kind == "re":
            if atom.pattern not in self.regex:
                self.regex[atom.pattern] = re2.compile(atom.pattern)
            return self.regex[atom.pattern].search(value) is not None
        if atom.kind == "cidr":
            try:
                return ipaddress.ip_address(value) in ipaddress.ip_network(atom.pattern)
            except ValueError:
                return False
        if atom.kind in ("lt", "lte", "gt", "gte"):
            try:
                number = float(value)
            except ValueError:
                return False
            bound = float(atom.pattern)
            compared = {"lt": number < bound, "lte": number <= bound, "gt": number > bound, "gte": number >= bound}
            return compared[atom.kind]
        text = value if atom.cased else value.lower()
        return {"eq": text == atom.pattern, "contains": atom.pattern in text,
                "startswith": text.startswith(atom.pattern), "endswith": text.endswith(atom.pattern)}[atom.kind]

    def tree(self, tree: Any, ev: EndpointEvent, memo: dict[int, bool]) -> bool:
        if isinstance(tree, bool):
            return tree
        if isinstance(tree, int):
            if tree not in memo:
                memo[tree] = self.atom(self.engine.atoms[tree], ev)
            return memo[tree]
        if tree[0] == "and":
            return all(self.tree(a, ev, memo) for a in tree[1:])
        if tree[0] == "or":
            return any(self.tree(a, ev, memo) for a in tree[1:])
        return not self.tree(tree[1], ev, memo)

    def hits(self, ev: EndpointEvent) -> tuple[int, ...]:
        memo: dict[int, bool] = {}
        ls = self.engine.ls_trees
        return tuple(sorted({number for number, index, det in self.engine.variants
                             if self.tree(ls[index], ev, memo) and self.tree(det, ev, memo)}))


def _regression_events() -> list[EndpointEvent]:
    from scorer.rules.pack import read_golden

    return [edr.from_mapping(entry["event"]) for entry in read_golden(SHIPPED)]


@pytest.mark.data
def test_engine_matches_the_reference_interpreter() -> None:
    events = otrf_events(DATA_DIR / "edr" / "otrf-security-datasets", limit=1500, stride=40)
    if not events:
        pytest.skip("no OTRF captures")
    events += _regression_events()
    engine = RuleEngine.load(SHIPPED)
    result = engine.evaluate(events)
    reference = Reference(engine)
    expected = [reference.hits(ev) for ev in events]
    differ = [(i, got, want) for i, (got, want) in enumerate(zip(result.hits, expected, strict=True)) if got != want]
    assert not differ, json.dumps(differ[:5])
    assert sum(1 for h in expected if h) > 200  # the comparison covers many firing rules
