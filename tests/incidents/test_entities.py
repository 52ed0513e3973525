"""What the incident stage reads of a Detection Finding, on both OCSF layouts and on the
findings the scorer's own builder writes today."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from scorer.alerts.decide import Decision
from scorer.alerts.ocsf import detection_finding
from scorer.events.structs import EndpointEvent, FlowRecord, SiemAlert, SourceRef
from scorer.incidents import LinkTable, Unattributed, digest
from scorer.rules.model import RuleMeta
from tests.incidents.findings import finding


@pytest.mark.parametrize("layout", ["1.3", "1.8"])
def test_edr_finding_gives_host_user_address_tactics_rules(layout: Any) -> None:
    f = finding("edr", 1000.5, host="WS1.corp", src_ip="10.0.0.5", user="alice", tactics=("execution",),
                rule="r-1", techniques=("t1059.001",), severity_id=4, layout=layout)
    m = digest(f, topic="alerts.edr", partition=2, offset=7)
    assert (m.kind, m.time_ms, m.severity_id) == ("edr", 1_000_500, 4)
    assert m.hosts == ("ws1.corp",)
    assert m.ips == ("10.0.0.5",)
    assert m.users == ("alice",)
    assert (m.tactics, m.techniques, m.rules) == (("TA0002",), ("T1059.001",), ("r-1",))
    assert (m.topic, m.partition, m.offset) == ("alerts.edr", 2, 7)


@pytest.mark.parametrize("layout", ["1.3", "1.8"])
def test_netflow_finding_keeps_source_first(layout: Any) -> None:
    m = digest(finding("netflow", 5, src_ip="10.0.0.9", dst_ip="10.0.0.1", layout=layout))
    assert m.ips == ("10.0.0.9", "10.0.0.1")
    assert m.hosts == ()


def test_both_layouts_digest_the_same() -> None:
    a = finding("siem", 9, host="mail", src_ip="172.17.131.81", uid="siem:1:x", layout="1.3")
    b = finding("siem", 9, host="mail", src_ip="172.17.131.81", uid="siem:1:x", layout="1.8")
    assert digest(a) == digest(b)


def test_tactic_named_but_without_uid_is_resolved_by_name() -> None:
    f = finding("edr", 1, host="h")
    f["finding_info"]["attacks"] = [{"tactic": {"name": "Credential Access"}}]
    assert digest(f).tactics == ("TA0006",)


@pytest.mark.parametrize("broken", [
    lambda f: f["evidences"].clear(),  # no entity anywhere
    lambda f: f["finding_info"].update(uid="") or f["metadata"].update(uid=""),
    lambda f: f["finding_info"].update(first_seen_time="yesterday") or f.update(time=None),
])
def test_finding_without_entity_uid_or_time_is_unattributed(broken: Any) -> None:
    f = finding("edr", 1, host="h", layout="1.8")
    broken(f)
    with pytest.raises(Unattributed):
        digest(f)


def _real(event: Any, kind: str, rules: tuple[RuleMeta, ...] = ()) -> dict[str, Any]:
    built = detection_finding(kind=kind, event=event, decision=Decision(0, 0.9, "High", [("x", 1.0, 0.5)]),
                              model_name=f"{kind}_classifier", model_version="1", threshold=0.5,
                              backend="onnxruntime", ref=SourceRef(f"events.{kind}", 0, 3), rules=rules)
    out: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(built))
    return out


def test_findings_of_the_scorers_builder() -> None:
    """Whatever layout scorer/alerts/ocsf.py writes now, the digest finds the entities."""
    rule = RuleMeta(id="rid", title="Mimikatz", level="high", status="test", author="a", date="", file="f",
                    tags=(), tactics=("credential_access",), techniques=("T1003.001",), kind="detection",
                    logsource="windows/process_creation")
    edr = digest(_real(EndpointEvent(uid="e1", ts=100.0, host="WS2", event_code=1, user="bob",
                                     image="C:\\m.exe"), "edr", (rule,)))
    assert (edr.hosts, edr.users, edr.tactics, edr.rules, edr.severity_id) == (
        ("ws2",), ("bob",), ("TA0006",), ("rid",), 4)
    assert "T1003.001" in edr.techniques
    flow = digest(_real(FlowRecord(uid="f1", ts=101.0, src_ip="10.1.1.1", dst_ip="10.1.1.2"), "netflow"))
    assert (flow.kind, flow.ips[:2], flow.time_ms) == ("netflow", ("10.1.1.1", "10.1.1.2"), 101_000)
    siem = digest(_real(SiemAlert(uid="s1", ts=102.0, rule_name="x", host="Mail", src_ip="10.1.1.1"), "siem"))
    assert (siem.hosts, siem.ips) == (("mail",), ("10.1.1.1",))


def test_links_put_a_hosts_flows_with_its_findings() -> None:
    links = LinkTable()
    edr = digest(finding("edr", 1, host="WS1", src_ip="10.0.0.5"))
    assert links.learn(edr) == [("10.0.0.5", "ws1")]
    assert links.learn(edr) == []  # nothing new to publish
    assert links.resolve(edr).key == "host:ws1"
    outbound = links.resolve(digest(finding("netflow", 2, src_ip="10.0.0.5", dst_ip="1.2.3.4")))
    inbound = links.resolve(digest(finding("netflow", 3, src_ip="6.6.6.6", dst_ip="10.0.0.5")))
    unknown = links.resolve(digest(finding("netflow", 4, src_ip="6.6.6.6", dst_ip="7.7.7.7")))
    assert (outbound.key, inbound.key, unknown.key) == ("host:ws1", "host:ws1", "ip:6.6.6.6")
    assert inbound.hosts == ("ws1",)
    assert links.resolve(digest(finding("edr", 5, user="Carol"))).key == "user:carol"


def test_links_refuse_shared_addresses_and_stay_bounded() -> None:
    links = LinkTable(max_links=3)
    assert links.learn(digest(finding("edr", 1, host="a", src_ip="127.0.0.1"))) == []
    for i in range(10):
        links.learn(digest(finding("siem", 1, host=f"h{i}", src_ip=f"10.0.0.{i}")))
    assert len(links) == 3
    assert links.get("10.0.0.9") == "h9"
    assert links.get("10.0.0.0") is None


def test_a_finding_with_thousands_of_entities_gives_a_bounded_digest() -> None:
    f = finding("edr", 1, host="h", layout="1.8")
    f["evidences"] += [{"device": {"hostname": f"h{i}"}, "src_endpoint": {"ip": f"10.{i // 250}.{i % 250}.1"},
                        "user": {"name": "x" * 10_000}} for i in range(5000)]
    f["finding_info"]["attacks"] = [{"technique": {"uid": f"T{i}"}} for i in range(5000)]
    m = digest(f)
    assert m.hosts[0] == "h"
    assert max(len(m.hosts), len(m.ips), len(m.techniques)) == 32
    assert m.users == ()  # a 10,000-character "name" is no user


@pytest.mark.parametrize(("kind", "extra", "own"), [
    ("edr", {"src_ip": "10.0.0.5", "dst_ip": "1.2.3.4"}, "10.0.0.5"),  # Sysmon 3, outbound: the source
    ("edr", {"src_ip": "6.6.6.6", "dst_ip": "10.0.0.5", "initiated": False}, "10.0.0.5"),  # inbound
    ("edr", {"src_ip": "6.6.6.6", "event_code": 4625}, ""),  # a failed logon's IpAddress: the attacker
    ("siem", {"src_ip": "10.0.0.5"}, "10.0.0.5"),  # AIT-ADS' ip column
    ("siem", {"src_ip": "6.6.6.6", "dst_ip": "10.0.0.5"}, ""),  # an IDS flow: which end is ours?
])
def test_only_the_hosts_own_address_is_linked(kind: str, extra: dict[str, Any], own: str) -> None:
    m = digest(finding(kind, 1, host="web1", **extra))
    assert m.own_ip == own
    assert LinkTable().learn(m) == ([(own, "web1")] if own else [])


def test_a_wazuh_srcip_is_the_remote_peer() -> None:
    f = finding("siem", 1, host="web1", src_ip="6.6.6.6")
    f["evidences"][0]["data"]["fields"] = {"srcip": "6.6.6.6"}
    assert digest(f).own_ip == ""
