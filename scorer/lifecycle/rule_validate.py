"""``scorer rules validate PACK``: may this pack replace production? The models' verdict
(:class:`scorer.lifecycle.validate.Verdict`), for a rule pack.

1. integrity: :func:`scorer.rules.validate.validate_pack` (checksums, the pySigma recompile
   to the very IR, the pack's own golden set), unchanged; a pack that is not what it says
   gets no further;
2. detections, on the golden events of both packs (SigmaHQ's regression cases of their
   rules), both engines on the same events: every hit production has that the candidate
   lacks fails, naming the rule and the case, when the candidate still holds the rule;
3. removed: production's rules the candidate no longer holds (with the golden cases they
   fired on). A failure unless ``allow_removed``: dropping a detection is a decision the
   engineer states (``--allow-removed``), not something a gate lets through unnoticed, and
   the detections check cannot see a removed rule that has no golden case;
4. alert volume on benign EDR background, the events the realistic stream cycles
   (:func:`scorer.bench.realistic.background`, the first events of an OTRF host log, so the
   sample is the same on every run): the share of events that alert on their rules alone
   (a high or critical rule the tuning leaves alerting) or through the pack's per-host risk
   policy, as the service decides them; candidate <= production x (1 + margin). No slack
   is added: the events are the same for both packs, so the rates do not wobble;
5. latency, relative to production measured in the same run on the same machine: the two
   engines on the same background batches of the service's batch size, in turn; the
   candidate's per-event time <= production's x ``latency_ratio`` (the median of the ratios
   of runs paired on the same batch), both medians and p99s beside it;
   an absolute p99 budget only when set (the models' gate, for the same reasons). Times are
   the process's CPU time, not wall time: on a shared 2-core VM at load 7 packs of one IR
   measured 0.87-1.26 x each other in wall time, 0.95-1.02 x in CPU time.

No model runs here: risk points a model score would add (``model_points``) are left out for
both packs alike.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from scorer.bench.realistic import background
from scorer.errors import ScorerError
from scorer.events import edr
from scorer.events.structs import EndpointEvent, EventKind
from scorer.lifecycle.validate import Check, Latency, Verdict, budget_checks, latency_of, paired_ratio
from scorer.pipeline.batch import Item
from scorer.pipeline.rules import rule_alerts
from scorer.rules import RuleEngine
from scorer.rules.annotate import RuleStage
from scorer.rules.pack import read_golden, read_pack
from scorer.rules.risk import with_risk
from scorer.rules.scanners import prepare
from scorer.rules.validate import validate_pack

SHOWN = 5  # problems named per check line; the rest counted


@dataclass(frozen=True)
class RuleMargins:
    alert_rate: float = 0.25  # benign alert share may grow by at most this fraction (relative)
    latency_ratio: float = 1.25  # candidate median time per event <= production's x this
    latency_us_per_event: float | None = None  # absolute p99 budget per event: only when set
    batch: int = 4096
    events: int = 8192  # benign background events: two batches of the default size
    runs: int = 15  # timed passes over the background, per pack
    allow_removed: bool = False


def load_stage(directory: Path) -> RuleStage:
    """The pack at ``directory`` as the service loads it (anywhere: a candidate need not sit
    in the rule repository yet)."""
    pack = read_pack(directory)
    engine = RuleEngine(pack.rules, pack.atoms, pack.conditions)
    prepare(engine)
    return RuleStage(engine, str(pack.manifest.get("name", directory.parent.name)),
                     str(pack.manifest.get("version", directory.name)), {r.id: r for r in engine.rules}, pack.risk)


def integrity(candidate: Path) -> tuple[list[str], Verdict | None]:
    """:func:`validate_pack`'s problems, and the failed verdict they make (None: it passes).
    First and on its own: a pack that is not what it says needs no production to be refused."""
    started = time.perf_counter()
    problems = validate_pack(candidate)
    if not problems:
        return [], None
    return problems, Verdict(candidate.parent.name, candidate.name, None, False,
                             [Check("integrity", False, _some(problems))], {}, time.perf_counter() - started)


def validate_rules(candidate: Path, production: Path | None, data_root: Path,
                   margins: RuleMargins = RuleMargins(), *, checked: float | None = None) -> Verdict:
    """The verdict on ``candidate`` against ``production`` (None: no comparison).
    ``checked``: :func:`integrity` already passed, that many seconds ago (the recompile
    takes ~20 s: not run twice)."""
    started = time.perf_counter() - (checked or 0.0)
    against = production.name if production is not None else None
    if checked is None:
        _, failed = integrity(candidate)
        if failed is not None:
            return failed
    cand = load_stage(candidate)
    name, version = cand.name, cand.version
    checks = [Check("integrity", True, f"checksums, recompiled IR identical, golden set passes "
                                       f"({len(cand.engine.rules)} rules)")]
    metrics: dict[str, float] = {}
    if production is None:
        checks.append(Check("quality", True, "no production pack to compare with"))
        prod = None
    else:
        try:
            prod = load_stage(production)
        except (ScorerError, ValueError, OSError, KeyError, TypeError) as exc:  # production itself is broken
            checks.append(Check("quality", False, f"cannot compare: production {production}: {exc}"))
            return Verdict(name, version, against, False, checks, metrics, time.perf_counter() - started)
        checks += detection_checks(cand, prod, [candidate, production], margins.allow_removed, metrics)
    try:
        events = background(data_root, EventKind.EDR, max(margins.events, margins.batch))
    except (OSError, ValueError) as exc:  # no shared data here: nothing to measure volume or time on
        checks.append(Check("alert_volume", False, f"cannot measure: {exc}"))
        return Verdict(name, version, against, False, checks, metrics, time.perf_counter() - started)
    edr_events = [ev for ev in events if isinstance(ev, EndpointEvent)]
    batches = [edr_events[i:i + margins.batch] for i in range(0, len(edr_events), margins.batch)]
    checks += _volume_checks(cand, prod, batches, margins, metrics)
    checks += _latency_checks(cand, prod, batches, margins, metrics)
    return Verdict(name, version, against, all(c.ok for c in checks), checks, metrics,
                   time.perf_counter() - started)


def golden_events(directories: list[Path]) -> list[tuple[str, EndpointEvent]]:
    """(case, event) of every golden entry of these packs, each event once."""
    seen: set[str] = set()
    out: list[tuple[str, EndpointEvent]] = []
    for directory in directories:
        for i, entry in enumerate(read_golden(directory)):
            key = json.dumps(entry["event"], sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            out.append((str(entry.get("case", i)), edr.from_mapping(entry["event"])))
    return out


def detection_checks(cand: RuleStage, prod: RuleStage, golden_dirs: list[Path], allow_removed: bool,
                     metrics: dict[str, float]) -> list[Check]:
    """``detections`` and ``removed``: production's golden hits the candidate keeps or loses."""
    cases = golden_events(golden_dirs)
    events = [ev for _, ev in cases]
    prod_hits, cand_hits = _fired(prod, events), _fired(cand, events)
    lost: list[str] = []
    removed: dict[str, list[str]] = {r: [] for r in prod.by_id if r not in cand.by_id}
    added = 0
    for (case, _), p, c in zip(cases, prod_hits, cand_hits, strict=True):
        added += len(c - p)
        for rule in sorted(p - c):
            if rule in removed:
                removed[rule].append(case)
            else:
                lost.append(f"rule {rule} ({prod.by_id[rule].title}) no longer fires on case {case}")
    metrics.update(golden_events=len(events), golden_hits_lost=len(lost), golden_hits_added=added,
                   rules_removed=len(removed))
    where = f"{len(events)} golden events of both packs"
    checks = [Check("detections", not lost, _some(lost) + f" ({where})" if lost else
                    f"every rule production fires on {where} still fires; {added} hits added")]
    if removed:
        named = [f"{r} ({prod.by_id[r].title}" + (f"; fired on case {', '.join(cs)})" if cs else ")")
                 for r, cs in removed.items()]
        tail = "allowed by --allow-removed" if allow_removed else "pass --allow-removed to accept"
        checks.append(Check("removed", allow_removed,
                            f"{len(removed)} production rule(s) not in the candidate: {_some(named)}; {tail}"))
    return checks


def _fired(stage: RuleStage, events: list[EndpointEvent]) -> list[set[str]]:
    result = stage.engine.evaluate(events)
    return [{stage.engine.rules[j].id for j in hits} for hits in result.hits]


def alerts(stage: RuleStage, batches: list[list[EndpointEvent]]) -> tuple[int, int]:
    """(events that alert, events a rule raised on) over ``batches`` in order, as the service
    decides them: rules alone, then the pack's risk policy (its per-host state fresh)."""
    alerted = errors = 0
    for batch in batches:
        annotated, failed = stage.annotate(batch)
        errors += len(failed)
        # The service scores and decides only the events no rule raised on.
        items = cast(list[Item], [(ev, None) for i, ev in enumerate(annotated) if i not in failed])
        forced = with_risk(stage, items, np.zeros(len(items)), rule_alerts(stage, items))
        alerted += len(forced)
    return alerted, errors


def _volume_checks(cand: RuleStage, prod: RuleStage | None, batches: list[list[EndpointEvent]],
                   m: RuleMargins, metrics: dict[str, float]) -> list[Check]:
    n = max(1, sum(len(b) for b in batches))  # background() refuses an empty sample; no 0/0 here
    where = f"of {n} benign EDR background events (incl. risk-policy alerts)"
    c_alerts, c_errors = alerts(cand, batches)
    c_rate = c_alerts / n
    metrics.update(candidate_alert_rate_benign=c_rate, candidate_rule_errors=c_errors)
    if prod is None:
        return [Check("alert_volume", True, f"{c_rate:.3%} {where}; no production to compare with")]
    p_alerts, p_errors = alerts(prod, batches)
    p_rate = p_alerts / n
    metrics.update(production_alert_rate_benign=p_rate, production_rule_errors=p_errors)
    limit = p_rate * (1 + m.alert_rate)
    checks = [Check("alert_volume", c_rate <= limit,
                    f"{c_rate:.3%} ({c_alerts}) {where} alert vs production {p_rate:.3%} ({p_alerts}) "
                    f"(limit {limit:.3%}, margin {m.alert_rate})")]
    if c_errors > p_errors:  # an event a rule raises on is dead-lettered, not scored
        checks.append(Check("rule_errors", False, f"candidate rules raise on {c_errors} background events, "
                                                  f"production's on {p_errors}"))
    return checks


def latencies(stages: list[RuleStage], batches: list[list[EndpointEvent]],
              runs: int) -> tuple[list[Latency], list[list[float]]]:
    """Microseconds per event of each engine over ``batches`` (median, p99), the engines in
    turn on each batch, ``runs`` passes (one warm-up pass excluded: first-use caches); and
    each engine's times, aligned: entry k of every list timed the same batch moments apart."""
    times: list[list[float]] = [[] for _ in stages]
    for i, batch in itertools.product(range(runs + 1), batches):
        # Alternate who goes first: neither engine always follows the other's cache traffic.
        order = range(len(stages)) if i % 2 == 0 else reversed(range(len(stages)))
        for j in order:
            # CPU time of this process, not wall time: on a shared machine a batch's wall time
            # is mostly whichever other process the scheduler ran meanwhile.
            t0 = time.process_time()
            stages[j].engine.evaluate(batch)
            if i > 0:
                times[j].append((time.process_time() - t0) * 1e6 / len(batch))
    return [latency_of(t) for t in times], times


def _latency_checks(cand: RuleStage, prod: RuleStage | None, batches: list[list[EndpointEvent]],
                    m: RuleMargins, metrics: dict[str, float]) -> list[Check]:
    measured, times = latencies([cand, *([prod] if prod is not None else [])], batches, m.runs)
    c = measured[0]
    metrics.update(latency_p50_us_per_event=c.p50, latency_p99_us_per_event=c.p99)
    where = (f"rule engine at batch {m.batch}, {len(batches)} batches x {m.runs} runs each")
    checks = []
    if prod is not None:
        p = measured[1]
        metrics.update(production_latency_p50_us_per_event=p.p50, production_latency_p99_us_per_event=p.p99)
        ratio = paired_ratio(times[0], times[1])  # each pair: two runs on the same batch moments apart
        metrics.update(latency_ratio=ratio)
        checks.append(Check("latency", ratio <= m.latency_ratio,
                            f"median {c.p50:.2f} CPU us/event vs production {prod.version}'s {p.p50:.2f}: "
                            f"{ratio:.2f} x (median of paired runs; limit {m.latency_ratio:.2f} x; "
                            f"p99 {c.p99:.2f} vs {p.p99:.2f}) {where}, same run"))
    return budget_checks(checks, c, m.latency_us_per_event, where, "CPU us/event")


def _some(items: list[str]) -> str:
    more = f" (and {len(items) - SHOWN} more)" if len(items) > SHOWN else ""
    return "; ".join(items[:SHOWN]) + more
