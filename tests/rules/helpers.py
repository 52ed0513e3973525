"""Small hand-written Sigma rules compiled in a temporary folder, and events to run them on."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from scorer.events import edr
from scorer.events.structs import EndpointEvent
from scorer.rules import RuleEngine, compile_rules
from scorer.rules.model import CompileError
from tests.support.paths import ROOT

# The pack the service loads: the highest version.
SHIPPED = ROOT / "rule_repository" / "sigma_windows" / "3"
SYSMON = "Microsoft-Windows-Sysmon/Operational"
PROC = "logsource: {category: process_creation, product: windows}"


def rule(detection: str, *, logsource: str = PROC, rule_id: str = "00000000-0000-0000-0000-000000000001",
         title: str = "test rule", level: str = "high", tags: str = "[attack.execution, attack.t1059.001]") -> str:
    """A Sigma rule's YAML around ``detection`` (the lines under ``detection:``)."""
    body = textwrap.indent(textwrap.dedent(detection).strip(), "    ")
    return (f"title: {title}\nid: {rule_id}\nstatus: test\nauthor: Tester\ndate: 2024-01-01\n"
            f"tags: {tags}\n{logsource}\nlevel: {level}\ndetection:\n{body}\n")


def write_rules(root: Path, rules: dict[str, str]) -> Path:
    for name, text in rules.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "LICENSE").write_text("Detection Rule License (DRL) 1.1\n")
    return root


def engine_of(tmp_path: Path, *rules: str) -> RuleEngine:
    """An engine of ``rules`` (each must compile)."""
    engine, errors = try_engine(tmp_path, *rules)
    assert not errors, errors
    return engine


def try_engine(tmp_path: Path, *rules: str) -> tuple[RuleEngine, list[CompileError]]:
    root = write_rules(tmp_path / "src", {f"rules/windows/r{i:03d}.yml": text for i, text in enumerate(rules)})
    compiled, errors = compile_rules(root)
    return RuleEngine(compiled.rules, compiled.atoms, compiled.conditions), errors


def sysmon(event_id: int = 1, **data: Any) -> EndpointEvent:
    """A Sysmon event (OTRF flat form) with EventData ``data``."""
    return edr.from_otrf({"EventID": event_id, "Channel": SYSMON, "SourceName": "Microsoft-Windows-Sysmon",
                          "Hostname": "ws1", "UtcTime": "2024-01-01 00:00:00", **data})


def security(event_id: int, **data: Any) -> EndpointEvent:
    return edr.from_otrf({"EventID": event_id, "Channel": "Security", "Hostname": "dc1",
                          "SourceName": "Microsoft-Windows-Security-Auditing", "UtcTime": "2024-01-01 00:00:00",
                          **data})


def fired(engine: RuleEngine, *events: EndpointEvent) -> list[bool]:
    """Per event: did any rule fire?"""
    result = engine.evaluate(list(events))
    assert not result.errors, result.errors
    return [bool(h) for h in result.hits]


def golden_case(root: Path) -> Path:
    """A regression folder under ``root``: two whoami.exe events for rule ...0001."""
    case = root / "rules" / "windows" / "whoami"
    case.mkdir(parents=True)
    (case / "info.yml").write_text("rule_metadata:\n  - id: 00000000-0000-0000-0000-000000000001\n    title: W\n")
    event = {"Event": {"System": {"Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}}, "EventID": 1,
                                  "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "ws1",
                                  "TimeCreated": {"#attributes": {"SystemTime": "2024-01-01T00:00:00Z"}}},
                       "EventData": {"Image": "C:\\Windows\\System32\\whoami.exe"}}}
    (case / "e.json").write_text(json.dumps(event) + "\n" + json.dumps(event))
    return root
