"""A pack's tuning: the rules that stay evidence and model features but alert on nothing alone.

A Sigma rule's level is its author's judgement of how bad a hit is, made without the network
it will run on. Rules of level high or critical raise an alert on their own
(``scorer.alerts.decide.RULE_ALERT_LEVELS``); on a given fleet some of them fire on ordinary
activity (a Sysmon configuration that blocks file shredding for system processes, a lab that
clears its logs before every recording). Detection engineers tune such rules rather than
delete them: the tuning file names each one with the reason and the evidence, the packaged
rule keeps its level (so the model's rule-hit features, and the finding's list of rules that
fired, do not change) and loses only the power to raise an alert by itself.

Format (YAML)::

    feature_only:
      - id: <rule uuid>
        title: <the rule's title, checked: a stale id is refused>
        reason: <why, with the numbers>

The file is checked against the compiled rules at packaging: an unknown id, a title that
does not match, a duplicate or a missing reason refuses the pack, naming the entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from scorer.rules.model import RuleMeta


@dataclass(frozen=True)
class Tuned:
    """One rule the tuning keeps from alerting alone."""

    id: str
    title: str
    reason: str


def read_tuning(path: Path) -> tuple[list[Tuned], list[str]]:
    """The entries of the tuning file at ``path`` and its format problems (``path: entry N: why``)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return [], [f"{path}: unreadable: {type(exc).__name__}: {exc}"]
    entries = data.get("feature_only") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return [], [f"{path}: expected a mapping with a 'feature_only' list"]
    tuned: list[Tuned] = []
    problems: list[str] = []
    for n, entry in enumerate(entries, 1):
        fields = _fields(entry)
        missing = [k for k in ("id", "title", "reason") if not fields.get(k)]
        if missing:
            problems.append(f"{path}: entry {n}: missing {', '.join(missing)}")
            continue
        tuned.append(Tuned(fields["id"], fields["title"], fields["reason"]))
    return tuned, problems


def _fields(entry: Any) -> dict[str, str]:
    if not isinstance(entry, dict):
        return {}
    return {k: str(v).strip() for k, v in entry.items() if isinstance(k, str) and v is not None}


def apply_tuning(rules: Sequence[RuleMeta], tuned: Sequence[Tuned], source: Path) -> tuple[list[RuleMeta], list[str]]:
    """``rules`` with ``alerts`` cleared for the tuned ones, and the entries that name no rule
    of the pack (unknown id, other title, listed twice)."""
    by_id = {r.id: r for r in rules}
    problems: list[str] = []
    seen: set[str] = set()
    for n, t in enumerate(tuned, 1):
        rule = by_id.get(t.id)
        if rule is None:
            problems.append(f"{source}: entry {n}: no rule {t.id} in the pack")
        elif rule.title != t.title:
            problems.append(f"{source}: entry {n}: rule {t.id} is titled {rule.title!r}, not {t.title!r}")
        elif t.id in seen:
            problems.append(f"{source}: entry {n}: rule {t.id} listed twice")
        seen.add(t.id)
    quiet = {t.id for t in tuned}
    return [replace(r, alerts=False) if r.id in quiet else r for r in rules], problems


def write_tuning(path: Path, tuned: Sequence[Tuned], header: str) -> None:
    """Write a tuning file (``header``: comment lines saying how it was chosen)."""
    body = yaml.safe_dump({"feature_only": [t.__dict__ for t in tuned]}, sort_keys=False, allow_unicode=True,
                          width=100)
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    path.write_text(comments + body, encoding="utf-8")
