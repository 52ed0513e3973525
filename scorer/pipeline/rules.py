"""Step 2, rules: EDR events through the deployed rule pack, before their features.

The hits stay on each event (``EndpointEvent.rule_hits``) for the features and the
decision; an event a rule raised on becomes a ``rule_error`` dead letter naming the rule,
and the rest of the batch goes on. After inference, :func:`rule_alerts` says which rows
raise an alert on their rules alone (a high or critical rule).
"""

from __future__ import annotations

from scorer.alerts.decide import rule_severity
from scorer.events.structs import EndpointEvent
from scorer.pipeline.batch import Batch, Item
from scorer.pipeline.outcome import failure
from scorer.rules.annotate import RuleStage


def apply_rules(stage: RuleStage, items: list[Item], batch: Batch) -> list[Item]:
    """``items`` with their rule hits; the ones a rule raised on go to ``batch.failures``."""
    events = [ev for ev, _ in items if isinstance(ev, EndpointEvent)]
    if len(events) != len(items):
        raise TypeError("the rules stage takes endpoint events only")
    annotated, errors = stage.annotate(events)
    kept: list[Item] = []
    for i, (event, (_, rec)) in enumerate(zip(annotated, items, strict=True)):
        error = errors.get(i)
        if error is not None:
            batch.failures.append(failure(rec, "rule_error", f"rule {error.rule_id}: {error.message}"[:500]))
            continue
        for rule_id in event.rule_hits:
            meta = stage.by_id.get(rule_id)
            batch.rule_hits[meta.level if meta is not None else "unknown"] += 1
        kept.append((event, rec))
    return kept


def rule_alerts(stage: RuleStage | None, items: list[Item]) -> dict[int, str]:
    """Rows whose rule hits raise an alert on their own, with the severity they earn."""
    if stage is None:
        return {}
    forced: dict[int, str] = {}
    by_id = stage.by_id
    for row, (event, _) in enumerate(items):
        hits = event.rule_hits if isinstance(event, EndpointEvent) else ()
        if hits:
            severity = rule_severity(by_id[i].level for i in hits if i in by_id and by_id[i].alerts)
            if severity is not None:
                forced[row] = severity
    return forced
