"""Every bad input becomes a DecodeFailure with a reason; good input a canonical event."""

from __future__ import annotations

import json

import pytest

from scorer.events import Event, EventDecoder, EventKind, FlowRecord, SiemAlert, SourceRef
from scorer.events.decode import DecodeFailure

REF = SourceRef("events.netflow", 2, 41, 1700000000000)
FLOW = {"ts": 1655071198.4, "src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "dst_port": 443, "proto": "TCP"}


def decode(kind: EventKind | None, value: bytes | None, limit: int = 4096) -> Event | DecodeFailure:
    return EventDecoder(limit).decode(kind, value, REF, b"k")


def test_canonical_flow_gets_uid_from_kafka_coordinates() -> None:
    event = decode(EventKind.NETFLOW, json.dumps(FLOW).encode())
    assert isinstance(event, FlowRecord)
    assert event.uid == "events.netflow:2:41"
    assert event.proto == "tcp"


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        (EventKind.NETFLOW, b'{"ts": 1, "src_ip": ', "malformed_json"),
        (EventKind.NETFLOW, b"\xff\xfe\x00garbage", "malformed_json"),
        (EventKind.NETFLOW, b"[1, 2, 3]", "wrong_type"),
        (EventKind.NETFLOW, json.dumps({**FLOW, "src_bytes": "lots"}).encode(), "wrong_type"),
        (EventKind.NETFLOW, json.dumps({**FLOW, "duration": "NaN"}).encode(), "non_finite"),
        (EventKind.NETFLOW, json.dumps({**FLOW, "duration": "Infinity"}).encode(), "non_finite"),
        (EventKind.NETFLOW, json.dumps({"ts": 1, "src_ip": "1.2.3.4"}).encode(), "missing_field"),
        (EventKind.NETFLOW, json.dumps({"hello": "world"}).encode(), "unknown_schema"),
        (EventKind.NETFLOW, b"{" + b'"a":' * 0 + b'"x": "' + b"y" * 5000 + b'"}', "oversized_record"),
        (EventKind.EDR, json.dumps({"EventID": 1, "Hostname": "h"}).encode(), "missing_field"),
        (EventKind.EDR, json.dumps({"Event": {"System": "nope"}}).encode(), "missing_field"),
        (EventKind.SIEM, json.dumps({"time": "yesterday", "name": "x", "short": "W"}).encode(), "bad_timestamp"),
        (None, json.dumps(FLOW).encode(), "unknown_kind"),
        (EventKind.SIEM, None, "empty_record"),
    ],
)
def test_bad_input_is_a_failure_with_reason(kind: EventKind | None, value: bytes | None, reason: str) -> None:
    out = decode(kind, value)
    assert isinstance(out, DecodeFailure), out
    assert out.reason == reason, out.message
    assert out.value == value and out.ref == REF and out.key == b"k"


def test_deeply_nested_json_is_refused_not_crashing() -> None:
    value = b"[" * 100_000 + b"]" * 100_000
    out = decode(EventKind.SIEM, value, limit=1 << 20)
    assert isinstance(out, DecodeFailure)
    assert out.reason in {"malformed_json", "wrong_type"}


def test_event_xml_and_otrf_forms_give_the_same_event() -> None:
    otrf = {
        "Hostname": "WS1", "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
        "SourceName": "Microsoft-Windows-Sysmon", "UtcTime": "2020-06-10 02:50:54.631",
        "Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "cmd /c whoami",
        "ParentImage": "C:\\Windows\\explorer.exe", "ProcessId": "6196", "User": "CORP\\bob",
    }
    xml = {"Event": {
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}}, "EventID": 1,
            "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS1",
            "TimeCreated": {"#attributes": {"SystemTime": "2020-06-10T02:50:54.631Z"}},
        },
        "EventData": {k: v for k, v in otrf.items() if k not in {"Hostname", "EventID", "Channel", "SourceName"}},
    }}
    a = decode(EventKind.EDR, json.dumps(otrf).encode())
    b = decode(EventKind.EDR, json.dumps(xml).encode())
    assert not isinstance(a, DecodeFailure) and not isinstance(b, DecodeFailure)
    for field in ("host", "event_code", "image", "command_line", "parent_image", "process_id", "user", "ts"):
        assert getattr(a, field) == getattr(b, field), field


def test_siem_forms() -> None:
    wazuh = {"timestamp": "2022-01-15T02:32:32.000+0000",
             "rule": {"level": 5, "description": "sshd: fail", "id": "5710"},
             "agent": {"name": "mail", "ip": "10.1.1.1"}, "data": {"srcip": "6.6.6.6"}}
    suricata = {"timestamp": "2022-01-15T02:32:32.000000+0000", "event_type": "alert", "src_ip": "1.1.1.1",
                "dest_ip": "2.2.2.2", "alert": {"signature": "ET SCAN", "signature_id": 1, "severity": 2}}
    w = decode(EventKind.SIEM, json.dumps(wazuh).encode())
    s = decode(EventKind.SIEM, json.dumps(suricata).encode())
    assert isinstance(w, SiemAlert) and w.source_system == "wazuh" and w.severity == 5
    assert isinstance(s, SiemAlert) and s.source_system == "suricata" and s.dst_ip == "2.2.2.2"


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (EventKind.EDR, b'{"ts": 1, "host": "h", "event_code": 1, "logon_type": 1' + b"0" * 400 + b"}"),
        (EventKind.EDR, b'{"ts": 1, "host": "h", "event_code": 100000000000000000000000}'),
        (EventKind.EDR, b'{"ts": 1, "host": "h", "event_code": 1, "dst_port": -9223372036854775809}'),
        (EventKind.SIEM, b'{"ts": 1, "rule_name": "r", "severity": 1' + b"0" * 30 + b"}"),
    ],
)
def test_absurd_integers_in_canonical_records_are_dead_lettered(kind: EventKind, value: bytes) -> None:
    # msgspec decodes ints of any size; a 400-digit logon_type once reached the features and
    # crashed the batch (int too large to convert to float).
    failure = decode(kind, value, limit=8192)
    assert isinstance(failure, DecodeFailure) and failure.reason == "out_of_range", failure


def test_a_sentinel_security_event_export_decodes() -> None:
    """Microsoft Sentinel's SecurityEvent rows (OTRF's GoldenSAML capture): TimeGenerated is
    the event time, EventSourceName the provider."""
    from scorer.events import edr

    row = {"TimeGenerated": "2021-08-02T13:09:20.04Z", "Computer": "ADFS01.simulandlabs.com", "EventID": 412,
           "EventSourceName": "AD FS Auditing", "Channel": "Security", "Type": "SecurityEvent"}
    event = edr.from_mapping(row)
    assert (event.host, event.event_code, event.provider, event.channel) == (
        "ADFS01.simulandlabs.com", 412, "AD FS Auditing", "Security")
    assert event.ts == 1627909760.04 and "TimeGenerated" not in event.fields
