"""Step 5, decide: scores -> decisions -> OCSF findings on ``alerts.<kind>``, per-event
score records, and the production/shadow comparison of each kind with a shadow model.

A row alerts when its model's score passes the card's threshold, or on its own when a
high or critical detection rule fired on it (:func:`scorer.pipeline.rules.rule_alerts`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from operator import itemgetter

from scorer.alerts.findingjson import finding_writer
from scorer.events.structs import EventKind
from scorer.features.base import F32, column
from scorer.pipeline.batch import Batch, Item, KindRuntime
from scorer.pipeline.inference import Scores
from scorer.pipeline.outcome import KindScores, ScoredEvents, ShadowBatch
from scorer.pipeline.records import OutputRecord
from scorer.pipeline.rules import rule_alerts, rule_hits
from scorer.rules.risk import with_risk

_EVENT = itemgetter(0)


@dataclass
class Decisions:
    """What a batch's scores decided: alert records, score records and their counts."""

    alerts: list[OutputRecord] = field(default_factory=list)
    scores: ScoredEvents = field(default_factory=ScoredEvents)
    scored: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))  # (kind, backend)
    alert_counts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))  # (kind, severity)


def decide(batch: Batch, results: dict[EventKind, Scores], alerts_prefix: str, collect_scores: bool) -> Decisions:
    """Findings for the rows that alert; a score record per row when ``collect_scores``
    (columns: a few Python objects per event, only worth it when someone reads them)."""
    out = Decisions()
    for kind, (probs, backend_name, _) in results.items():
        rt = batch.runtimes[kind]
        x, items = batch.matrices[kind]
        name = kind.value
        out.scored[(name, backend_name)] += len(items)
        stage = rt.rules
        if stage is not None:
            hits = rule_hits(items)  # read once for the rules' own alerts and the hosts' risk
            forced = with_risk(stage, items, probs, rule_alerts(stage, items, hits), hits)
        else:
            forced = {}
        decisions = rt.decider.decide(probs, x, forced)
        # What every finding of the kind in this batch shares, read once.
        topic, model = alerts_prefix + name, rt.model
        write = finding_writer(kind, model.name, model.version, rt.decider.threshold, backend_name).write
        rules_of = stage.rules_of if stage is not None else None
        rule_pack = f"{stage.name}:{stage.version}" if stage is not None else ""
        counts, alerts = out.alert_counts, out.alerts
        for d in decisions:
            counts[(name, d.severity)] += 1
        # The events read whole only when they alert, and written straight as JSON.
        alerts += [OutputRecord(topic, value, key) for value, key in write(items, decisions, rules_of, rule_pack)]
        if collect_scores:
            out.scores.add(_kind_scores(kind, items, probs, rt, backend_name, {d.row for d in decisions}))
    return out


def _kind_scores(
    kind: EventKind, items: list[Item], probs: F32, rt: KindRuntime, backend: str, alerted: set[int],
) -> KindScores:
    """The kind's score records as columns, each read by one C-level pass."""
    events = list(map(_EVENT, items))
    flags = [False] * len(items)  # a list, not a numpy array: at 50 rows the array calls cost more than the rows
    for row in alerted:
        flags[row] = True
    hits = column(events, "rule_hits") if kind is EventKind.EDR else None
    return KindScores(kind, column(events, "uid"), probs.tolist(), rt.model.name, rt.model.version, backend,
                      flags, hits)


def compare_shadows(
    batch: Batch, results: dict[EventKind, Scores], shadow_results: dict[EventKind, F32 | BaseException]
) -> tuple[list[ShadowBatch], list[str]]:
    """Each shadow's scores beside production's for the same rows, and the shadows that failed."""
    shadows, runtimes = batch.shadows, batch.runtimes
    compared: list[ShadowBatch] = []
    errors: list[str] = []
    for k, res in shadow_results.items():
        if isinstance(res, BaseException):
            errors.append(f"{shadows[k].model.name}:{shadows[k].model.version}: {res}")
            continue
        compared.append(ShadowBatch(
            k, runtimes[k].model, shadows[k].model, [ev.uid for ev, _ in batch.matrices[k][1]],
            results[k].scores, res, runtimes[k].decider.threshold, shadows[k].decider.threshold,
            batch.rule_shadows.get(k),
        ))
    return compared, errors
