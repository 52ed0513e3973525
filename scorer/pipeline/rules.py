"""Step 2, rules: EDR events through the deployed rule pack, before their features.

The hits stay on each event (``EndpointEvent.rule_hits``) for the features and the
decision; an event a rule raised on becomes a ``rule_error`` dead letter naming the rule,
and the rest of the batch goes on. After inference, :func:`rule_alerts` says which rows
raise an alert on their rules alone (a high or critical rule).

While a candidate pack is deployed as a shadow (``scorer rules deploy --shadow``), the
shadow runtime carries it, and :func:`shadow_rules` runs it on the same rows after
production's features: its hits, its rule alerts and the matrix the model would read under
it, for the shadow comparison (docs/rules.md, "Deploying a rule pack").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from operator import itemgetter

import scorer.native
from scorer.alerts.decide import rule_severity
from scorer.events.edrrows import ENDPOINT_TYPES
from scorer.events.structs import EndpointEvent, EventKind
from scorer.features.base import F32
from scorer.features.rules import NAMES as RULE_NAMES
from scorer.pipeline.batch import Batch, Item
from scorer.pipeline.outcome import failure
from scorer.rules import RuleMeta
from scorer.rules.annotate import RuleStage

log = logging.getLogger(__name__)
_EVENT = itemgetter(0)
_TYPES = set(ENDPOINT_TYPES)


def apply_rules(stage: RuleStage, items: list[Item], batch: Batch) -> list[Item]:
    """``items`` with their rule hits; the ones a rule raised on go to ``batch.failures``."""
    native = scorer.native.module("_rules")
    events = native.events_of(items, ENDPOINT_TYPES) if native is not None else None
    if events is None:  # (not all of them exactly endpoint events, or no C pass: looked at here)
        events = list(map(_EVENT, items))
        if not set(map(type, events)) <= _TYPES and not all(isinstance(ev, EndpointEvent) for ev in events):
            raise TypeError("the rules stage takes endpoint events only")
    annotated, fired, changed, errors = stage.annotate_rows(events)
    by_id, counts = stage.by_id, batch.rule_hits
    for r in fired:
        if r not in errors:
            for rule_id in annotated[r].rule_hits:
                meta = by_id.get(rule_id)
                counts[meta.level if meta is not None else "unknown"] += 1
    kept = list(items)
    if not errors:  # most batches: only the few events a rule fired on are new
        for r in changed:
            kept[r] = (annotated[r], items[r][1])
        return kept
    kept.clear()
    for i, (event, (_, rec)) in enumerate(zip(annotated, items, strict=True)):
        error = errors.get(i)
        if error is not None:
            batch.failures.append(failure(rec, "rule_error", f"rule {error.rule_id}: {error.message}"[:500]))
        else:
            kept.append((event, rec))
    return kept


def rule_hits(items: list[Item]) -> list[tuple[str, ...]]:
    """Each row's rule hits (none for a row that is no endpoint event)."""
    return [ev.rule_hits if isinstance(ev, EndpointEvent) else () for ev, _ in items]


def rule_alerts(
    stage: RuleStage | None, items: list[Item], hits: list[tuple[str, ...]] | None = None,
) -> dict[int, str]:
    """Rows whose rule hits raise an alert on their own, with the severity they earn
    (``hits``: :func:`rule_hits` of ``items``, when the caller has them)."""
    if stage is None:
        return {}
    forced: dict[int, str] = {}
    all_hits = rule_hits(items) if hits is None else hits
    severity_of = stage.severities
    # Most events fire no rule: only the rows with hits are looked at.
    for row, row_hits in enumerate(all_hits):
        if not row_hits:
            continue
        severity = severity_of.get(row_hits, _UNSEEN)
        if severity is _UNSEEN:
            severity = _severity(stage.by_id, row_hits)
            if len(severity_of) < _SEVERITY_CACHE:
                severity_of[row_hits] = severity
        if severity is not None:
            forced[row] = severity
    return forced


_UNSEEN = ""  # no severity is the empty string
_SEVERITY_CACHE = 4096  # sets of hits remembered per pack: a pack's combinations are few


def _severity(by_id: Mapping[str, RuleMeta], hits: tuple[str, ...]) -> str | None:
    return rule_severity(by_id[i].level for i in hits if i in by_id and by_id[i].alerts)


@dataclass
class RuleShadow:
    """A candidate rule pack on the same events as production's pack, in the same batch.

    ``x`` is the matrix the model reads under the candidate: production's, with feature set
    v3's rule columns recomputed from the candidate's hits (the rule block is stateless, so
    nothing is updated twice); production's matrix itself when the model reads no rule hits.
    Production's events, hits and matrix are never touched.
    """

    production: str  # "pack:version"
    candidate: str
    production_hits: list[tuple[str, ...]]
    candidate_hits: list[tuple[str, ...]]
    production_alerts: dict[int, str]  # rows alerting on their rules alone -> severity
    candidate_alerts: dict[int, str]
    x: F32
    errors: int = 0  # events a candidate rule raised on (no candidate hits; production unaffected)
    failed: str | None = None  # the candidate could not be run on this batch at all


def shadow_rules(batch: Batch, kind: EventKind, x: F32, items: list[Item]) -> F32 | None:
    """Run the shadow's candidate pack, if it has one, on ``items`` (production's rows); keep
    the comparison in ``batch.rule_shadows``. Returns the shadow's matrix (None: production's)."""
    runtime, shadow = batch.runtimes[kind], batch.shadows.get(kind)
    if shadow is None or shadow.rules is None or runtime.rules is None or shadow.rules is runtime.rules:
        return None
    prod, cand = runtime.rules, shadow.rules
    names = f"{prod.name}:{prod.version}", f"{cand.name}:{cand.version}"
    production_hits = [getattr(ev, "rule_hits", ()) for ev, _ in items]
    try:
        annotated, errors = cand.annotate([ev for ev, _ in items if isinstance(ev, EndpointEvent)])
        xs = x
        columns = rule_columns(runtime.features.names)
        if columns:
            block = cand.features.columns(annotated)
            xs = x.copy()
            for j, name in zip(columns, RULE_NAMES, strict=True):
                xs[:, j] = block[name]
        candidate_items: list[Item] = [(ev, rec) for ev, (_, rec) in zip(annotated, items, strict=True)]
        shadow_view = RuleShadow(*names, production_hits, [ev.rule_hits for ev in annotated],
                                 rule_alerts(prod, items), rule_alerts(cand, candidate_items), xs, len(errors))
    except Exception as exc:  # a shadow never fails the batch: production goes on, the failure is reported
        log.exception("candidate rule pack %s failed on a batch (production unaffected)", names[1])
        shadow_view = RuleShadow(*names, production_hits, [], {}, {}, x, failed=f"{type(exc).__name__}: {exc}")
    batch.rule_shadows[kind] = shadow_view
    return shadow_view.x


def shadow_input(batch: Batch, kind: EventKind) -> F32 | None:
    """The shadow's matrix of a batch scored again (inference retried)."""
    ruled = batch.rule_shadows.get(kind)
    return ruled.x if ruled is not None else None


@cache
def rule_columns(names: tuple[str, ...]) -> tuple[int, ...]:
    """Where feature set v3's rule block sits in ``names``; empty for sets without one."""
    if not set(RULE_NAMES) <= set(names):
        return ()
    return tuple(names.index(n) for n in RULE_NAMES)
