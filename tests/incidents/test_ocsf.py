"""Incident Findings (OCSF 1.8.0 class 2005) against the compiled official schema."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scorer.incidents import (
    Activity,
    Correlator,
    IncidentState,
    LinkTable,
    Policy,
    digest,
    encode_incident,
    incident_finding,
    priority_of,
    severity_of,
)
from tests.incidents.findings import finding
from tests.support.ocsf_schema import assert_valid, problems

pytestmark = pytest.mark.data


def _incident_records() -> list[dict[str, Any]]:
    links, corr = LinkTable(), Correlator(Policy(quiet_s=600, sample=4))
    out = []
    t = 1_700_000_000.0
    for i, f in enumerate([
        finding("siem", t, host="web1", src_ip="10.0.0.5", tactics=("discovery",), severity_id=2),
        *[finding("netflow", t + i, src_ip="10.0.0.5", dst_ip=f"10.0.1.{i}") for i in range(1, 9)],
        finding("edr", t + 20, host="web1", user="www", tactics=("execution",), rule="r1", techniques=("T1059",)),
        finding("netflow", t + 30, src_ip="192.0.2.1", dst_ip="198.51.100.7", severity_id=0),
    ]):
        m = digest(f)
        links.learn(m)
        corr.add(links.resolve(m), offset=i)
        out += corr.flush()
    out += corr.close_all()
    return [incident_finding(e.activity, e.state, now_ms=1_700_000_100_000) for e in out]


def test_every_record_is_a_valid_incident_finding() -> None:
    records = _incident_records()
    assert {r["activity_id"] for r in records} == {1, 2, 3}
    assert_valid(records)


def test_the_validator_would_catch_a_broken_record() -> None:
    bad = _incident_records()[0]
    bad["type_uid"] = 200402
    del bad["finding_info_list"]
    found = problems(bad)
    assert any("type_uid" in p for p in found)
    assert any("finding_info_list" in p for p in found)


def test_incident_uid_key_sample_and_attacks() -> None:
    records = _incident_records()
    web = [r for r in records if r["unmapped"]["incident"]["key"] == "host:web1"]
    uids = {r["metadata"]["correlation_uid"] for r in web}
    assert len(uids) == 1
    assert len({r["metadata"]["uid"] for r in web}) == len(web)  # one per revision
    last = web[-1]
    assert last["activity_name"] == "Close"
    assert last["count"] == 10
    assert len(last["finding_info_list"]) == 4  # bounded sample of 10
    assert last["device"] == {"hostname": "web1", "name": "web1", "type_id": 0, "type": "Unknown"}
    assert "host" in last["metadata"]["profiles"]
    assert [a.get("tactic", a.get("technique"))["uid"] for a in last["attacks"]] == [
        "TA0007", "TA0002", "T1059"]


def test_severity_is_the_highest_raised_by_breadth() -> None:
    s = IncidentState(uid="i", key="host:a", first_ms=0, last_ms=0, severity_id=3, kinds={"edr": 1})
    assert (severity_of(s), priority_of(severity_of(s))) == (3, 2)
    s.kinds["netflow"] = 1
    assert severity_of(s) == 4
    s.tactics, s.hosts = ["TA0002", "TA0006"], ["a", "b"]
    assert (severity_of(s), priority_of(severity_of(s))) == (5, 4)  # capped at Critical
    s.severity_id = 0
    assert severity_of(s) == 0  # no severity known: none invented


def test_activity_names_follow_the_ids() -> None:
    s = IncidentState(uid="i", key="ip:10.0.0.1", first_ms=5, last_ms=9, count=2, severity_id=2, closed="quiet")
    for activity, name, status in [(Activity.CREATE, "Create", "New"), (Activity.UPDATE, "Update", "New"),
                                   (Activity.CLOSE, "Close", "Closed")]:
        r = incident_finding(activity, s)
        assert (r["activity_name"], r["status"], r["type_uid"]) == (name, status, 200500 + activity)
        assert "device" not in r  # an address key has no device
    assert problems(incident_finding(Activity.CLOSE, s)) == []


def test_no_raw_control_character_reaches_the_bytes() -> None:
    s = IncidentState(uid="i", key="host:evil\x1b[31m\u2028\x85", first_ms=1, last_ms=2, count=1,
                      hosts=["evil\x1b[31m\u2028\x85"], kinds={"edr": 1})
    raw = encode_incident(incident_finding(Activity.CREATE, s))
    assert all(bad not in raw for bad in (b"\x1b", "\u2028".encode(), "\x85".encode()))
    doc = json.loads(raw)
    assert doc["observables"][0]["value"] == "evil\x1b[31m\u2028\x85"  # the value itself is kept exact
    assert "\x1b" not in doc["message"]  # display text shows it escaped
