"""What the EDR adapter leaves for rules: aliases, UserData, field names, value bounds."""

from __future__ import annotations

from pathlib import Path

from scorer.events import edr
from scorer.rules.fields import column, getter
from tests.rules.helpers import engine_of, fired, rule, security, sysmon


def test_only_the_chosen_alias_is_consumed() -> None:
    ev = security(4663, ObjectName="C:\\secret.txt", FileName="x.txt", ProcessName="C:\\a.exe")
    assert ev.target_filename == "C:\\secret.txt" and ev.image == "C:\\a.exe"
    assert "ObjectName" not in ev.fields and ev.fields["FileName"] == "x.txt"
    assert getter("FileName")(ev) == "x.txt" and getter("TargetFilename")(ev) == "C:\\secret.txt"


def test_target_and_subject_users_both_stay() -> None:
    ev = security(4624, TargetUserName="alice", SubjectUserName="DC1$", LogonType="3")
    assert ev.user == "alice"
    assert ev.fields["TargetUserName"] == "alice" and ev.fields["SubjectUserName"] == "DC1$"
    assert getter("SubjectUserName")(ev) == "DC1$" and getter("LogonType")(ev) == "3"
    only_subject = security(4688, SubjectUserName="bob", NewProcessName="C:\\x.exe")
    assert getter("TargetUserName")(only_subject) is None  # not bob: another account


def test_userdata_events_decode() -> None:
    created = {"#attributes": {"SystemTime": "2024-01-01T00:00:00Z"}}
    raw = {"Event": {"System": {"EventID": 5858, "Channel": "Microsoft-Windows-WMI-Activity/Operational",
                                "Computer": "h", "TimeCreated": created},
                     "UserData": {"Operation_ClientFailure": {"#attributes": {"xmlns": "x"}, "Operation": "op",
                                                              "ResultCode": "0x80041003"}}}}
    ev = edr.from_mapping(raw)
    assert ev.fields == {"Operation": "op", "ResultCode": "0x80041003"}


def test_field_names_lose_spaces_and_long_values_are_kept() -> None:
    ev = sysmon(1119, **{"Threat Name": "EICAR", "ScriptBlockText": "x" * 5000})
    assert ev.fields["ThreatName"] == "EICAR"
    assert len(ev.fields["ScriptBlockText"]) == 5000


def test_columns_read_canonical_and_leftover_fields() -> None:
    events = [sysmon(1, Image="C:\\a.exe", Signed="true", TerminalSessionId="1"), sysmon(3, DestinationPort="443")]
    assert column(events, "EventID", [0, 1]) == ["1", "3"]
    assert column(events, "Image", [0, 1]) == ["C:\\a.exe", None]
    assert column(events, "Signed", [0]) == ["true"]
    assert column(events, "DestinationPort", [1]) == ["443"]
    assert column(events, "TerminalSessionId", [0, 1]) == ["1", None]
    assert column(events, "Channel", [0]) == ["Microsoft-Windows-Sysmon/Operational"]
    assert "C:\\a.exe" in (column(events, "*", [0])[0] or "")


def test_classic_powershell_payload_is_data() -> None:
    flat = edr.from_otrf({"EventID": 400, "Channel": "Windows PowerShell", "Hostname": "h", "UtcTime": "2024-01-01",
                          "Message": "Engine state is changed\r\n\tHostApplication=powershell -v 2 -c x"})
    assert "HostApplication=powershell -v 2" in flat.fields["Data"]
    sysmon_message = edr.from_otrf({"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Hostname": "h",
                                    "UtcTime": "2024-01-01", "Message": "Process Create"})
    assert "Data" not in sysmon_message.fields
    created = {"#attributes": {"SystemTime": "2024-01-01T00:00:00Z"}}
    xml = edr.from_mapping({"Event": {"System": {"EventID": 400, "Channel": "Windows PowerShell", "Computer": "h",
                                                 "TimeCreated": created},
                                      "EventData": {"Data": ["Available", "None", "HostApplication=powershell"]}}})
    assert xml.fields["Data"] == "Available\nNone\nHostApplication=powershell"


def test_downgrade_rule_fires_on_a_classic_event(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, rule("sel:\n  Data|contains: 'EngineVersion=2.'\ncondition: sel",
                                      logsource="logsource: {category: ps_classic_start, product: windows}"))
    event = edr.from_otrf({"EventID": 400, "Channel": "Windows PowerShell", "Hostname": "h", "UtcTime": "2024-01-01",
                           "Message": "Engine state is changed.\r\n\tNewEngineState=Available\r\n\tEngineVersion=2.0"})
    assert fired(engine, event) == [True]
