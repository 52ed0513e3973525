"""EDR block of feature set v3: the detection rules that fired on the event.

The rules stage (:mod:`scorer.rules`) runs right after decoding, in serving and training
alike, and leaves the ids of the rules that fired in ``EndpointEvent.rule_hits``. This block
turns them into counts the model can weigh: hits by Sigma level, by ATT&CK tactic, by kind of
content (detection, hunting, emerging threat), the highest level, and the total.

The column names do not depend on the rule pack (any pack gives the same contract); the
values do, so a model trained on one pack's hits states that pack's checksum in its card.
Rule metadata comes from the pack (``RuleStage.by_id`` or ``RuleEngine.rules``); an id
missing from it (a hit from another pack) counts in ``rule_hits`` only, and in
``RuleFeatures.unmapped``.

Computed once per distinct tuple of ids in the batch (most events fire nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import numpy as np

from scorer.events.structs import EndpointEvent
from scorer.features.base import F64, column
from scorer.features.sheet import Sheet
from scorer.features.texts import factorize
from scorer.rules.model import LEVELS

KINDS = ("detection", "hunting", "emerging")
# ATT&CK enterprise tactics, snake_case; v18 split defense evasion into stealth and
# defense impairment (SigmaHQ tags use both generations).
TACTICS = ("reconnaissance", "resource_development", "initial_access", "execution", "persistence",
           "privilege_escalation", "defense_evasion", "stealth", "defense_impairment", "credential_access",
           "discovery", "lateral_movement", "collection", "command_and_control", "exfiltration", "impact")
LEVEL_NAMES = tuple(f"rule_{lv}" for lv in LEVELS)
KIND_NAMES = tuple(f"rule_{k}" for k in KINDS)
TACTIC_NAMES = tuple(f"rule_tactic_{t}" for t in TACTICS)
NAMES: tuple[str, ...] = ("rule_hits", "rule_max_level", *LEVEL_NAMES, *KIND_NAMES, *TACTIC_NAMES,
                          "rule_tactic_other")
INDICATORS = NAMES  # a rule firing can only add suspicion


class RuleInfo(Protocol):
    """What this block reads of a rule (``scorer.rules.RuleMeta`` has these and more)."""

    @property
    def id(self) -> str: ...

    @property
    def level(self) -> str: ...

    @property
    def tactics(self) -> Sequence[str]: ...

    @property
    def kind(self) -> str: ...


RuleSource = Mapping[str, RuleInfo] | Iterable[RuleInfo]


def tactic_name(tactic: str) -> str:
    """``"Credential Access"``, ``"credential-access"``, ``"attack.credential_access"`` ->
    ``"credential_access"``."""
    t = tactic.strip().lower().removeprefix("attack.")
    return t.replace("-", "_").replace(" ", "_")


def rule_vector(rule: RuleInfo) -> F64:
    """A rule's contribution to every column but ``rule_hits`` / ``rule_max_level`` (which
    are a count and a maximum)."""
    row = np.zeros(len(NAMES))
    level = rule.level.strip().lower()
    if level in LEVELS:
        row[NAMES.index(f"rule_{level}")] = 1.0
    kind = rule.kind.strip().lower()
    if kind in KINDS:
        row[NAMES.index(f"rule_{kind}")] = 1.0
    tactics = {tactic_name(t) for t in rule.tactics}
    for t in tactics:
        row[NAMES.index(f"rule_tactic_{t}" if t in TACTICS else "rule_tactic_other")] = 1.0
    if not tactics:
        row[NAMES.index("rule_tactic_other")] = 1.0
    return row


class RuleFeatures:
    """The rule-hit columns of a batch of :class:`EndpointEvent`."""

    names = NAMES

    def __init__(self, rules: RuleSource | None = None) -> None:
        items = rules.values() if isinstance(rules, Mapping) else (rules or ())
        self.vectors: dict[str, F64] = {}
        self.levels: dict[str, float] = {}
        for r in items:
            self.vectors[r.id] = rule_vector(r)
            level = r.level.strip().lower()
            self.levels[r.id] = float(LEVELS.index(level) + 1) if level in LEVELS else 0.0
        self.unmapped = 0  # hits of ids this pack does not know, since construction

    def columns(self, evs: Sequence[EndpointEvent]) -> dict[str, F64]:
        sheet = Sheet(NAMES, len(evs))
        self.put(sheet, evs)
        return sheet.columns()

    def put(self, sheet: Sheet, evs: Sequence[EndpointEvent]) -> None:
        """The columns of :data:`NAMES`, into ``sheet`` (zeros where nothing fired)."""
        distinct, inverse = factorize(column(evs, "rule_hits"))
        if not any(distinct):  # most batches of a quiet stream: nothing fired
            return
        table = np.zeros((len(distinct), len(NAMES)))
        counts = np.bincount(inverse, minlength=len(distinct))
        for row, hits in enumerate(distinct):
            if hits:
                table[row] = self._row(hits)
                self.unmapped += int(counts[row]) * sum(h not in self.vectors for h in hits)
        sheet.put_block(NAMES[0], table[inverse])

    def _row(self, hits: tuple[str, ...]) -> F64:
        row = np.zeros(len(NAMES))
        for h in dict.fromkeys(hits):  # an id listed twice is one rule firing
            vector = self.vectors.get(h)
            if vector is not None:
                row += vector
                row[1] = max(row[1], self.levels[h])
            row[0] += 1.0
        return row
