"""``scorer rules package``: Sigma rules -> a checksummed pack with a golden set.

The golden set is drawn from SigmaHQ's regression data (``sigma-regression``: one folder
per rule with ``info.yml``, the rule and its true-positive events, Event XML as JSON): for
every case whose rule is in the pack, its events, the rules each fired when the pack was
built (``hits``) and the rule it must fire (``must_fire``: the case's own rule, on the
events of the case that fire it; a case may hold context events that do not).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scorer.config import data_dir
from scorer.errors import ScorerError
from scorer.events import edr
from scorer.rules.engine import RuleEngine
from scorer.rules.model import CompiledRules, CompileError
from scorer.rules.pack import write_pack
from scorer.rules.risk import read_risk
from scorer.rules.tuning import Tuned, apply_tuning, read_tuning

DEFAULT_DATA = data_dir()
DEFAULT_SOURCE = DEFAULT_DATA / "edr" / "sigma-rules"
DEFAULT_GOLDEN = DEFAULT_DATA / "edr" / "sigma-regression"
DEFAULT_OUT = Path("rule_repository") / "sigma_windows" / "3"
# The shipped pack's tuning (models/edr_rule_tuning.py writes it; scorer.rules.tuning reads it).
DEFAULT_TUNING = Path("rule_repository") / "sigma_windows" / "tuning.yml"
# The shipped pack's per-host risk policy (models/edr_risk.py writes it; scorer.rules.risk reads it).
DEFAULT_RISK = Path("rule_repository") / "sigma_windows" / "risk.yml"


class PackRefused(ScorerError):
    """Rules failed to compile (and skips were not allowed), or the pack failed validation."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message + "".join(f"\n  {p}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Case:
    """One regression case: its folder, the rule id it tests, its raw events."""

    name: str
    rule_id: str
    events: list[dict[str, Any]]


def regression_cases(root: Path) -> Iterator[Case]:
    """Every case under ``root`` (folders with ``info.yml``), in path order."""
    decoder = json.JSONDecoder()
    for info in sorted(root.rglob("info.yml")):
        meta = yaml.safe_load(info.read_text(encoding="utf-8"))
        rule_id = str(meta["rule_metadata"][0]["id"])
        events: list[dict[str, Any]] = []
        for path in sorted(info.parent.glob("*.json")):
            text, pos = path.read_text(encoding="utf-8"), 0
            while True:  # a file may hold several JSON documents, one after another
                while pos < len(text) and text[pos].isspace():
                    pos += 1
                if pos >= len(text):
                    break
                doc, pos = decoder.raw_decode(text, pos)
                events.append(doc)
        yield Case(info.parent.relative_to(root).as_posix(), rule_id, events)


def golden_set(engine: RuleEngine, cases: list[Case]) -> tuple[list[dict[str, Any]], list[str]]:
    """Golden entries for the cases whose rule is in ``engine``; and the cases left out, why."""
    ids = {r.id for r in engine.rules}
    entries: list[dict[str, Any]] = []
    left_out: list[str] = []
    for case in cases:
        if case.rule_id not in ids:
            left_out.append(f"{case.name}: rule {case.rule_id} not in the pack")
            continue
        events = [edr.from_mapping(raw) for raw in case.events]
        result = engine.evaluate(events)
        fired = [sorted(engine.rules[i].id for i in hits) for hits in result.hits]
        if not any(case.rule_id in f for f in fired):
            left_out.append(f"{case.name}: rule {case.rule_id} fires on none of its {len(events)} events")
            continue
        for raw, hits in zip(case.events, fired, strict=True):
            entries.append({"case": case.name, "event": raw, "hits": hits,
                            "must_fire": [case.rule_id] if case.rule_id in hits else []})
    return entries, left_out


def package(source: Path, out: Path, *, allow_skips: bool = False, golden: Path | None = None,
            name: str = "sigma_windows", version: str | None = None,
            tuning: Path | None = None, risk: Path | None = None) -> tuple[dict[str, Any], list[CompileError]]:
    """Compile ``source`` into the pack ``out``; refused (:class:`PackRefused`) on a compile
    error unless ``allow_skips``, when the skipped rules and reasons go in the manifest.
    ``tuning`` (:mod:`scorer.rules.tuning`) names rules that alert on nothing alone; ``risk``
    is the per-host risk policy (:mod:`scorer.rules.risk`; none: the pack raises no risk alerts)."""
    from scorer.rules import compile_rules

    policy = None
    if risk is not None:  # (before the rules: it needs none of them, and compiling takes a while)
        policy, problems = read_risk(risk)
        if policy is None:
            raise PackRefused(f"risk policy {risk} refused", problems)
    compiled, errors = compile_rules(source)
    if errors and not allow_skips:
        raise PackRefused(f"{len(errors)} rule(s) do not compile; pack refused (--allow-skips records them instead)",
                          [str(e) for e in errors])
    if not compiled.rules:
        raise PackRefused("no rule compiled", [str(e) for e in errors])
    tuned: list[Tuned] = []
    if tuning is not None:
        tuned, problems = read_tuning(tuning)
        compiled.rules, unknown = apply_tuning(compiled.rules, tuned, tuning)
        if problems or unknown:
            raise PackRefused(f"tuning {tuning} refused", problems + unknown)
    license_file = source / "LICENSE"
    if not license_file.is_file():
        raise PackRefused("the rules' licence is missing", [f"{license_file}: not found"])
    commit_file = source / "SOURCE_COMMIT"
    commit = commit_file.read_text().strip() if commit_file.is_file() else ""
    entries, left_out = _golden(compiled, golden)
    manifest = write_pack(out, compiled, errors, name=name, version=version or out.name, source_commit=commit,
                          license_text=license_file.read_text(encoding="utf-8"), golden=entries,
                          tuning=[t.__dict__ for t in tuned], risk=None if policy is None else policy.to_json())
    if left_out:
        manifest["golden_left_out"] = left_out
    return manifest, errors


def _golden(compiled: CompiledRules, root: Path | None) -> tuple[list[dict[str, Any]], list[str]]:
    if root is None or not root.is_dir():
        return [], []
    engine = RuleEngine(compiled.rules, compiled.atoms, compiled.conditions)
    return golden_set(engine, list(regression_cases(root)))
