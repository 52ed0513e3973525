"""Packs: package, load, validate, list; malformed packs refused with the file and reason."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from pathlib import Path

import pytest

from scorer.errors import IntegrityError
from scorer.rules import RuleEngine
from scorer.rules.__main__ import main
from scorer.rules.pack import IR, SUMS
from tests.rules.helpers import SHIPPED, golden_case, rule, sysmon, write_rules
from tests.support.paths import ROOT

GOOD = rule("sel:\n  Image|endswith: '\\whoami.exe'\ncondition: sel", title="Whoami")
OTHER = rule("sel:\n  CommandLine|contains: 'vssadmin delete'\ncondition: sel", level="critical",
             rule_id="00000000-0000-0000-0000-000000000002", tags="[attack.impact, attack.t1490]")


def _package(tmp_path: Path, rules: dict[str, str], *extra: str) -> tuple[int, Path]:
    src = write_rules(tmp_path / "src", rules)
    golden = golden_case(tmp_path / "golden")
    out = tmp_path / "pack" / "1"
    return main(["package", "--source", str(src), "--out", str(out), "--golden", str(golden), *extra]), out


def test_package_load_validate_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _package(tmp_path, {"rules/windows/a.yml": GOOD, "rules-threat-hunting/windows/b.yml": OTHER})
    assert code == 0
    manifest = json.loads((out / "pack.json").read_text())
    assert manifest["licence"] == "DRL-1.1" and "author" in manifest["attribution"]
    assert manifest["by_level"] == {"critical": 1, "high": 1} and manifest["by_kind"] == {"detection": 1, "hunting": 1}
    assert manifest["golden_events"] == 2 and manifest["skipped"] == []
    assert {r["author"] for r in manifest["rules"]} == {"Tester"}
    assert "Detection Rule License (DRL) 1.1" in (out / "LICENSE").read_text()
    engine = RuleEngine.load(out)
    meta = engine.rules[1]
    assert (meta.kind, meta.tactics, meta.techniques, meta.logsource) == (
        "hunting", ("impact",), ("T1490",), "windows/process_creation")
    assert engine.evaluate([sysmon(CommandLine="VSSADMIN DELETE shadows")]).hits == [(1,)]
    assert main(["validate", str(out), "--against", "none"]) == 0
    capsys.readouterr()
    assert main(["list", str(out)]) == 0
    listing = capsys.readouterr().out
    assert "00000000-0000-0000-0000-000000000002  critical" in listing and "[impact]" in listing


def test_repackaging_gives_the_same_bytes(tmp_path: Path) -> None:
    _, out = _package(tmp_path, {"rules/windows/a.yml": GOOD})
    first = (out / SUMS).read_text()
    _, out2 = _package(tmp_path / "again", {"rules/windows/a.yml": GOOD})
    assert (out2 / SUMS).read_text() == first


@pytest.mark.parametrize(("text", "reason"), [
    ("title: x\nid: [unclosed\n", "unreadable rule"),
    (rule("sel:\n  Image|nosuchmodifier: x\ncondition: sel"), "nosuchmodifier"),
    (rule("sel:\n  Image|expand: '%folder%'\ncondition: sel"), "placeholder"),
    (rule("sel:\n  Image: x\ncondition: missing_identifier"), "missing_identifier"),
])
def test_a_rule_that_does_not_compile_refuses_the_pack(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       text: str, reason: str) -> None:
    code, out = _package(tmp_path, {"rules/windows/good.yml": GOOD, "rules/windows/bad.yml": text})
    assert code == 1 and not out.exists()
    err = capsys.readouterr().err
    assert "rules/windows/bad.yml:" in err and reason in err


def test_allow_skips_records_them(tmp_path: Path) -> None:
    bad = rule("sel:\n  Image|nosuchmodifier: x\ncondition: sel", rule_id="00000000-0000-0000-0000-0000000000bb")
    code, out = _package(tmp_path, {"rules/windows/good.yml": GOOD, "rules/windows/bad.yml": bad}, "--allow-skips")
    assert code == 0
    skipped = json.loads((out / "pack.json").read_text())["skipped"]
    assert [(s["file"], s["rule_id"]) for s in skipped] == [("rules/windows/bad.yml",
                                                             "00000000-0000-0000-0000-0000000000bb")]
    assert "nosuchmodifier" in skipped[0]["reason"]
    assert main(["validate", str(out), "--against", "none"]) == 0


def test_tampered_file_is_refused_by_load_and_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out = _package(tmp_path, {"rules/windows/a.yml": GOOD})
    ir = out / IR
    ir.write_bytes(ir.read_bytes() + b"x")
    with pytest.raises(IntegrityError, match=r"ir\.json\.gz: sha256 differs"):
        RuleEngine.load(out)
    assert main(["validate", str(out)]) == 1
    assert "ir.json.gz: sha256 differs" in capsys.readouterr().err


def _rewrite(out: Path, name: str, data: bytes) -> None:
    """Replace a pack file and re-sign SHA256SUMS: only deeper checks can catch it."""
    (out / name).write_bytes(data)
    lines = [f"{hashlib.sha256((out / n).read_bytes()).hexdigest()}  {n}"
             for n in (line.split("  ", 1)[1] for line in (out / SUMS).read_text().splitlines())]
    (out / SUMS).write_text("\n".join(lines) + "\n")


def test_ir_that_differs_from_its_sources_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out = _package(tmp_path, {"rules/windows/a.yml": GOOD})
    ir = json.loads(gzip.decompress((out / IR).read_bytes()))
    ir["atoms"] = [[f, k, "\\calc.exe" if p == "\\whoami.exe" else p, c] for f, k, p, c in ir["atoms"]]
    _rewrite(out, IR, gzip.compress(json.dumps(ir).encode()))
    assert main(["validate", str(out)]) == 1
    err = capsys.readouterr().err
    assert "ir.json.gz: differs from the IR its sources compile to" in err
    assert "golden rules/windows/whoami: rule 00000000-0000-0000-0000-000000000001 did not fire" in err


def test_packed_source_that_no_longer_compiles_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out = _package(tmp_path, {"rules/windows/a.yml": GOOD})
    broken = GOOD.replace("endswith", "nosuchmodifier")
    digest = hashlib.sha256(broken.encode()).hexdigest()
    line = json.dumps({"file": "rules/windows/a.yml", "sha256": digest, "yaml": broken}) + "\n"
    _rewrite(out, "sources.jsonl.gz", gzip.compress(line.encode()))
    assert main(["validate", str(out)]) == 1
    err = capsys.readouterr().err
    assert "rules/windows/a.yml: source sha256 differs from the manifest" in err
    assert "rules/windows/a.yml: does not compile:" in err and "nosuchmodifier" in err


def test_shipped_pack_loads_fast_without_pysigma() -> None:
    import subprocess
    import sys

    code = ("import sys, time; t = time.perf_counter(); from pathlib import Path; from scorer.rules import RuleEngine;"
            f"e = RuleEngine.load(Path({str(SHIPPED)!r})); print(len(e.rules), time.perf_counter() - t,"
            "any(m.startswith('sigma') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    rules, seconds, pysigma = out.split()
    assert int(rules) > 2500 and pysigma == "False"
    print(f"shipped pack: {rules} rules loaded in {float(seconds):.2f} s")


def test_shipped_pack_validates(capsys: pytest.CaptureFixture[str]) -> None:
    t = time.perf_counter()
    assert main(["validate", str(SHIPPED), "--against", "none"]) == 0, capsys.readouterr().err
    print(f"validated in {time.perf_counter() - t:.1f} s")
