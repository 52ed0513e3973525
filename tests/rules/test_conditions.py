"""Condition logic and logsource filtering, on small hand rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from scorer.rules.engine import RuleEngine
from tests.rules.helpers import engine_of, fired, rule, security, sysmon, try_engine

SELS = """
sel_img:
  Image|endswith: '\\a.exe'
sel_cli:
  CommandLine|contains: 'evil'
filter_main:
  User: 'SYSTEM'
"""


@pytest.mark.parametrize(("condition", "expected"), [
    ("1 of sel_*", [True, True, True, False, True]),
    ("all of sel_*", [False, False, True, False, True]),
    ("1 of them", [True, True, True, True, True]),
    ("all of them", [False, False, False, False, True]),
    ("all of sel_* and not filter_main", [False, False, True, False, False]),
    ("sel_img and not (sel_cli or filter_main)", [True, False, False, False, False]),
    ("(sel_img or sel_cli) and not 1 of filter_*", [True, True, True, False, False]),
    ("not sel_img", [False, True, False, True, False]),
])
def test_condition(tmp_path: Path, condition: str, expected: list[bool]) -> None:
    engine = engine_of(tmp_path, rule(SELS + f"condition: {condition}"))
    events = [
        sysmon(Image="C:\\a.exe", CommandLine="ok"),
        sysmon(Image="C:\\b.exe", CommandLine="an evil one"),
        sysmon(Image="C:\\a.exe", CommandLine="evil"),
        sysmon(Image="C:\\b.exe", CommandLine="ok", User="SYSTEM"),
        sysmon(Image="C:\\a.exe", CommandLine="evil", User="SYSTEM"),
    ]
    assert fired(engine, *events) == expected


def test_process_creation_covers_sysmon_1_and_security_4688(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, rule("sel:\n  Image|endswith: '\\whoami.exe'\n"
                                      "  ParentImage|endswith: '\\cmd.exe'\ncondition: sel"))
    hits = fired(engine,
                 sysmon(1, Image="C:\\whoami.exe", ParentImage="C:\\cmd.exe"),
                 security(4688, NewProcessName="C:\\whoami.exe", ParentProcessName="C:\\cmd.exe"),
                 sysmon(7, Image="C:\\whoami.exe", ParentImage="C:\\cmd.exe"),  # image load: not process creation
                 security(4689, ProcessName="C:\\whoami.exe"))
    assert hits == [True, True, False, False]


def test_service_logsource_is_a_channel(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, rule("sel:\n  EventID: 4624\n  LogonType: 10\ncondition: sel",
                                      logsource="logsource: {product: windows, service: security}"))
    assert fired(engine, security(4624, LogonType="10"), security(4624, LogonType="3"),
                 sysmon(4624, LogonType="10")) == [True, False, False]


def test_file_access_is_security_4663(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, rule("sel:\n  FileName|contains: '\\Microsoft\\Credentials\\'\n"
                                      "filter:\n  Image|startswith: 'C:\\Windows\\'\ncondition: sel and not filter",
                                      logsource="logsource: {category: file_access, product: windows}"))
    path = "C:\\Users\\a\\AppData\\Local\\Microsoft\\Credentials\\X"
    assert fired(engine, security(4663, ObjectName=path, ProcessName="C:\\Temp\\x.exe"),
                 security(4663, ObjectName=path, ProcessName="C:\\Windows\\explorer.exe"),
                 sysmon(11, TargetFilename=path, Image="C:\\Temp\\x.exe")) == [True, False, False]


def test_rules_of_absent_logsources_cost_nothing(tmp_path: Path) -> None:
    engine = engine_of(tmp_path,
                       rule("sel:\n  ImageLoaded|endswith: '.dll'\ncondition: sel",
                            logsource="logsource: {category: image_load, product: windows}"),
                       rule("sel:\n  CommandLine|contains: x\ncondition: sel",
                            rule_id="00000000-0000-0000-0000-000000000002"))
    # Only process-creation events: the image-load rule's field is never read (a value read is
    # matched once and remembered, by the C pass and the Python one alike).
    assert fired(engine, sysmon(1, CommandLine="x", ImageLoaded="a.dll")) == [True]
    assert not engine._seen["ImageLoaded"] and "x" in engine._seen["CommandLine"]


def test_unknown_logsource_is_refused(tmp_path: Path) -> None:
    _, errors = try_engine(tmp_path, rule("sel:\n  a: b\ncondition: sel",
                                          logsource="logsource: {category: file_rename, product: windows}"),
                           rule("sel:\n  a: b\ncondition: sel", logsource="logsource: {product: linux, service: auth}",
                                rule_id="00000000-0000-0000-0000-000000000002"))
    assert [e.reason for e in errors] == ["logsource windows/file_rename has no Windows channel mapping",
                                          "logsource linux/auth is not Windows"]


def test_hits_are_sorted_rule_numbers_aligned_with_events(tmp_path: Path) -> None:
    rules = [rule(f"sel:\n  CommandLine|contains: 'k{i}'\ncondition: sel",
                  rule_id=f"00000000-0000-0000-0000-00000000000{i}") for i in range(3)]
    engine = engine_of(tmp_path, *rules)
    result = engine.evaluate([sysmon(CommandLine="k2 k0"), sysmon(CommandLine="none"), sysmon(CommandLine="k1")])
    assert result.hits == [(0, 2), (), (1,)]
    assert engine.evaluate([]).hits == []


def test_a_raising_matcher_isolates_its_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine: RuleEngine = engine_of(tmp_path, rule("sel:\n  CommandLine|contains: 'x'\ncondition: sel"))
    matcher = engine.matchers["CommandLine"]
    original = matcher.match

    def bad(value: str) -> list[int]:
        if value == "boom x":
            raise RuntimeError("matcher bug")
        return original(value)

    monkeypatch.setattr(matcher, "match", bad)
    result = engine.evaluate([sysmon(CommandLine="x"), sysmon(CommandLine="boom x"), sysmon(CommandLine="y")])
    assert result.hits == [(0,), (), ()]
    assert list(result.errors) == [1]
    assert result.errors[1].rule_id == "00000000-0000-0000-0000-000000000001"
    assert "matcher bug" in result.errors[1].message


def test_a_batch_level_failure_falls_back_to_events_one_by_one(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    engine = engine_of(tmp_path, rule("sel:\n  CommandLine|contains: 'x'\ncondition: sel"))
    original = engine._evaluate

    def fragile(events):  # type: ignore[no-untyped-def]
        if any(e.command_line == "poison" for e in events):
            raise MemoryError("poison")
        return original(events)

    monkeypatch.setattr(engine, "_evaluate", fragile)
    result = engine.evaluate([sysmon(CommandLine="x"), sysmon(CommandLine="poison")])
    assert result.hits == [(0,), ()]
    assert list(result.errors) == [1]


def test_values_remembered_across_batches_give_the_same_hits(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from scorer.rules import field_pass

    engine = engine_of(tmp_path, rule("sel:\n  Image|endswith: '\\a.exe'\n  CommandLine|contains: evil\n"
                                      "condition: sel"))
    batch = [sysmon(Image="C:\\a.exe", CommandLine="evil"), sysmon(Image="C:\\a.exe", CommandLine="good")]
    first = engine.evaluate(batch).hits
    assert engine._seen["Image"]  # remembered
    assert engine.evaluate(list(reversed(batch))).hits == list(reversed(first)) == [(), (0,)]
    monkeypatch.setattr(field_pass, "CACHE_CHARS", 100)  # the budget runs out: all forgotten at once
    assert engine.evaluate([sysmon(Image=f"C:\\{i}\\a.exe", CommandLine="evil") for i in range(5)]).hits == [(0,)] * 5
    assert sum(len(v) for v in engine._seen.values()) <= 2


def test_an_event_the_engine_cannot_read_is_isolated_with_a_rule_id(tmp_path: Path) -> None:
    import msgspec

    engine = engine_of(tmp_path, rule("sel:\n  Hashes|contains: 'x'\ncondition: sel"))
    broken = msgspec.structs.replace(sysmon(Hashes="x"), fields=None)
    result = engine.evaluate([sysmon(Hashes="x"), broken])
    assert result.hits == [(0,), ()]
    assert result.errors[1].rule_id == "00000000-0000-0000-0000-000000000001"
    assert result.errors[1].message.startswith("Hashes: AttributeError")
