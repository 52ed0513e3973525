"""The numbers of an evaluation, as one JSON-ready dict (report.json; report.html shows it).
Its timing sections (latency, throughput) are :mod:`.timing`'s.

Honesty rules, applied throughout:

* only events with known truth count in precision/recall; unknown ones (e.g. Stratosphere
  Background) get their own section and are never counted as benign;
* an event that was never scored (dead-lettered, lost, or not yet scored when the alerts
  were collected) counts as not alerted, because the SOC got nothing, and is counted in
  the reconciliation;
* ROC/PR curves are per kind: each kind has its own model, and pooled scores of different
  models are not one classifier;
* what cannot be measured is reported as unavailable, with the reason, never as zero.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from scorer.captures import is_malicious

from . import metrics
from .join import Joined
from .timing import latency, throughput

MAX_HOURS = 2000  # alerts-per-hour buckets kept per kind (the busiest, in time order)


class _Columns:
    """The joined rows as aligned arrays."""

    def __init__(self, j: Joined, decisions_from_alerts: bool) -> None:
        rows = j.truth
        self.uid = [r.uid for r in rows]
        self.kind = np.array([r.kind for r in rows], dtype=object)
        self.known = np.array([r.malicious is not None for r in rows], dtype=bool)
        self.y = np.array([bool(r.malicious) for r in rows], dtype=bool)
        self.scored = np.array([u in j.scores for u in self.uid], dtype=bool)
        self.score = np.array([j.scores[u].score if u in j.scores else np.nan for u in self.uid])
        if decisions_from_alerts:
            self.alerted = np.array([u in j.alerts for u in self.uid], dtype=bool)
        else:
            self.alerted = np.array(
                [u in j.scores and j.scores[u].alerted for u in self.uid], dtype=bool
            )
        self.ts = np.array([r.ts for r in rows], dtype=np.float64)


def build_report(j: Joined, inputs: dict[str, str | None]) -> dict[str, Any]:
    have_alerts = inputs.get("alerts") is not None
    c = _Columns(j, decisions_from_alerts=have_alerts)
    kinds = sorted(set(c.kind.tolist()))
    known = c.known
    report: dict[str, Any] = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "inputs": inputs,
        "decisions_from": "alerts" if have_alerts else "scores (alerted flag)",
        "reconciliation": _reconciliation(j, c, have_alerts),
        "overall": {"all": metrics.binary(c.y[known], c.alerted[known])}
        | {
            k: metrics.binary(c.y[known & (c.kind == k)], c.alerted[known & (c.kind == k)])
            for k in kinds
        },
        "curves": {k: _curves(c, c.kind == k) for k in kinds} if j.scores else {},
        "classes": _classes(j, c),
        "captures": _captures(j, c),
        "capture_labels": _capture_labels(j, c),
        "unknown_truth": _unknown(j, c),
        "alerts_per_hour": {k: _per_hour(c, c.kind == k) for k in kinds},
        "latency_ms": latency(j),
        "throughput": throughput(j),
    }
    prevalence = report["overall"]["all"]["prevalence"]
    report["notes"] = [
        f"Precision depends on the share of attacks in the replayed traffic (here "
        f"{prevalence if prevalence is not None else 'n/a'}); class-balanced captures such "
        "as the CIC-IDS2017 sample overstate it against real traffic.",
        "Events with unknown ground truth are excluded from precision and recall.",
        "Events that were never scored count as not alerted (see reconciliation).",
    ]
    return report


def _reconciliation(j: Joined, c: _Columns, have_alerts: bool) -> dict[str, Any]:
    n = len(j.truth)
    out: dict[str, Any] = {
        "events": n,
        "by_kind": dict(Counter(c.kind.tolist())),
        "known_truth": int(c.known.sum()),
        "unknown_truth": int((~c.known).sum()),
        "scored": int(c.scored.sum()) if j.scores else None,
        "not_scored": int((~c.scored).sum()) if j.scores else None,
        "alerted": int(c.alerted.sum()),
        "alerts_read": len(j.alerts) if have_alerts else None,
        "unmatched": j.unmatched,
        "duplicates": j.duplicates,
        "unreadable_lines": j.bad_lines,
    }
    if have_alerts and j.scores:
        # The alerts topic and the scores' alerted flags must tell the same story.
        out["alert_score_disagreements"] = int(
            sum(
                1
                for u, a in zip(c.uid, c.alerted.tolist(), strict=True)
                if u in j.scores and j.scores[u].alerted != a
            )
        )
    if j.replay is not None:
        out["replayed"] = j.replay.get("events")
        out["read_errors"] = j.replay.get("read_errors")
        out["accounted"] = out["replayed"] == n
    return out


def _curves(c: _Columns, mask: metrics.BoolArray) -> dict[str, Any]:
    m = mask & c.known & c.scored
    y, s = c.y[m], c.score[m]
    hist: dict[str, Any] = {}
    for name, sel in (
        ("malicious", c.known & c.y),
        ("benign", c.known & ~c.y),
        ("unknown", ~c.known),
    ):
        vals = c.score[mask & c.scored & sel]
        hist[name] = np.histogram(vals, bins=20, range=(0.0, 1.0))[0].tolist()
    return {
        "roc": metrics.roc(y, s),
        "pr": metrics.pr(y, s),
        "score_histogram": hist,
        "scored_with_truth": int(m.sum()),
    }


def _classes(j: Joined, c: _Columns) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, r in enumerate(j.truth):
        groups[(r.kind, r.label or "(no label)")].append(i)
    out = []
    for (kind, label), idx in groups.items():
        alerted = int(c.alerted[idx].sum())
        truth = is_malicious(None if label == "(no label)" else label)
        out.append(
            {
                "kind": kind,
                "label": label,
                "malicious": truth,
                "events": len(idx),
                "alerted": alerted,
                "not_alerted": len(idx) - alerted,
                # malicious: TP / FN (detection rate); benign: FP / TN (false alarm rate)
                "alert_rate": metrics.ratio(alerted, len(idx)),
            }
        )
    order = {True: 0, False: 1, None: 2}
    return sorted(out, key=lambda d: (d["kind"], order[d["malicious"]], d["label"]))


def _captures(j: Joined, c: _Columns) -> list[dict[str, Any]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(j.truth):
        groups[r.capture].append(i)
    out = []
    for capture, idx in sorted(groups.items()):
        k, y, a = c.known[idx], c.y[idx], c.alerted[idx]
        b = metrics.binary(y[k], a[k])
        first = j.truth[idx[0]]
        out.append(
            {
                "capture": capture,
                "kind": first.kind,
                "capture_label": first.capture_label,
                "events": len(idx),
                "malicious": b["malicious"],
                "benign": b["benign"],
                "unknown": int((~k).sum()),
                "alerted": int(a.sum()),
                "tp": b["tp"],
                "fp": b["fp"],
                "recall": b["recall"],
                "precision": b["precision"],
            }
        )
    return out


def _capture_labels(j: Joined, c: _Columns) -> dict[str, Any]:
    """Weakly labelled captures (e.g. OTRF): is each attack capture detected at all?"""
    labelled = [cap for cap in _captures(j, c) if cap["capture_label"]]
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for cap in labelled:
        by_label[cap["capture_label"]].append(cap)
    attack = [cap for cap in labelled if is_malicious(cap["capture_label"])]
    detected = sum(1 for cap in attack if cap["alerted"])
    return {
        "attack_captures": len(attack),
        "detected": detected,
        "share_detected": metrics.ratio(detected, len(attack)),
        "by_label": [
            {
                "capture_label": label,
                "captures": len(caps),
                "detected": sum(1 for cap in caps if cap["alerted"]),
                "events": sum(cap["events"] for cap in caps),
                "alerts": sum(cap["alerted"] for cap in caps),
            }
            for label, caps in sorted(by_label.items())
        ],
    }


def _unknown(j: Joined, c: _Columns) -> dict[str, Any]:
    u = ~c.known
    labels = Counter(
        r.label or "(no label)" for r, k in zip(j.truth, c.known.tolist(), strict=True) if not k
    )
    return {
        "events": int(u.sum()),
        "alerted": int(c.alerted[u].sum()),
        "alert_rate": metrics.ratio(int(c.alerted[u].sum()), int(u.sum())),
        "by_label": dict(labels.most_common(20)),
    }


def _per_hour(c: _Columns, mask: metrics.BoolArray) -> dict[str, Any]:
    """Events and alerts per hour of the captures' own clock, every hour from the first
    event's to the last's: quiet hours are zeros, so the time axis is continuous. A span of
    more than MAX_HOURS hours is counted in buckets of ``bucket_hours`` hours."""
    hours = np.floor(c.ts[mask] / 3600).astype(np.int64)
    if not hours.size:
        return {"hours": [], "events": [], "alerts": [], "bucket_hours": 1}
    first = int(hours.min())
    width = -(-(int(hours.max()) - first + 1) // MAX_HOURS)  # ceil: at most MAX_HOURS buckets
    bucket = (hours - first) // width
    n = int(bucket.max()) + 1
    events = np.bincount(bucket, minlength=n)
    alerts = np.bincount(bucket, weights=c.alerted[mask].astype(np.float64), minlength=n)
    starts = first + width * np.arange(n)
    return {
        "hours": [time.strftime("%Y-%m-%d %H:00", time.gmtime(h * 3600)) for h in starts.tolist()],
        "events": events.tolist(),
        "alerts": alerts.astype(int).tolist(),
        "bucket_hours": width,
    }
