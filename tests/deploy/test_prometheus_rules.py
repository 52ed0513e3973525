"""The alert rules (deploy/prometheus/scorer-rules.yml) with promtool: they load, their unit
tests pass, every alert has a case that fires and one that must not, and the chart ships the
same file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import ROOT

RULES = ROOT / "deploy/prometheus/scorer-rules.yml"
RULE_TESTS = ROOT / "deploy/prometheus/scorer-rules.test.yml"
CHART_RULES = ROOT / "deploy/helm/scorer/files/scorer-rules.yml"


def promtool(*args: str, cwd: Path = RULES.parent) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool not installed: run deploy/local/system-deps.sh (Debian's prometheus)")
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def alerts() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def test_rules_load_and_their_unit_tests_pass() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def series_labels(series: str) -> dict[str, str]:
    _, _, body = series.partition("{")
    pairs = (p.split("=", 1) for p in body.rstrip("}").split(",") if p)
    return {k.strip(): v.strip().strip('"') for k, v in pairs}


@pytest.mark.parametrize("alert", [a["alert"] for a in alerts()])
def test_every_alert_has_a_firing_and_a_not_firing_case(alert: str) -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    mine = [(c, t) for c in cases for t in c.get("alert_rule_test", []) if t["alertname"] == alert]
    firing = [(c, t) for c, t in mine if t["exp_alerts"]]
    assert firing, f"{alert}: no test case where it fires"
    for case, check in firing:
        fired = [{k: str(v) for k, v in a["exp_labels"].items() if k != "severity"} for a in check["exp_alerts"]]
        quiet = [s["series"] for s in case["input_series"]
                 if not any(f.items() <= series_labels(s["series"]).items() for f in fired)]
        # promtool fails a case when an alert fires that exp_alerts does not list, so these
        # series are the not-firing cases, checked at the same evaluation time.
        assert quiet, f"{alert}: every input series of its firing case is expected to fire; add one that must not"


def test_removing_an_alert_fails_its_unit_test(tmp_path: Path) -> None:
    """The unit tests can fail: with any one alert gone, its firing case goes red."""
    doc = yaml.safe_load(RULES.read_text())
    for alert in alerts():
        mutant = {"groups": [{**g, "rules": [r for r in g["rules"] if r.get("alert") != alert["alert"]]}
                             for g in doc["groups"]]}
        (tmp_path / RULES.name).write_text(yaml.safe_dump(mutant))
        (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
        result = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
        assert result.returncode != 0, f"promtool test rules passed without {alert['alert']}"


def test_the_chart_ships_the_same_rules() -> None:
    assert CHART_RULES.read_bytes() == RULES.read_bytes(), (
        f"cp {RULES.relative_to(ROOT)} {CHART_RULES.relative_to(ROOT)}")
