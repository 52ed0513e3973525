"""The incidents section of ``scorer eval``: the incident core run in process over the
alerts of a replay, measured against the ground truth.

Each capture is correlated on its own (a capture is one site: AIT-ADS scenarios reuse host
names and overlap in time, so pooling them would merge strangers' incidents), in finding
time order, with a flush after every finding, so an incident's Create happens at the
finding time of the finding that opened it. Only the findings go into the core; the truth
(labels) is joined afterwards by the finding's event uid, so no label can steer a grouping.

Definitions, per capture:

* an **attack phase** is a malicious truth label (AIT-ADS: the event label, e.g. dirb,
  crack_passwords); it *lands* when at least one of its alerts joined an incident. Where the
  events' truth is unknown and only the capture is labelled (OTRF: one ATT&CK technique per
  capture), the capture's label is a *weak* phase, with every event of the capture;
* a **benign-only** incident has no member that is an attack and none of unknown truth;
  one with no attack member but some of unknown truth is **unknown** (not counted as
  benign: nobody knows whether it held the attack);
* **days** is the capture's span in event time (first to last replayed event), at least one
  hour, so a short capture is not flattered by a per-day rate over a whole day;
* **create delay** of a phase: the Create of the first incident that holds one of its alerts
  minus the phase's first event (alerted or not), in event time; an incident open before
  the phase began gives a negative delay, reported as is;
* **record delay** of a phase: the first record (Create, Update or Close) of such an
  incident published after the phase's alert joined it, minus the phase's first event:
  when a reader of the incident topic could first see the phase (an Update comes only for
  something material, a doubling, or ``update_interval_s`` of finding time).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from scorer.incidents import Activity, Correlator, LinkTable, Member, Policy, Unattributed, digest

from . import metrics
from .incident_phases import phases_of
from .join import record_values
from .truth import TruthRow

GOAL_RATIO = 100.0  # at least this many alerts per incident
GOAL_BENIGN_PER_DAY = 10.0  # at most this many benign-only incidents per day
UNKNOWN_CAPTURE = "(not in truth)"


@dataclass
class Incident:
    uid: str
    capture: str
    key: str
    first_ms: int
    created_ms: int  # finding time of the finding whose flush carried the Create
    last_ms: int = 0
    count: int = 0
    attack: int = 0
    unknown: int = 0  # members of unknown truth
    labels: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    closed: str = ""
    records_ms: list[int] = field(default_factory=list)  # finding time of each of its records


@dataclass
class Prepared:
    """The digested alerts per capture, in finding-time order: correlated once per policy."""

    rows: dict[str, list[tuple[int, str, Member]]] = field(default_factory=dict)  # time, event uid, digest
    alerts: Counter[str] = field(default_factory=Counter)  # per capture
    alerted: set[str] = field(default_factory=set)  # event uids with an alert
    unattributed: Counter[str] = field(default_factory=Counter)
    unreadable: int = 0
    duplicates: int = 0


@dataclass
class Correlated:
    """Every incident of every capture, and which alert joined which."""

    prepared: Prepared
    incidents: dict[str, Incident] = field(default_factory=dict)
    member_of: dict[str, str] = field(default_factory=dict)  # event uid -> incident uid


def read_findings(path: Path, bad: Counter[str]) -> Iterator[dict[str, Any]]:
    """The finding dicts of an alerts file (plain or recorded); unreadable ones counted in ``bad``."""
    for item in record_values(path, bad):
        try:
            value = msgspec.json.decode(item.value)
        except msgspec.DecodeError:
            value = None
        if isinstance(value, dict):
            yield value
        else:
            bad["json"] += 1


def event_uid(finding: dict[str, Any]) -> str | None:
    try:
        return str(finding["finding_info"]["related_events"][0]["uid"])
    except (KeyError, IndexError, TypeError):
        return None


def prepare(findings: Iterable[dict[str, Any]], truth: dict[str, TruthRow]) -> Prepared:
    out = Prepared()
    rows: dict[str, list[tuple[int, int, str, Member]]] = defaultdict(list)
    for seq, f in enumerate(findings):
        uid = event_uid(f)
        if uid is not None and uid in out.alerted:  # at-least-once delivery: counted once, as join does
            out.duplicates += 1
            continue
        row = truth.get(uid) if uid is not None else None
        capture = row.capture if row is not None else UNKNOWN_CAPTURE
        out.alerts[capture] += 1
        if uid is not None:
            out.alerted.add(uid)
        try:
            m = digest(f)
        except Unattributed:
            out.unattributed[capture] += 1
            continue
        rows[capture].append((m.time_ms, seq, uid or m.uid, m))
    for capture, items in rows.items():
        items.sort(key=lambda r: (r[0], r[1]))  # finding time; ties in arrival order
        out.rows[capture] = [(t, uid, m) for t, _, uid, m in items]
    return out


def correlate(prepared: Prepared, truth: dict[str, TruthRow], policy: Policy) -> Correlated:
    out = Correlated(prepared)
    for capture, rows in prepared.rows.items():
        _run(capture, rows, truth, policy, out)
    return out


def _run(capture: str, rows: list[tuple[int, str, Member]], truth: dict[str, TruthRow], policy: Policy,
         out: Correlated) -> None:
    links = LinkTable()
    # Captures are in the past: the far-future guard must judge them by their own clock.
    end_s = rows[-1][0] / 1000 + 1
    corr = Correlator(policy, wall_clock=lambda: end_s)
    for time_ms, uid, m in rows:
        links.learn(m)
        joined = corr.add(links.resolve(m))
        if not isinstance(joined, str):  # no suppressions here: a repeated finding uid
            continue
        for e in corr.flush():
            inc = out.incidents.get(e.state.uid)
            if inc is None:
                inc = out.incidents[e.state.uid] = Incident(e.state.uid, capture, e.state.key, e.state.first_ms,
                                                            time_ms)
            inc.records_ms.append(time_ms)
            if e.activity is Activity.CLOSE:
                inc.closed = e.state.closed
        inc = out.incidents[joined]
        out.member_of[uid] = joined
        inc.count += 1
        inc.last_ms = max(inc.last_ms, time_ms)
        inc.kinds[m.kind] += 1
        row = truth.get(uid)
        if row is None or row.malicious is None:
            inc.unknown += 1
        elif row.malicious:
            inc.attack += 1
            inc.labels[row.label or row.capture_label or "(no label)"] += 1
    for e in corr.close_all():
        inc = out.incidents[e.state.uid]
        inc.closed = e.state.closed
        inc.records_ms.append(max(inc.last_ms, rows[-1][0]))  # the end of the capture closes it


def evaluate_incidents(truth: list[TruthRow], alerts: Path, policy: Policy) -> dict[str, Any]:
    """The incidents section for one replay's truth and alerts file."""
    by_uid = {r.uid: r for r in truth}
    bad: Counter[str] = Counter()
    prepared = prepare(read_findings(alerts, bad), by_uid)
    prepared.unreadable = sum(bad.values())
    return section(truth, correlate(prepared, by_uid, policy), policy)


def section(truth: list[TruthRow], c: Correlated, policy: Policy) -> dict[str, Any]:
    """The report's ``incidents`` dict: overall, per capture, per phase, per day."""
    p = c.prepared
    by_capture: dict[str, list[TruthRow]] = defaultdict(list)
    for r in truth:
        by_capture[r.capture].append(r)
    incidents_of: dict[str, list[Incident]] = defaultdict(list)
    for inc in c.incidents.values():
        incidents_of[inc.capture].append(inc)
    captures = [_capture(name, by_capture.get(name, []), incidents_of.get(name, []), c)
                for name in sorted(set(by_capture) | set(p.alerts))]  # with no alert too: its phases did not land
    counts = np.array([i.count for i in c.incidents.values()], dtype=np.float64)
    alerts, n = sum(p.alerts.values()), len(c.incidents)
    return {
        "policy": {"quiet_s": policy.quiet_s, "max_span_s": policy.max_span_s},
        "grouping": "per capture, in finding-time order, flush after every finding",
        "alerts": alerts,
        "unattributed": sum(p.unattributed.values()),
        "unreadable": p.unreadable,
        "duplicates": p.duplicates,
        "incidents": n,
        "alerts_per_incident": metrics.ratio(alerts, n),
        "benign_only": sum(1 for i in c.incidents.values() if _benign_only(i)),
        "unknown_truth": sum(1 for i in c.incidents.values() if not i.attack and i.unknown),
        "findings_per_incident": metrics.distribution(counts),
        "findings_per_incident_histogram": metrics.histogram(counts, 30, log=True),
        "captures": captures,
        "phases": [p for cap in captures for p in cap.pop("_phases")],
        "per_day": [d for cap in captures for d in cap.pop("_days")],
        "goals": {"alerts_per_incident": f">= {GOAL_RATIO:g}", "phases": "every phase with an alert lands",
                  "benign_only_per_day": f"<= {GOAL_BENIGN_PER_DAY:g}"},
    }


def _capture(name: str, rows: list[TruthRow], incs: list[Incident], c: Correlated) -> dict[str, Any]:
    ts = np.array([r.ts for r in rows], dtype=np.float64)
    days = max((float(ts.max() - ts.min()) if ts.size else 0.0) / 86400, 1 / 24)
    alerts, benign = c.prepared.alerts[name], sum(1 for i in incs if _benign_only(i))
    phases = phases_of(name, rows, c)
    ratio = metrics.ratio(alerts, len(incs))
    landed = all(p["landed"] for p in phases if p["alerts"])
    per_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for i in incs:
        day = np.datetime_as_string(np.datetime64(i.first_ms, "ms"), unit="D")
        per_day[str(day)][0] += 1
        per_day[str(day)][1] += _benign_only(i)
    return {
        "capture": name,
        "days": round(days, 3),
        "alerts": alerts,
        "unattributed": c.prepared.unattributed[name],
        "incidents": len(incs),
        "alerts_per_incident": ratio,
        "incidents_per_day": round(len(incs) / days, 2),
        "benign_only": benign,
        "benign_only_per_day": round(benign / days, 2),
        "with_attack": sum(1 for i in incs if i.attack),
        "unknown_truth": sum(1 for i in incs if not i.attack and i.unknown),
        "phases": len(phases),
        "phases_alerted": sum(1 for p in phases if p["alerts"]),
        "phases_landed": sum(1 for p in phases if p["landed"]),
        "goal_ratio": None if not alerts else ratio is not None and ratio >= GOAL_RATIO,
        "goal_phases": landed,
        "goal_benign": benign / days <= GOAL_BENIGN_PER_DAY,
        "_phases": phases,
        "_days": [{"capture": name, "day": d, "incidents": v[0], "benign_only": v[1]}
                  for d, v in sorted(per_day.items())],
    }


def _benign_only(i: Incident) -> bool:
    return not i.attack and not i.unknown
