"""Suppression rules: what they mute, when, and refusing the malformed ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scorer.incidents import Correlator, InvalidRule, LinkTable, Suppressed, Suppressions, digest, load_file, parse_rule
from tests.incidents.findings import finding

NOW = 1_800_000_000.0


def _rule(**kw: Any) -> dict[str, Any]:
    return {"id": "s1", "entity": "host:web1", "reason": "pentest window", **kw}


def _member(**kw: Any) -> Any:
    m = digest(finding("edr", kw.pop("t", 1000.0), host=kw.pop("host", "WEB1"), src_ip="10.0.0.5", **kw))
    return LinkTable().resolve(m)


def test_a_matching_finding_is_suppressed_not_joined() -> None:
    corr = Correlator(suppressions=Suppressions([parse_rule(_rule(rule="r1"))]), wall_clock=lambda: NOW)
    muted = corr.add(_member(rule="r1"))
    joined = corr.add(_member(rule="r2"))
    assert isinstance(muted, Suppressed)
    assert (muted.rule_id, muted.reason) == ("s1", "pentest window")
    assert isinstance(joined, str)
    assert corr.open["host:web1"].count == 1
    assert corr.stats["suppressed"] == 1


@pytest.mark.parametrize(("rule", "member", "muted"), [
    (_rule(), {}, True),  # the entity alone
    (_rule(entity="host:other"), {}, False),
    (_rule(entity="ip:10.0.0.5"), {}, True),  # an address of the finding
    (_rule(entity="user:alice"), {"user": "Alice"}, True),
    (_rule(entity="*", model="edr_classifier"), {}, True),
    (_rule(entity="*", model="siem_classifier"), {}, False),
    (_rule(kind="netflow"), {}, False),
    (_rule(start=900.0, end=1100.0), {}, True),  # finding time inside the window
    (_rule(start=1100.0), {}, False),
    (_rule(expires=NOW - 1), {}, False),  # expired: applies to nothing
    (_rule(expires=NOW + 1), {}, True),
])
def test_what_a_rule_mutes(rule: dict[str, Any], member: dict[str, Any], muted: bool) -> None:
    assert (Suppressions([parse_rule(rule)]).match(_member(**member), NOW) is not None) is muted


@pytest.mark.parametrize(("raw", "why"), [
    ({"id": "x", "entity": "host:a"}, "reason"),
    ({"id": "x", "entity": "web1", "reason": "r"}, "entity must be"),
    ({"id": "x", "entity": "*", "reason": "r"}, "mute everything"),
    ({"id": "x", "entity": "host:a", "reason": "r", "colour": "red"}, "unknown field"),
    (b"{not json", "malformed"),
])
def test_malformed_rules_are_refused_with_the_reason(raw: Any, why: str) -> None:
    with pytest.raises(InvalidRule, match=why):
        parse_rule(raw)


def test_rules_from_a_file_and_deleted_by_tombstone(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([_rule(), _rule(id="s2", entity="HOST:Mail")]))
    rules = Suppressions(load_file(path))
    assert rules.rules["s2"].entity == "host:mail"
    rules.put("s1", None)
    assert rules.match(_member(), NOW) is None
