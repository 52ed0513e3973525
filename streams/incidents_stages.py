"""The per-stage breakdown of ``python -m streams bench-incidents``: where an opening
finding's Create latency goes.

- hops, measured by the bench on its one clock: ``router_hop`` from the send to the first
  digest of the host on the keyed topic (read_committed: the router's transaction
  committed), ``correlator_hop`` from there to the Create (the correlator's);
- the job's own batch histograms (``scorer_incidents_batch_duration_seconds``,
  ``scorer_incidents_batch_records``), scraped from its ``/metrics`` before it stops: how
  long each stage's batches spend building outputs and committing, and how big they are.
"""

from __future__ import annotations

import json
import math
import urllib.request
from collections import defaultdict
from typing import Any

import msgspec
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from scorer.incidents import Member

_MEMBER = msgspec.json.Decoder(Member)


def copied(record: Any) -> str | None:
    """A passthrough copy of an opening finding: its uid."""
    return next((v.decode() for name, v in record.headers or () if name == "bench-open"), None)


def created(record: Any) -> str | None:
    """An incident's Create: its key (``host:<name>``)."""
    doc = json.loads(record.value)
    return str(doc["unmapped"]["incident"]["key"]) if doc.get("activity_id") == 1 else None


def routed_key(record: Any) -> str | None:
    """A digest the router committed to the keyed topic: its key (the host's first marks hop 1)."""
    return _MEMBER.decode(record.value).key


def percentiles(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {}
    a = np.array(ms)
    return {**{f"p{q}_ms": round(float(np.percentile(a, q)), 1) for q in (50, 90, 99)},
            "max_ms": round(float(a.max()), 1)}


def hops(sent: dict[str, float], routed: dict[str, float], created: dict[str, float]) -> dict[str, Any]:
    """Opening finding's key -> send time, first digest time, Create time: the two hops."""
    both = [k for k in sent if k in routed and k in created]
    return {"router_hop": percentiles([(routed[k] - sent[k]) * 1000 for k in both]),
            "correlator_hop": percentiles([(created[k] - routed[k]) * 1000 for k in both])}


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return str(resp.read().decode())


def batch_summary(text: str) -> dict[str, dict[str, Any]]:
    """Stage -> per step: batches, mean and bucket-bound p99 (ms; records for the batch size)."""
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    sums: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in ("scorer_incidents_batch_duration_seconds", "scorer_incidents_batch_records"):
            continue
        for s in family.samples:
            key = (s.labels["stage"], s.labels.get("step", "records"))
            if s.name.endswith("_bucket"):
                buckets[key].append((float(s.labels["le"]), s.value))
            elif s.name.endswith("_sum"):
                sums[key] = s.value
            elif s.name.endswith("_count"):
                counts[key] = s.value
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    for key, n in counts.items():
        if not n:
            continue
        scale = 1 if key[1] == "records" else 1000
        p99 = next((le for le, c in sorted(buckets[key]) if c >= 0.99 * n), math.inf)
        out[key[0]][key[1]] = {"batches": int(n), "mean": round(sums[key] / n * scale, 1),
                               "p99_at_most": p99 * scale if math.isfinite(p99) else None}
    return dict(out)
