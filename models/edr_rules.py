"""The rules stage in training: the shipped Sigma pack's hits on every EDR training event.

Training runs the same stage as serving (``scorer.rules.annotate``: the pack's engine over
each capture's events, in micro-batches) before features, so the rule-hit columns of
feature set v3 are what the service computes. What differs, deliberately:

- **A Sigma regression event does not see its own rule.** Every SigmaHQ regression event
  fires the rule it was recorded for, by construction; left in, the rule columns would
  separate the Sigma positives trivially and teach the model "a rule fired" instead of
  anything about the event. Each Sigma event's own rule, and the rules its ``rule.yml``
  lists as ``related`` (derived, similar, obsoleted variants of the same detection), are
  removed from its hits: the event stands for a technique no rule of the pack covers, and
  the model has to score it from the event itself (and from *other*, independent rules
  that fire on it, which is real coverage). OTRF events keep every hit.
- **An event a rule raises on** is dead-lettered by the service, never scored; training
  leaves it out the same way (counted in :attr:`TrainingRules.failed`).

The pack's checksum goes into the model card; what the features read of the pack (its IR and
each rule's id, level, kind and tactics: ``scorer.lifecycle.rulepacks.identity``) goes into the
dataset cache key, so a pack that changes only its tuning or its risk policy reuses the matrices.
The pack's per-host risk policy (``pack.json``'s ``risk``) is what the evaluation and the shipped
threshold count (models/edr_eval.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import msgspec
import yaml

from scorer.alerts.decide import RULE_ALERT_LEVELS
from scorer.captures import LabeledEvent
from scorer.events.structs import EndpointEvent
from scorer.inference.repository import list_versions
from scorer.lifecycle.rulepacks import identity, pack_checksum  # the checksum cards and scorers compare
from scorer.rules.risk import RiskPolicy

from .datasets import REPO_ROOT

log = logging.getLogger(__name__)

CHUNK = 4096  # events per rules-stage call, as a micro-batch


def pack_dir() -> Path:
    """The shipped rule pack, its highest version as the service loads it (``$SCORER_RULE_PACK`` overrides)."""
    if "SCORER_RULE_PACK" in os.environ:
        return Path(os.environ["SCORER_RULE_PACK"])
    repository = REPO_ROOT / "rule_repository"
    return repository / "sigma_windows" / list_versions(repository, "sigma_windows")[-1]


@cache
def own_rules(rule_dir: Path) -> frozenset[str]:
    """The rule a Sigma regression folder was recorded for, and the rules it names as related."""
    ids: set[str] = set()
    for name in ("rule.yml", "info.yml"):
        path = rule_dir / name
        if not path.is_file():
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace")) or {}
        if name == "rule.yml":
            ids.add(str(data.get("id", "")))
            ids.update(str(r.get("id", "")) for r in data.get("related") or [] if isinstance(r, dict))
        else:
            ids.update(str(m.get("id", "")) for m in data.get("rule_metadata") or [] if isinstance(m, dict))
    return frozenset(ids - {""})


@dataclass
class TrainingRules:
    """A loaded pack and what training does with it (see the module docstring)."""

    engine: Any  # scorer.rules.RuleEngine
    path: Path
    checksum: str
    features: str = ""  # scorer.lifecycle.rulepacks.identity(path).features
    risk: RiskPolicy | None = None  # the pack's per-host risk policy (None: the pack has none)
    failed: int = 0
    own_removed: int = 0

    @classmethod
    def load(cls, path: Path | None = None) -> TrainingRules:
        from scorer.rules import RuleEngine
        from scorer.rules.pack import read_pack

        path = path or pack_dir()
        pack = read_pack(path)
        return cls(RuleEngine(pack.rules, pack.atoms, pack.conditions), path, pack_checksum(path),
                   identity(path).features, pack.risk)

    def describe(self) -> str:
        """The pack as the model card names it: path (relative to the repository) and checksum."""
        where = self.path.relative_to(REPO_ROOT) if self.path.is_relative_to(REPO_ROOT) else self.path
        return f"{where.as_posix()} ({len(self.engine.rules)} rules, sha256 {self.checksum})"

    @cached_property
    def meta(self) -> Mapping[str, Any]:
        """Rule id -> RuleMeta, what feature set v3's rule block reads."""
        return {r.id: r for r in self.engine.rules}

    @cached_property
    def alerting(self) -> frozenset[str]:
        """The rules that raise an alert on their own: high or critical, and not tuned away."""
        return frozenset(r.id for r in self.engine.rules if r.level in RULE_ALERT_LEVELS and r.alerts)

    @property
    def salt(self) -> str:
        """The dataset cache key's part for what the rows read of this pack, and this leakage rule."""
        return f"rules-features:{self.features}:own-rule-removed:hits"

    def __call__(self, path: Path, items: list[LabeledEvent]) -> list[LabeledEvent]:
        """``items`` with ``rule_hits`` set (events a rule raised on left out)."""
        from scorer.rules.annotate import annotate

        own = own_rules(path.parent) if "sigma-regression" in path.parts else frozenset()
        out: list[LabeledEvent] = []
        for start in range(0, len(items), CHUNK):
            chunk = items[start:start + CHUNK]
            events = [i.event for i in chunk if isinstance(i.event, EndpointEvent)]
            if len(events) != len(chunk):
                raise TypeError(f"{path}: the rules stage takes EDR events only")
            annotated, errors = annotate(self.engine, events)
            self.failed += len(errors)
            for k, (item, event) in enumerate(zip(chunk, annotated, strict=True)):
                if k in errors:
                    continue
                hits = event.rule_hits
                if own and any(h in own for h in hits):
                    self.own_removed += 1
                    hits = tuple(h for h in hits if h not in own)
                out.append(msgspec.structs.replace(item, event=msgspec.structs.replace(event, rule_hits=hits)))
        return out
