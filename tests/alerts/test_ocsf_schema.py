"""The schema validator (tests/support/ocsf_schema.py) itself: it passes a correct Detection
Finding and names each problem issue 21 found in the alerts, on both releases it reads.

The findings here are written by hand, not by scorer.alerts, so a change to the producer
cannot make the validator agree with it by construction.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.support import ocsf_schema

pytestmark = pytest.mark.data

FLOW = {"src_endpoint": {"ip": "10.0.0.5", "port": 51000}, "dst_endpoint": {"ip": "10.0.0.9", "port": 445},
        "connection_info": {"protocol_name": "tcp", "direction_id": 0}}
PROCESS = {"name": "cmd.exe", "pid": 4242, "cmd_line": "cmd /c whoami",
           "file": {"name": "cmd.exe", "path": "C:\\Windows\\System32\\cmd.exe", "type_id": 1}}


def finding(version: str = "1.8.0") -> dict[str, Any]:
    """A Detection Finding as the issue asks for: entities in evidences, profiles declared."""
    return copy.deepcopy({
        "activity_id": 1, "activity_name": "Create",
        "category_uid": 2, "category_name": "Findings",
        "class_uid": 2004, "class_name": "Detection Finding",
        "type_uid": 200401, "type_name": "Detection Finding: Create",
        "severity_id": 4, "severity": "High", "status_id": 1, "status": "New",
        "time": 1_700_000_000_000, "confidence_score": 93, "action_id": 1, "action": "Allowed",
        "metadata": {"version": version, "uid": "m:1:e1", "profiles": ["host", "security_control"],
                     "product": {"name": "scorer", "vendor_name": "scorer", "version": "0.1"},
                     "log_name": "events.edr", "original_time": "1700000000.0", "processed_time": 1_700_000_000_001},
        "finding_info": {"uid": "m:1:e1", "title": "Suspicious endpoint activity", "types": ["edr"],
                         "analytic": {"name": "m", "uid": "m:1", "type_id": 4, "type": "Learning (ML/DL)"},
                         "related_events": [{"uid": "e1", "type": "edr"}],
                         "attacks": [{"tactic": {"name": "Execution", "uid": "TA0002"}, "version": "ATT&CK"}]},
        "device": {"hostname": "ws1", "type_id": 0, "type": "Unknown"},
        "evidences": [{"data": {"uid": "e1", "anything": [1, None, {"x": "y"}]}, "process": PROCESS,
                       "device": {"hostname": "ws1", "type_id": 0}, **FLOW}],
        "unmapped": {"scorer": {"score": 0.93, "free": {"form": True}}},
    })


def test_a_correct_finding_passes_on_both_releases() -> None:
    for version in ("1.3.0", "1.8.0"):
        assert ocsf_schema.problems(finding(version)) == []
    ocsf_schema.assert_valid([finding(), json.dumps(finding("1.3.0")).encode()])


@pytest.mark.parametrize("version", ["1.3.0", "1.8.0"])
@pytest.mark.parametrize(("key", "value"), [
    ("src_endpoint", FLOW["src_endpoint"]), ("dst_endpoint", FLOW["dst_endpoint"]),
    ("connection_info", FLOW["connection_info"]), ("process", PROCESS),
])
def test_entities_at_the_top_of_a_detection_finding_fail(version: str, key: str, value: Any) -> None:
    bad = finding(version)
    bad[key] = value
    assert ocsf_schema.problems(bad) == [f"{key}: not an attribute of class detection_finding"]


@pytest.mark.parametrize("version", ["1.3.0", "1.8.0"])
def test_device_without_the_host_profile_fails(version: str) -> None:
    bad = finding(version)
    bad["metadata"]["profiles"].remove("host")
    assert ocsf_schema.problems(bad) == [
        "device: attribute of the 'host' profile, which metadata.profiles does not declare"]


def test_confidence_score_needs_security_control_in_1_8_but_not_in_1_3() -> None:
    bad = finding()
    bad["metadata"]["profiles"] = ["host"]
    for key in ("action_id", "action"):
        del bad[key]
    assert ocsf_schema.problems(bad) == [
        "confidence_score: attribute of the 'security_control' profile, which metadata.profiles does not declare"]
    assert ocsf_schema.problems(bad, "1.3.0") == []  # a plain class attribute there


def test_the_issue_s_alert_shape_fails_with_every_problem_counted() -> None:
    old = finding("1.3.0")
    old["metadata"]["profiles"] = []
    del old["evidences"][0]["process"]
    old.update(FLOW, process=PROCESS)
    with pytest.raises(AssertionError) as err:
        ocsf_schema.assert_valid([old, old])
    text = str(err.value)
    assert text.startswith("2 of 2 OCSF events are invalid")
    for key in ("src_endpoint", "dst_endpoint", "connection_info", "process"):
        assert f"2 x {key}: not an attribute of class detection_finding" in text
    assert "2 x device: attribute of the 'host' profile" in text
    with pytest.raises(AssertionError, match="2 x confidence_score: attribute of the 'security_control'"):
        ocsf_schema.assert_valid([old, old], "1.8.0")


def _broken(path: list[str | int], value: Any, *, delete: bool = False) -> dict[str, Any]:
    event = finding()
    node: Any = event
    for step in path[:-1]:
        node = node[step]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return event


@pytest.mark.parametrize(("path", "value", "delete", "problem"), [
    (["time"], None, True, "time: required by class detection_finding, missing"),
    (["metadata", "product"], None, True, "metadata.product: required by object metadata, missing"),
    (["device", "type_id"], None, True, "device.type_id: required by object device, missing"),
    (["time"], "2024-01-01", False, "time: expected timestamp_t, got str"),
    (["severity_id"], True, False, "severity_id: expected integer_t, got bool"),
    (["severity_id"], 7, False, "severity_id: 7 is not a value of its enum (0, 1, 2, 3, 4, 5, 6, 99)"),
    (["severity"], "high", False, "severity: 'high' is not the caption 'High' of severity_id 4"),
    (["type_uid"], 200402, False, "type_name: 'Detection Finding: Create' is not the caption "
     "'Detection Finding: Update' of type_uid 200402\ntype_uid: 200402 is not class_uid * 100 + activity_id (200401)"),
    (["category_uid"], 3, False,
     "category_uid: 3 is not a value of its enum (2)\ncategory_uid: 3, but detection_finding is in category 2"),
    (["finding_info", "types"], "edr", False, "finding_info.types: expected an array of string_t, got str"),
    (["finding_info", "analytic"], [], False, "finding_info.analytic: expected one analytic, got an array"),
    (["evidences", 0, "src_endpoint", "port"], 70000, False,
     "evidences[].src_endpoint.port: 70000 outside port_t's range [0, 65535]"),
    (["evidences", 0, "src_endpoint", "ip"], "10.0.0.256", False,
     "evidences[].src_endpoint.ip: '10.0.0.256' is not a valid ip_t"),
    (["evidences", 0, "src_endpoint", "ip"], None, False, "evidences[].src_endpoint.ip: expected ip_t, got null"),
    (["evidences", 0, "process", "file", "size"], "1", False,
     "evidences[].process.file.size: expected long_t, got str"),
    (["evidences", 0, "process", "user"], "bob", False, "evidences[].process.user: expected object user, got str"),
    (["evidences", 0, "unexpected"], 1, False, "evidences[].unexpected: not an attribute of object evidences"),
    (["metadata", "profiles"], ["host", "security_control", "nope"], False,
     "metadata.profiles: 'nope' is not a profile of OCSF 1.8.0"),
    (["unmapped"], [1], False, "unmapped: expected one object, got an array"),
])
def test_each_kind_of_problem_is_named(path: list[str | int], value: Any, delete: bool, problem: str) -> None:
    assert ocsf_schema.problems(_broken(path, value, delete=delete)) == problem.split("\n")


def test_unknown_release_or_class_is_a_problem_not_a_pass() -> None:
    event = finding()
    del event["metadata"]["version"]
    assert ocsf_schema.problems(event) == ["metadata.version: missing, so no schema release to check against"]
    event = finding("1.9.9")
    assert ocsf_schema.problems(event) == [
        f"metadata.version: no compiled OCSF schema for '1.9.9' in {ocsf_schema.SCHEMA_DIR}"]
    event = finding()
    event["class_uid"] = 1
    assert ocsf_schema.problems(event) == ["class_uid: 1 is not a class of OCSF 1.8.0"]


def test_checking_nothing_fails() -> None:
    with pytest.raises(AssertionError, match="no OCSF events"):
        ocsf_schema.assert_valid([])
