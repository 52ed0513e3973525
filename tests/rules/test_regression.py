"""SigmaHQ's regression events: each case's events through the engine must fire the case's rule.

``../shared/data/edr/sigma-regression`` holds, per rule, the rule (``rule.yml``), ``info.yml``
and its true-positive events (Event XML as JSON; a file may hold several events). Every
``rule.yml`` is compiled (pySigma, the same pipelines as a pack) into one engine; every event
is decoded by the service's EDR adapter (``scorer.events.edr.from_mapping``) and evaluated
in one batch. A case passes when its rule fires on one of its events; an event passes when
its case's rule fires on it. A case with several events carries context events (the same
process tree before and after) on which the rule is not meant to fire: those are listed,
with the case, and counted against the event share.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scorer.events import edr
from scorer.rules import RuleEngine, compile_rules
from scorer.rules.build import regression_cases
from tests.support.paths import DATA_DIR

REGRESSION = DATA_DIR / "edr" / "sigma-regression"
RULES = DATA_DIR / "edr" / "sigma-rules"
# What this engine achieves (docs/rules.md): every case with events fires its rule; the
# events that do not are context events of multi-event cases.
MIN_CASE_SHARE = 1.0
MIN_EVENT_SHARE = 224 / 238


def _rule_id(path: Path) -> str:
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("id:"):
            return line[3:].strip()
    return ""


@pytest.mark.data
def test_every_regression_event_fires_its_own_rule(tmp_path: Path) -> None:
    if not REGRESSION.is_dir():
        pytest.skip(f"no regression data at {REGRESSION}")
    cases = list(regression_cases(REGRESSION))
    # The rule beside the events; two cases have none (the rule was renamed since): the rule
    # with the same id in sigma-rules.
    by_id = {_rule_id(p): p for p in RULES.rglob("*.yml")} if RULES.is_dir() else {}
    why_not: dict[str, str] = {}
    for case in cases:
        source = REGRESSION / case.name / "rule.yml"
        if not source.is_file():
            source = by_id.get(case.rule_id, source)
        if source.is_file():
            (tmp_path / case.name).mkdir(parents=True)
            (tmp_path / case.name / "rule.yml").write_bytes(source.read_bytes())
        else:
            why_not[case.name] = "no rule.yml, and no rule of that id in sigma-rules"
    compiled, errors = compile_rules(tmp_path)
    why_not.update({Path(e.file).parent.as_posix(): e.reason for e in errors})
    engine = RuleEngine(compiled.rules, compiled.atoms, compiled.conditions)
    events, owners = [], []
    for index, case in enumerate(cases):
        for raw in case.events:
            events.append(edr.from_mapping(raw))
            owners.append(index)
    result = engine.evaluate(events)
    assert not result.errors
    fired_ids = [{engine.rules[i].id for i in hits} for hits in result.hits]
    case_hit = [False] * len(cases)
    event_hits = 0
    misses: list[str] = []
    for owner, ids in zip(owners, fired_ids, strict=True):
        if cases[owner].rule_id in ids:
            case_hit[owner] = True
            event_hits += 1
    for owner, ids in zip(owners, fired_ids, strict=True):
        case = cases[owner]
        if case.rule_id not in ids:
            reason = why_not.get(case.name) or (
                "context event: the case's rule fires on another of its events" if case_hit[owner]
                else "the rule does not fire")
            misses.append(f"event of {case.name}: {reason}")
    for case, hit in zip(cases, case_hit, strict=True):
        if not case.events:
            misses.append(f"case {case.name}: no event ({why_not.get(case.name, 'rule compiles')})")
        elif not hit:
            misses.append(f"case {case.name}: {why_not.get(case.name, 'the rule fires on none of its events')}")
    with_events = [hit for case, hit in zip(cases, case_hit, strict=True) if case.events]
    case_share = sum(with_events) / len(with_events)
    event_share = event_hits / len(events)
    print(f"\nsigma regression: cases {sum(with_events)}/{len(with_events)} ({case_share:.1%}), "
          f"events {event_hits}/{len(events)} ({event_share:.1%}); misses:")
    for miss in misses:
        print(f"  {miss}")
    assert case_share >= MIN_CASE_SHARE
    assert event_share >= MIN_EVENT_SHARE - 1e-9
