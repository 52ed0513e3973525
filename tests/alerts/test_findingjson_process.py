"""An endpoint event's evidence (its process, file, parent and user) written by
scorer.native._findings is, byte for byte, the reference's (scorer.alerts.evidence's structs,
encoded by msgspec): every combination of set, empty and hostile values, and values of types
no decoder makes, which the reference path writes."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest

from scorer.alerts.decide import Decision
from scorer.alerts.findingjson import finding_writer
from scorer.alerts.ocsf import detection_finding, encode
from scorer.events.structs import EndpointEvent, EventKind
from scorer.native import findings
from scorer.pipeline.source import input_record
from tests.support.native import use_native

needs_c = pytest.mark.skipif(not findings.built(), reason="scorer.native._findings is not built")

IMAGES = [None, "", "cmd.exe", "C:\\Windows\\System32\\cmd.exe", "/usr/bin/x", "a/b\\c\u00ae\"\x01.exe", "\\", "dir/",
          "C:\\\u2028\x7f\U0001f600.exe"]
COMMANDS = [None, "", "x \"y\" \\z\u2028\x1b[31m"]
PARENTS = [None, "", "C:\\p.exe", "\U0001f600/q\t"]
USERS = [None, "", "NT AUTHORITY\\SYSTEM", "\u0085\"u\""]
PIDS = [None, 0, 1, (1 << 31) - 1, 1 << 31, -1, 1 << 70]
DECISION = Decision(0, 0.75, "High", [("f", 1.0, 0.5)])


def _record(event: Any) -> Any:
    return input_record(EventKind.EDR, msgspec.json.encode(event), None, "events.edr", 0, 7)


def _reference(event: Any) -> bytes:
    return encode(detection_finding(
        kind="edr", event=event, decision=DECISION, model_name="m", model_version="1", threshold=0.5,
        backend="onnxruntime", ref=_record(event).ref, now_ms=1_700_000_000_000, rules=(), rule_pack="",
    ))


def _written(event: Any) -> bytes:
    writer = finding_writer(EventKind.EDR, "m", "1", 0.5, "onnxruntime")
    ((value, _),) = writer.write([(event, _record(event))], [DECISION], None, "", now_ms=1_700_000_000_000)
    return value


@needs_c
def test_every_combination_of_process_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    use_native(monkeypatch, "1")
    with_process = 0
    for image, command, parent, user, pid in itertools.product(IMAGES, COMMANDS, PARENTS, USERS, PIDS):
        event = EndpointEvent(uid="u", ts=1.7e9, host="h", event_code=1, image=image, command_line=command,
                              parent_image=parent, user=user, process_id=pid)
        value = _written(event)
        assert value == _reference(event), (image, command, parent, user, pid)
        with_process += b'"process":' in value
    assert with_process > 1000  # most combinations name a process


@needs_c
@pytest.mark.parametrize("change", [{"process_id": True}, {"image": b"cmd.exe"}, {"user": 5}, {"command_line": 1.5}])
def test_values_no_decoder_makes_are_the_reference_s(change: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    use_native(monkeypatch, "1")
    fields: dict[str, Any] = {"image": "C:\\a.exe", "command_line": "a", "user": "u", "process_id": 4, **change}
    event = EndpointEvent(uid="u", ts=1.7e9, host="h", event_code=1, **fields)
    try:
        value = _written(event)
    except (TypeError, AttributeError, msgspec.EncodeError) as exc:  # the reference cannot write it either
        with pytest.raises(type(exc)):
            _reference(event)
        return
    assert value == _reference(event)
