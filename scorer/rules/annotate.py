"""The rules stage: every EDR event of a micro-batch through the deployed rule pack, once.

It runs right after decoding and before features, in serving and in training alike, and
leaves its result on the event (``EndpointEvent.rule_hits``, rule ids): the EDR features
count the hits, the decision raises an alert for a high or critical rule, and the finding
names every rule that fired. An event a rule raised on is not scored: the caller
dead-letters it with the rule's id (``rule_error``), the rest of the batch goes on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import compress
from pathlib import Path

import msgspec

import scorer.native
from scorer.errors import ModelError
from scorer.events.structs import EndpointEvent
from scorer.features.rules import RuleFeatures
from scorer.inference.repository import list_versions
from scorer.rules import RuleEngine, RuleFailure, RuleMeta
from scorer.rules.model import LEVELS
from scorer.rules.pack import read_pack
from scorer.rules.risk import RiskPolicy
from scorer.rules.scanners import prepare

_ORDERED_MAX = 1 << 14  # combinations of hits remembered (then forgotten at once)


def annotate(
    engine: RuleEngine, events: Sequence[EndpointEvent]
) -> tuple[list[EndpointEvent], dict[int, RuleFailure]]:
    """``events`` with ``rule_hits`` set from ``engine`` (all of them, aligned), and the
    events (by index) a rule raised on."""
    out, _, _, errors = annotate_rows(engine, events)
    return out, errors


def annotate_rows(
    engine: RuleEngine, events: Sequence[EndpointEvent]
) -> tuple[list[EndpointEvent], list[int], list[int], dict[int, RuleFailure]]:
    """:func:`annotate`, the rows (ascending) whose ``rule_hits`` are not empty, and those
    (ascending) whose event is a new one (its ``rule_hits`` changed)."""
    result = engine.evaluate(events)
    hits = result.hits
    out = list(events)
    # Most events fire nothing and arrived with nothing (the decoder clears the field): only the
    # rows with hits are looked at, found by C-level passes, unless some event arrived with hits.
    fired = [] if hits.count(()) == len(hits) else list(compress(range(len(hits)), hits))
    arrived = scorer.native.column(out, "rule_hits")  # (a slot read per event: no attrgetter look-up)
    rules = engine.rules
    changed = []
    for r in fired if arrived.count(()) == len(arrived) else range(len(out)):
        ids = tuple([rules[j].id for j in hits[r]])
        if ids != arrived[r]:  # (no copy for an event that arrived with these very hits)
            out[r] = msgspec.structs.replace(out[r], rule_hits=ids)
            changed.append(r)
    return out, fired, changed, result.errors


@dataclass(frozen=True)
class RuleStage:
    """A loaded rule pack as the pipeline uses it: the engine, its rules by id, and its
    per-host risk policy (None: the pack has none and raises no risk alerts)."""

    engine: RuleEngine
    name: str
    version: str
    by_id: Mapping[str, RuleMeta] = field(default_factory=dict)
    risk: RiskPolicy | None = None
    _ordered: dict[tuple[str, ...], tuple[RuleMeta, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    # The alert severity each set of hits earns under this pack (None: it raises none), as the
    # pipeline meets them (scorer.pipeline.rules.rule_alerts).
    severities: dict[tuple[str, ...], str | None] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def load(cls, repository: Path, pack: str, version: str = "") -> RuleStage:
        """Pack ``repository/pack/version`` (empty ``version``: the highest one there)."""
        if not version:
            # Packs are versioned as models are: numbered directories, the highest is current.
            found = list_versions(repository, pack)
            if not found:
                raise ModelError(f"no rule pack versions under {repository / pack}")
            version = found[-1]
        loaded = read_pack(repository / pack / version)
        engine = RuleEngine(loaded.rules, loaded.atoms, loaded.conditions)
        prepare(engine)  # long-value scanners now, not in the first batch that needs one
        return cls(engine, pack, version, {r.id: r for r in engine.rules}, loaded.risk)

    def annotate(self, events: Sequence[EndpointEvent]) -> tuple[list[EndpointEvent], dict[int, RuleFailure]]:
        return annotate(self.engine, events)

    def annotate_rows(
        self, events: Sequence[EndpointEvent]
    ) -> tuple[list[EndpointEvent], list[int], list[int], dict[int, RuleFailure]]:
        return annotate_rows(self.engine, events)

    @cached_property
    def features(self) -> RuleFeatures:
        """Feature set v3's rule block over this pack's metadata: what a candidate pack's hits
        would give the model (rule shadow). Stateless, built once per pack."""
        return RuleFeatures(self.by_id)

    def rules_of(self, event: EndpointEvent) -> tuple[RuleMeta, ...]:
        """The rules that fired on ``event``, most severe first (then by title)."""
        # Alerting events repeat a few combinations of hits: each is sorted once, and the
        # same tuple comes back (the finding's rule parts are cached by it).
        hits = event.rule_hits if type(event.rule_hits) is tuple else tuple(event.rule_hits)
        found = self._ordered.get(hits)
        if found is None:
            metas = [self.by_id[i] for i in hits if i in self.by_id]
            found = tuple(sorted(metas, key=lambda r: (-LEVELS.index(r.level) if r.level in LEVELS else 1, r.title)))
            if len(self._ordered) >= _ORDERED_MAX:
                self._ordered.clear()
            self._ordered[hits] = found
        return found
