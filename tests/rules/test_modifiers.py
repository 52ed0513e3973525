"""Each Sigma value modifier on small hand rules: one event it must fire on, one it must not."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.rules.helpers import engine_of, fired, rule, sysmon

CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("plain equals, case-insensitive", "sel:\n  Image: 'C:\\Windows\\System32\\cmd.exe'\ncondition: sel",
     {"Image": "c:\\windows\\system32\\CMD.EXE"}, {"Image": "c:\\windows\\system32\\cmd.exe2"}),
    ("contains", "sel:\n  CommandLine|contains: ' -enc '\ncondition: sel",
     {"CommandLine": "powershell -ENC AAAA"}, {"CommandLine": "powershell -encodedcommand"}),
    ("startswith", "sel:\n  CommandLine|startswith: 'rundll32'\ncondition: sel",
     {"CommandLine": "RunDll32.exe x,y"}, {"CommandLine": "c:\\rundll32.exe"}),
    ("endswith", "sel:\n  Image|endswith: '\\certutil.exe'\ncondition: sel",
     {"Image": "C:\\Windows\\CertUtil.exe"}, {"Image": "C:\\certutil.exe.bak"}),
    ("list is OR", "sel:\n  Image|endswith:\n    - '\\a.exe'\n    - '\\b.exe'\ncondition: sel",
     {"Image": "C:\\b.exe"}, {"Image": "C:\\c.exe"}),
    ("contains|all", "sel:\n  CommandLine|contains|all: ['vssadmin', 'delete', 'shadows']\ncondition: sel",
     {"CommandLine": "vssadmin.exe Delete Shadows /all"}, {"CommandLine": "vssadmin list shadows"}),
    ("wildcard inside the value", "sel:\n  CommandLine: '*\\\\temp\\\\*.ps1*'\ncondition: sel",
     {"CommandLine": "x C:\\Temp\\a\\b.PS1 -y"}, {"CommandLine": "x C:\\Temp\\a\\b.ps2"}),
    ("single-character wildcard", "sel:\n  Image: 'C:\\Windows\\\\?md.exe'\ncondition: sel",
     {"Image": "C:\\Windows\\cmd.exe"}, {"Image": "C:\\Windows\\cmmd.exe"}),
    ("escaped wildcard is literal", "sel:\n  CommandLine|contains: 'a\\*b'\ncondition: sel",
     {"CommandLine": "xa*bx"}, {"CommandLine": "xaZZbx"}),
    ("re (case-sensitive)", "sel:\n  CommandLine|re: '-[Ee]nc\\s+[A-Za-z0-9+/]{8,}'\ncondition: sel",
     {"CommandLine": "powershell -enc SQBFAFgA"}, {"CommandLine": "powershell -ENC SQBFAFgA"}),
    ("re|i", "sel:\n  CommandLine|re|i: 'INVOKE-(EXPRESSION|WEBREQUEST)'\ncondition: sel",
     {"CommandLine": "iex; invoke-webrequest x"}, {"CommandLine": "invoke-command"}),
    ("re|m", "sel:\n  CommandLine|re|m: '^second$'\ncondition: sel",
     {"CommandLine": "first\nsecond\nthird"}, {"CommandLine": "first second"}),
    ("re|s", "sel:\n  CommandLine|re|s: 'begin.*end'\ncondition: sel",
     {"CommandLine": "begin\n...\nend"}, {"CommandLine": "end then begin"}),
    ("base64", "sel:\n  CommandLine|base64: 'http://'\ncondition: sel",
     {"CommandLine": base64.b64encode(b"http://").decode()}, {"CommandLine": "http://"}),
    ("base64offset|contains", "sel:\n  CommandLine|base64offset|contains: 'IEX ('\ncondition: sel",
     {"CommandLine": "x " + base64.b64encode(b"ab IEX (New-Object").decode()}, {"CommandLine": "IEX ("}),
    ("windash", "sel:\n  CommandLine|windash|contains: ' -decode '\ncondition: sel",
     {"CommandLine": "certutil /decode a b"}, {"CommandLine": "certutil -encode a b"}),
    ("wide|base64offset", "sel:\n  CommandLine|wide|base64offset|contains: 'ping'\ncondition: sel",
     {"CommandLine": "-e " + base64.b64encode("ping 1.1.1.1".encode("utf-16-le")).decode()},
     {"CommandLine": "-e " + base64.b64encode(b"ping 1.1.1.1").decode()}),
    ("cidr", "sel:\n  DestinationIp|cidr: ['10.0.0.0/8', 'fe80::/10']\ncondition: sel",
     {"DestinationIp": "10.20.30.40"}, {"DestinationIp": "11.0.0.1"}),
    ("cidr v6", "sel:\n  DestinationIp|cidr: 'fe80::/10'\ncondition: sel",
     {"DestinationIp": "fe80::1"}, {"DestinationIp": "2001:db8::1"}),
    ("gt", "sel:\n  TerminalSessionId|gt: 1\ncondition: sel", {"TerminalSessionId": "2"}, {"TerminalSessionId": "1"}),
    ("gte", "sel:\n  TerminalSessionId|gte: 1\ncondition: sel", {"TerminalSessionId": "1"}, {"TerminalSessionId": "0"}),
    ("lt", "sel:\n  TerminalSessionId|lt: 1\ncondition: sel", {"TerminalSessionId": "0"}, {"TerminalSessionId": "1"}),
    ("lte", "sel:\n  TerminalSessionId|lte: 1\ncondition: sel", {"TerminalSessionId": "1"}, {"TerminalSessionId": "x"}),
    ("exists: true", "sel:\n  Image|endswith: '.exe'\n  ParentUser|exists: true\ncondition: sel",
     {"Image": "a.exe", "ParentUser": "u"}, {"Image": "a.exe"}),
    ("exists: false", "sel:\n  Image|endswith: '.exe'\n  ParentUser|exists: false\ncondition: sel",
     {"Image": "a.exe"}, {"Image": "a.exe", "ParentUser": "u"}),
    ("cased", "sel:\n  CommandLine|cased|contains: 'MiniDump'\ncondition: sel",
     {"CommandLine": "comsvcs MiniDump 1"}, {"CommandLine": "comsvcs minidump 1"}),
    ("fieldref", "sel:\n  ParentImage|fieldref: Image\ncondition: sel",
     {"Image": "C:\\a.exe", "ParentImage": "c:\\A.exe"}, {"Image": "C:\\a.exe", "ParentImage": "C:\\b.exe"}),
    ("null", "sel:\n  Image|endswith: '.exe'\n  OriginalFileName: null\ncondition: sel",
     {"Image": "a.exe"}, {"Image": "a.exe", "OriginalFileName": "a.exe"}),
    ("empty string is absent", "sel:\n  Image|endswith: '.exe'\n  Description: ''\ncondition: sel",
     {"Image": "a.exe", "Description": ""}, {"Image": "a.exe", "Description": "d"}),
    ("number", "sel:\n  Image|endswith: '.exe'\n  TerminalSessionId: 0\ncondition: sel",
     {"Image": "a.exe", "TerminalSessionId": "0"}, {"Image": "a.exe", "TerminalSessionId": "1"}),
    ("keywords search every text value", "keywords:\n  - 'perfc.dat'\ncondition: keywords",
     {"CurrentDirectory": "C:\\Windows\\perfc.dat"}, {"CurrentDirectory": "C:\\Windows"}),
]


@pytest.mark.parametrize(("detection", "hit", "miss"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_modifier(tmp_path: Path, detection: str, hit: dict[str, Any], miss: dict[str, Any]) -> None:
    engine = engine_of(tmp_path, rule(detection))
    assert fired(engine, sysmon(**hit), sysmon(**miss)) == [True, False]


def test_atoms_are_shared_across_rules(tmp_path: Path) -> None:
    first = rule("sel:\n  Image|endswith: '\\x.exe'\ncondition: sel", rule_id="00000000-0000-0000-0000-00000000000a")
    second = rule("sel:\n  Image|endswith: '\\x.exe'\n  User: u\ncondition: sel",
                  rule_id="00000000-0000-0000-0000-00000000000b")
    engine = engine_of(tmp_path, first, second)
    assert sum(1 for a in engine.atoms if a.field == "Image") == 1
    result = engine.evaluate([sysmon(Image="C:\\x.exe", User="u"), sysmon(Image="C:\\x.exe")])
    assert result.hits == [(0, 1), (0,)]
