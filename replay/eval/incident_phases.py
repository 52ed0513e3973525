"""The attack phases of one capture in the incidents section: which landed in an incident,
and how long after the phase began an incident (its Create) and a record carrying the
phase's alert (Create, Update or Close) came. Definitions: :mod:`.incidents`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from scorer.captures import is_malicious

from .truth import TruthRow

if TYPE_CHECKING:
    from .incidents import Correlated


def _phase(r: TruthRow) -> tuple[str, bool] | None:
    """The attack phase an event belongs to and whether it is weak (capture-labelled), or None."""
    if r.malicious:
        return r.label or r.capture_label or "(no label)", False
    if r.malicious is None and r.capture_label and is_malicious(r.capture_label):
        return r.capture_label, True
    return None


def phases_of(capture: str, rows: list[TruthRow], c: Correlated) -> list[dict[str, Any]]:
    first: dict[str, float] = {}
    events: Counter[str] = Counter()
    weak: set[str] = set()
    alerted: dict[str, dict[str, float]] = defaultdict(dict)  # label -> incident uid -> its first alert there
    alerts: Counter[str] = Counter()
    joined: Counter[str] = Counter()
    first_alert: dict[str, float] = {}
    for r in rows:
        phase = _phase(r)
        if phase is None:
            continue
        label, is_weak = phase
        events[label] += 1
        first[label] = min(first.get(label, r.ts), r.ts)
        if is_weak:
            weak.add(label)
        if r.uid not in c.prepared.alerted:
            continue
        alerts[label] += 1
        first_alert[label] = min(first_alert.get(label, r.ts), r.ts)
        inc = c.member_of.get(r.uid)
        if inc is not None:
            joined[label] += 1
            alerted[label][inc] = min(alerted[label].get(inc, r.ts), r.ts)
    out = []
    for label in sorted(events, key=lambda k: first[k]):
        uids = set(alerted[label])
        created = min((c.incidents[u].created_ms for u in uids), default=None)
        # The first record (Create, Update or Close) of an incident holding the phase's alert
        # published once that alert had joined: when an analyst reading the topic could know.
        told = min((next((t for t in c.incidents[u].records_ms if t >= joined_s * 1000), None) or 2**62
                    for u, joined_s in alerted[label].items()), default=None)
        out.append({
            "capture": capture,
            "phase": label,
            "weak": label in weak,
            "events": events[label],
            "alerts": alerts[label],
            "alerts_in_incidents": joined[label],
            "incidents": len(uids),
            "landed": bool(uids),
            "first_event": first[label],
            "first_alert_delay_s": round(first_alert[label] - first[label], 3) if label in first_alert else None,
            "create_delay_s": round(created / 1000 - first[label], 3) if created is not None else None,
            "record_delay_s": round(told / 1000 - first[label], 3) if told is not None else None,
        })
    return out
