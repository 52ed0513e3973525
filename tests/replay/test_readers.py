"""Capture readers on small reads of the real data, plus corrupt-record cases."""

from __future__ import annotations

import gzip
import itertools
import zipfile
from pathlib import Path

import pytest

from scorer.captures import (
    CaptureFormat,
    LabeledEvent,
    ReadError,
    detect_format,
    iter_capture,
    kind_of,
    write_canonical,
)
from scorer.events import EndpointEvent, EventKind, FlowRecord, SiemAlert
from tests.support.captures import zeek_json_from_tsv
from tests.support.paths import DATA_DIR

ZEEK = DATA_DIR / "netflow/stratosphere-zeek/008-conn.log.labeled"
CIC = DATA_DIR / "netflow/cic-ids2017-improved/Botnet_736.csv"
AIT = DATA_DIR / "siem/ait-ads/shaw_alerts.csv.gz"
OTRF = DATA_DIR / "edr/otrf-security-datasets/windows/collection/host/msf_record_mic.zip"
SIGMA_MULTI = next(
    (DATA_DIR / "edr/sigma-regression/rules/windows/registry/registry_set/"
     "registry_set_disable_system_restore").glob("*.json"),
    DATA_DIR / "missing.json",
)

needs_data = pytest.mark.data


def take(path: Path, n: int) -> list[LabeledEvent | ReadError]:
    return list(itertools.islice(iter_capture(path), n))


@needs_data
@pytest.mark.parametrize(
    ("path", "fmt", "kind"),
    [
        (ZEEK, CaptureFormat.ZEEK_TSV, EventKind.NETFLOW),
        (CIC, CaptureFormat.CICFLOWMETER_CSV, EventKind.NETFLOW),
        (AIT, CaptureFormat.AIT_CSV, EventKind.SIEM),
        (OTRF, CaptureFormat.OTRF_JSON, EventKind.EDR),
        (SIGMA_MULTI, CaptureFormat.EVENT_XML_JSON, EventKind.EDR),
    ],
)
def test_detects_real_formats(path: Path, fmt: CaptureFormat, kind: EventKind) -> None:
    assert detect_format(path) is fmt
    assert kind_of(path) is kind
    items = take(path, 50)
    assert items and all(isinstance(i, LabeledEvent) for i in items)
    assert all(i.kind is kind for i in items if isinstance(i, LabeledEvent))


@needs_data
def test_zeek_labels_and_uids() -> None:
    items = [i for i in take(ZEEK, 200) if isinstance(i, LabeledEvent)]
    first = items[0].event
    assert isinstance(first, FlowRecord)
    assert first.uid == "CHLXQF2OBY4onAR0Ug" and first.label == "Benign:Microsoft"
    assert items[0].line == 9 and items[0].capture == "008-conn"
    assert {i.malicious for i in items} >= {True, False}


@needs_data
def test_cic_keeps_label_and_source_id() -> None:
    item = take(CIC, 1)[0]
    assert isinstance(item, LabeledEvent) and isinstance(item.event, FlowRecord)
    assert item.event.label == "Botnet" and item.malicious is True and item.event.uid


@needs_data
def test_ait_gets_deterministic_uids() -> None:
    a, b = take(AIT, 3), take(AIT, 3)
    assert [i.event.uid for i in a if isinstance(i, LabeledEvent)] == [
        "shaw_alerts:2", "shaw_alerts:3", "shaw_alerts:4"]
    assert a == b
    assert isinstance(a[0], LabeledEvent) and isinstance(a[0].event, SiemAlert)
    assert a[0].malicious is False


@needs_data
def test_otrf_zip_has_capture_label() -> None:
    item = take(OTRF, 1)[0]
    assert isinstance(item, LabeledEvent) and isinstance(item.event, EndpointEvent)
    assert item.capture == "msf_record_mic" and item.capture_label == "attack:T1123"
    assert item.event.label is None and item.event.uid == "msf_record_mic:1"


@needs_data
def test_sigma_file_with_several_documents() -> None:
    items = list(iter_capture(SIGMA_MULTI))
    assert len(items) == 4 and all(isinstance(i, LabeledEvent) for i in items)
    assert all(i.malicious for i in items if isinstance(i, LabeledEvent))
    assert len({i.event.uid for i in items if isinstance(i, LabeledEvent)}) == 4


def test_corrupt_zeek_line_is_reported_and_reading_goes_on(tmp_path: Path) -> None:
    fields = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tlabel"
    good = "1655071198.4\tC1\t10.0.0.1\t5\t10.0.0.2\t80\ttcp\tBenign"
    path = tmp_path / "x-conn.log.labeled"
    path.write_text(f"#separator \\x09\n#fields\t{fields}\n{good}\nbroken line\n"
                    f"{good.replace('1655071198.4', 'abc')}\n{good.replace('C1', 'C2')}\n")
    items = list(iter_capture(path))
    assert [type(i).__name__ for i in items] == ["LabeledEvent", "ReadError", "ReadError",
                                                 "LabeledEvent"]
    err = items[1]
    assert isinstance(err, ReadError) and err.line == 4 and str(path) in str(err)
    assert isinstance(items[2], ReadError) and items[2].reason == "bad_timestamp"
    assert items[2].raw is not None and b"abc" in items[2].raw


def test_corrupt_json_lines_zip(tmp_path: Path) -> None:
    good = ('{"EventID": 1, "Hostname": "h", "UtcTime": "2020-01-01 00:00:00", '
            '"Image": "C:\\\\x.exe", "SourceName": "Microsoft-Windows-Sysmon"}')
    path = tmp_path / "cap.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cap.json", f"{good}\n{{not json\n[1]\n\n{good}\n")
        zf.writestr("__MACOSX/._cap.json", "junk")
    items = list(iter_capture(path))
    assert [type(i).__name__ for i in items] == ["LabeledEvent", "ReadError", "ReadError",
                                                 "LabeledEvent"]
    assert isinstance(items[1], ReadError) and items[1].line == 2
    assert items[1].reason == "malformed_json" and "cap.zip!cap.json" in items[1].path
    assert isinstance(items[4 - 1], LabeledEvent) and items[3].line == 5


def test_corrupt_concatenated_documents(tmp_path: Path) -> None:
    doc = ('{"Event": {"System": {"EventID": 1, "Computer": "h", "TimeCreated": '
           '{"#attributes": {"SystemTime": "2025-01-01T00:00:00Z"}}}, "EventData": {}}}')
    path = tmp_path / "ev.json"
    path.write_text(f"{doc}\n{{\"Event\": oops\n{doc}{doc}\n")
    items = list(iter_capture(path))
    assert [type(i).__name__ for i in items] == ["LabeledEvent", "ReadError", "LabeledEvent",
                                                 "LabeledEvent"]
    assert isinstance(items[1], ReadError) and items[1].line == 2


def test_corrupt_csv_row(tmp_path: Path) -> None:
    path = tmp_path / "alerts.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("time,name,ip,host,short,time_label,event_label\n"
                 "1642213952,Wazuh: x,1.2.3.4,mail,W-x,false_positive,-\n"
                 "1642213953,too,few\n"
                 "notatime,Wazuh: x,1.2.3.4,mail,W-x,false_positive,-\n"
                 "1642213954,Wazuh: y,1.2.3.4,mail,W-y,dirb,dirb\n")
    items = list(iter_capture(path))
    assert [type(i).__name__ for i in items] == ["LabeledEvent", "ReadError", "ReadError",
                                                 "LabeledEvent"]
    assert isinstance(items[1], ReadError) and items[1].line == 3
    assert isinstance(items[3], LabeledEvent) and items[3].malicious is True
    assert items[3].event.uid == "alerts:5"


@needs_data
def test_canonical_round_trip(tmp_path: Path) -> None:
    events = [i for p in (ZEEK, AIT, OTRF) for i in take(p, 5) if isinstance(i, LabeledEvent)]
    path = tmp_path / "demo.jsonl.gz"
    assert write_canonical(events, path) == 15
    assert detect_format(path) is CaptureFormat.CANONICAL and kind_of(path) is EventKind.NETFLOW
    back = list(iter_capture(path))
    assert [b.event for b in back if isinstance(b, LabeledEvent)] == [e.event for e in events]
    assert [b.capture_label for b in back if isinstance(b, LabeledEvent)] == [
        e.capture_label for e in events]


def test_canonical_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(
        '{"kind": "siem", "event": {"ts": 1, "rule_name": "r"}}\n'
        '{"kind": "nope", "event": {}}\n'
        '{"kind": "netflow", "event": {"ts": 1}}\n'
        '{"kind": "netflow", "event": {"ts": "NaN", "src_ip": "a", "dst_ip": "b"}}\n'
        'garbage\n'
        '{"kind": "netflow", "event": {"ts": 2, "src_ip": "a", "dst_ip": "b"}}\n'
    )
    items = list(iter_capture(path))
    reasons = [i.reason if isinstance(i, ReadError) else "ok" for i in items]
    assert reasons == ["ok", "unknown_kind", "unknown_schema", "non_finite", "malformed_json",
                       "ok"]
    assert isinstance(items[5], LabeledEvent) and items[5].event.uid == "c:6"


def test_unknown_format_is_an_error_not_an_exception(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x00\x01hello")
    items = list(iter_capture(path))
    assert len(items) == 1 and isinstance(items[0], ReadError)
    assert items[0].reason == "unknown_format"


ZEEK_HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\t"
    "orig_bytes\tresp_bytes\tconn_state\tlocal_orig\thistory\torig_pkts\tresp_pkts\t"
    "tunnel_parents\tlabel\tdetailedlabel\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\t"
    "string\tbool\tstring\tcount\tcount\tset[string]\tstring\tstring\n"
)


def test_zeek_json_reads_fields_and_keeps_the_label(tmp_path: Path) -> None:
    rows = [
        "1655071198.444458\tC1\t10.0.0.1\t62771\t10.0.0.2\t443\ttcp\tssl\t1.135424\t1596\t4039\t"
        "SF\tT\tShADdaFf\t14\t16\t(empty)\tBenign\tMicrosoft",
        "1655071231.749548\tC2\t193.201.9.232\t46563\t10.0.0.1\t3933\ttcp\t-\t-\t-\t-\tS0\tF\tS\t"
        "2\t0\t(empty)\tMalicious\tExternal-Attack-to-Device",
    ]
    tsv = tmp_path / "conn.log"
    tsv.write_text(ZEEK_HEADER + "\n".join(rows) + "\n")
    path = zeek_json_from_tsv(tsv, tmp_path / "conn.json")
    lines = path.read_text().splitlines()
    assert '"id.orig_p": 62771' in lines[0] and '"service"' not in lines[1], "typed, unset left out"
    path.write_text("\n".join([lines[0], '{"ts": 1655071199.0, "id.orig_h": ', lines[1],
                               lines[1].replace("1655071231.749548", '"later"')]) + "\n")
    assert detect_format(path) is CaptureFormat.ZEEK_JSON
    items = list(iter_capture(path))
    assert [type(i).__name__ for i in items] == ["LabeledEvent", "ReadError", "LabeledEvent",
                                                 "ReadError"]
    first, bad, attack, late = items
    assert isinstance(first, LabeledEvent) and isinstance(attack, LabeledEvent)
    assert isinstance(attack.event, FlowRecord)
    assert first.event == FlowRecord(
        uid="C1", ts=1655071198.444458, src_ip="10.0.0.1", src_port=62771, dst_ip="10.0.0.2",
        dst_port=443, proto="tcp", service="ssl", duration=1.135424, src_bytes=1596,
        dst_bytes=4039, src_pkts=14, dst_pkts=16, conn_state="SF", history="ShADdaFf",
        source="zeek", label="Benign:Microsoft",
    )
    assert first.malicious is False and first.capture == "conn" and first.line == 1
    assert attack.label == "Malicious:External-Attack-to-Device" and attack.malicious is True
    assert (attack.event.service, attack.event.duration, attack.line) == (None, 0.0, 3)
    # the JSON form reads as the TSV form of the same log
    assert [i.event for i in iter_capture(tsv) if isinstance(i, LabeledEvent)] == [
        first.event, attack.event]
    assert isinstance(bad, ReadError) and str(bad).startswith(f"{path}:2: malformed_json")
    assert isinstance(late, ReadError) and str(late).startswith(f"{path}:4: bad_timestamp")
