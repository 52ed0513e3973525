"""Detection Findings of every kind, ordinary and hostile, against the OCSF 1.8.0 schema:
entities in ``evidences[0]``, the host in the ``host`` profile's ``device``, and values that
do not fit their OCSF type left in ``evidences[0].data`` only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scorer.alerts.decide import Decision
from scorer.alerts.ocsf import detection_finding, encode
from scorer.events.structs import EndpointEvent, Event, FlowRecord, SiemAlert, SourceRef
from scorer.rules import RuleMeta
from tests.support import ocsf_schema

pytestmark = pytest.mark.data

DECISION = Decision(0, 0.97, "High", [("log_src_bytes", 13.8, 2.5)], by_model=True, by_rule=True)
RULE = RuleMeta(id="r1", title="Suspicious cmd", level="high", status="test", author="A. Analyst", date="2024-01-01",
                file="r1.yml", tags=("attack.execution",), tactics=("execution",), techniques=("T1059",),
                kind="detection", logsource="windows/process_creation")


def finding(event: Event, rules: tuple[RuleMeta, ...] = ()) -> dict[str, Any]:
    kind = {FlowRecord: "netflow", EndpointEvent: "edr", SiemAlert: "siem"}[type(event)]
    raw = encode(detection_finding(
        kind=kind, event=event, decision=DECISION, model_name="m", model_version="1", threshold=0.5,
        backend="onnxruntime", ref=SourceRef(f"events.{kind}", 0, 7), now_ms=1_700_000_000_000,
        rules=rules, rule_pack="sigma_test:1",
    ))
    doc: dict[str, Any] = json.loads(raw)
    assert ocsf_schema.problems(doc) == [], ocsf_schema.problems(doc)
    return doc


def test_a_flow_names_its_endpoints_and_protocol_in_the_evidence() -> None:
    f = finding(FlowRecord(uid="f1", ts=1.7e9, src_ip="10.0.0.1", src_port=5000, dst_ip="fe80::1",
                           dst_port=443, proto="tcp", label="DDoS"))
    (ev,) = f["evidences"]
    assert ev["src_endpoint"] == {"ip": "10.0.0.1", "port": 5000}
    assert ev["dst_endpoint"] == {"ip": "fe80::1", "port": 443}
    assert ev["connection_info"]["protocol_name"] == "tcp"
    assert ev["data"]["uid"] == "f1" and "label" not in ev["data"]
    assert "device" not in f and f["metadata"]["profiles"] == ["security_control"]
    assert f["metadata"]["version"] == "1.8.0"


def test_an_endpoint_event_names_its_host_and_process() -> None:
    f = finding(EndpointEvent(uid="e1", ts=1.7e9, host="WS1", event_code=1, user="CORP\\bob", process_id=4242,
                              image="C:\\Windows\\System32\\cmd.exe", command_line="cmd /c whoami",
                              parent_image="C:\\Windows\\explorer.exe"), (RULE,))
    assert f["device"] == {"hostname": "WS1", "type_id": 0, "type": "Unknown"}
    assert f["metadata"]["profiles"] == ["host", "security_control"]
    process = f["evidences"][0]["process"]
    assert process["name"] == "cmd.exe" and process["pid"] == 4242 and process["cmd_line"] == "cmd /c whoami"
    assert process["file"]["path"] == "C:\\Windows\\System32\\cmd.exe"
    assert process["parent_process"]["name"] == "explorer.exe" and process["user"] == {"name": "CORP\\bob"}
    assert f["finding_info"]["related_analytics"][0]["uid"] == "r1"
    assert f["finding_info"]["attacks"][0]["tactic"]["uid"] == "TA0002"


def test_a_siem_alert_names_its_host_and_addresses() -> None:
    f = finding(SiemAlert(uid="s1", ts=1.7e9, rule_name="ET SCAN", host="web1", src_ip="192.0.2.1",
                          dst_ip="not an address"))
    (ev,) = f["evidences"]
    assert f["device"]["hostname"] == "web1" and ev["src_endpoint"] == {"ip": "192.0.2.1"}
    assert "dst_endpoint" not in ev and ev["data"]["dst_ip"] == "not an address"
    assert "device" not in finding(SiemAlert(uid="s2", ts=1.7e9, rule_name="x"))


@pytest.mark.parametrize("event", [
    FlowRecord(uid="h1", ts=1.7e9, src_ip="1.1.1.1\n{\"injected\": true}", src_port=-1, dst_ip="01.2.3.4",
               dst_port=70_000, proto=""),
    FlowRecord(uid="h2", ts=1e300, src_ip="", dst_ip="::ffff:1.2.3.4 ", dst_port=65_535, proto="\u2028\x1b[31m"),
    EndpointEvent(uid="h3", ts=1.7e9, host="\x00", event_code=-5, process_id=1 << 40, image="\\",
                  command_line="", parent_image="/", user="\x7f"),
    EndpointEvent(uid="h4", ts=-9.3e15, host="", event_code=1, process_id=-1, command_line="x"),
    SiemAlert(uid="h5", ts=1.7e9, rule_name="\u0085", host="", src_ip="300.1.1.1", dst_ip="1.1.1.1%eth0"),
])
def test_hostile_values_keep_the_finding_valid_and_stay_exact_in_the_data(event: Event) -> None:
    f = finding(event)
    data = f["evidences"][0]["data"]
    for field in ("src_ip", "dst_ip", "command_line", "host"):
        if getattr(event, field, None):
            assert data[field] == getattr(event, field)
