"""The timing sections of an evaluation's report: latency from Kafka timestamps, and throughput.

Apart from the detection sections (:mod:`.report`) because they read when records were
produced and written (Kafka timestamps, the replay's own timing), not whether an event was
malicious or alerted: what each Kafka timestamp measures (CreateTime or LogAppendTime) is said
beside the numbers, and an embedded replay, with no produce -> ack path, has no latency to
report (said so, never zero).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import metrics
from .join import Joined

# What a Kafka record timestamp measures, by its timestamp_type: (axis label, definition).
_CLOCKS: dict[int | None, tuple[str, str]] = {
    0: ("sent", "CreateTime: set by the producer when it called send(), before the broker "
        "received and acked the record"),
    1: ("appended", "LogAppendTime: set by the broker when it appended the record, "
        "right before it acked it"),
    None: ("timestamp", "not recorded: CreateTime unless the topic uses LogAppendTime"),
}


def _clock(types: set[int | None], which: int) -> str:
    """The timestamps of a set of records, described (which: 0 axis label, 1 definition)."""
    text = " / ".join(_CLOCKS[t if t in _CLOCKS else None][which] for t in sorted(types, key=str))
    return ("mixed: " if len(types) > 1 else "") + (text or "n/a")


def latency(j: Joined) -> dict[str, Any]:
    # uid -> (Kafka timestamp of the replayed event record, its timestamp type)
    produced = {
        r.uid: (ms, r.produced_ts_type) for r in j.truth if (ms := r.produced_ms) is not None
    }
    alerts = [
        (ms - produced[u][0], a.kafka_ts_type, produced[u][1])
        for u, a in j.alerts.items()
        if (ms := a.kafka_ms) is not None and u in produced
    ]
    alert_lat = np.array([lat for lat, _, _ in alerts], dtype=np.float64)
    score_lat = np.array(
        [ms - produced[u][0] for u, ms in j.score_ms.items() if u in produced], dtype=np.float64
    )
    if not alert_lat.size and not score_lat.size:
        why = (
            "n/a: no Kafka timestamps to compare (an embedded replay scores in process, "
            "with no produce -> ack path; or the alerts were not read from Kafka)"
        )
        return {"available": False, "why": why}
    event_clock = {e for _, _, e in alerts} or {produced[u][1] for u in j.score_ms if u in produced}
    alert_clock = {a for _, a, _ in alerts}
    return {
        "available": True,
        "definition": "Kafka timestamp of the alert (or score) record minus that of the "
        "replayed event record",
        "event_timestamp": _clock(event_clock, 1),
        "alert_timestamp": _clock(alert_clock, 1),
        "axis": f"ms, event {_clock(event_clock, 0)} -> alert {_clock(alert_clock, 0)}",
        "alert": metrics.distribution(alert_lat),
        "alert_histogram": metrics.histogram(alert_lat, log=True),
        "score": metrics.distribution(score_lat),
    }


def throughput(j: Joined) -> dict[str, Any]:
    r = j.replay or {}
    out: dict[str, Any] = {
        k: r.get(k) for k in ("target", "pacing", "events", "seconds", "events_per_second")
    }
    if r.get("scoring_seconds"):
        out["scorer_events_per_second"] = round(r["events"] / r["scoring_seconds"], 1)
        out["scorer_basis"] = "events / time inside BatchScorer.score (in process)"
    produced = [t.produced_ms for t in j.truth if t.produced_ms is not None]
    done = list(j.score_ms.values()) or [a.kafka_ms for a in j.alerts.values() if a.kafka_ms]
    if produced and done and max(done) > min(produced):
        out["scorer_events_per_second"] = round(
            len(produced) / ((max(done) - min(produced)) / 1000), 1
        )
        out["scorer_basis"] = (
            "events / (last score or alert record - first replayed record): "
            "a lower bound, capped by the replay's own pacing unless --fast"
        )
    return out
