"""Step 5, decide: scores -> decisions -> OCSF findings on ``alerts.<kind>``, per-event
score records, and the production/shadow comparison of each kind with a shadow model.

A row alerts when its model's score passes the card's threshold, or on its own when a
high or critical detection rule fired on it (:func:`scorer.pipeline.rules.rule_alerts`).
"""

from __future__ import annotations

from collections import defaultdict

from scorer.alerts.decide import Decision
from scorer.alerts.findingjson import finding_writer
from scorer.events.structs import EventKind
from scorer.features.base import F32
from scorer.native.findings import item_column
from scorer.pipeline.batch import Batch, Item, KindRuntime
from scorer.pipeline.inference import Scores
from scorer.pipeline.outcome import KindScores, ScoredEvents, ShadowBatch
from scorer.pipeline.records import OutputRecord
from scorer.pipeline.rules import rule_alerts, rule_hits
from scorer.rules.risk import with_risk


class Decisions:
    """What a batch's scores decided: alert records, score records and their counts."""

    __slots__ = ("alert_counts", "alerts", "scored", "scores")

    def __init__(self) -> None:  # one call a batch (a dataclass's default factories were four more)
        self.alerts: list[OutputRecord] = []
        self.scores = ScoredEvents()
        self.scored: dict[tuple[str, str], int] = defaultdict(int)  # (kind, backend)
        self.alert_counts: dict[tuple[str, str], int] = defaultdict(int)  # (kind, severity)


def decide(batch: Batch, results: dict[EventKind, Scores], alerts_prefix: str, collect_scores: bool) -> Decisions:
    """Findings for the rows that alert; a score record per row when ``collect_scores``
    (columns: a few Python objects per event, only worth it when someone reads them)."""
    out = Decisions()
    for kind, (probs, backend_name, _) in results.items():
        rt = batch.runtimes[kind]
        x, items = batch.matrices[kind]
        name = _NAMES[kind]
        out.scored[(name, backend_name)] += len(items)
        stage = rt.rules
        edr = kind is EventKind.EDR
        # Each row's rule hits, read once for the rules' own alerts, the hosts' risk and the score records.
        hits = item_column(items, "rule_hits") if edr and (stage is not None or collect_scores) else None
        if stage is not None:
            if hits is None:
                hits = rule_hits(items)
            forced = with_risk(stage, items, probs, rule_alerts(stage, items, hits), hits)
        else:
            forced = {}
        decisions = rt.decider.decide(probs, x, forced)
        if decisions:  # most kinds of a 50-record batch raise none: no writer to look up
            _findings(out, kind, name, items, decisions, alerts_prefix, rt, backend_name)
        if collect_scores:
            out.scores.add(_kind_scores(kind, items, probs, rt, backend_name, decisions, hits if edr else None))
    return out


_NAMES = {kind: kind.value for kind in EventKind}


def _findings(
    out: Decisions, kind: EventKind, name: str, items: list[Item], decisions: list[Decision], alerts_prefix: str,
    rt: KindRuntime, backend: str,
) -> None:
    """The alert records of ``decisions``, and their counts."""
    stage, model, topic = rt.rules, rt.model, alerts_prefix + name
    write = finding_writer(kind, model.name, model.version, rt.decider.threshold, backend).write
    rules_of = stage.rules_of if stage is not None else None
    rule_pack = f"{stage.name}:{stage.version}" if stage is not None else ""
    counts = out.alert_counts
    for d in decisions:
        counts[(name, d.severity)] += 1
    # The events read whole only when they alert, and written straight as JSON.
    out.alerts += [OutputRecord(topic, value, key) for value, key in write(items, decisions, rules_of, rule_pack)]


def _kind_scores(
    kind: EventKind, items: list[Item], probs: F32, rt: KindRuntime, backend: str, decisions: list[Decision],
    hits: list[tuple[str, ...]] | None,
) -> KindScores:
    """The kind's score records as columns, each read by one C-level pass."""
    flags = [False] * len(items)  # a list, not a numpy array: at 50 rows the array calls cost more than the rows
    for d in decisions:
        flags[d.row] = True
    return KindScores(kind, item_column(items, "uid"), probs.tolist(), rt.model.name, rt.model.version, backend,
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
