"""Event-loop lag, GC pauses and the per-label histograms they and the stages export."""

from __future__ import annotations

import asyncio
import gc
import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scorer.metrics.latency import LabelledHistogram
from scorer.metrics.runtime import GcPauses, LoopLag


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


async def test_a_blocked_event_loop_shows_as_lag() -> None:
    registry = CollectorRegistry()
    lag = LoopLag(registry, interval=0.005)
    lag.start()
    await asyncio.sleep(0.02)  # a few probes on an idle loop
    time.sleep(0.1)  # the loop can serve nothing for 100 ms: the probe due meanwhile fires late
    await asyncio.sleep(0.02)
    await lag.stop()
    assert lag.lag.quantile(1.0) >= 0.09, "the probe due during the block fired at least ~95 ms late"
    count = _samples(registry)[("scorer_event_loop_lag_seconds_count", ())]
    assert count >= 2


def test_every_collection_is_timed_by_generation() -> None:
    registry = CollectorRegistry()
    pauses = GcPauses(registry)
    pauses.install()
    pauses.install()  # once per process, however often asked
    try:
        garbage = []
        for _ in range(100):
            a: list[object] = []
            a.append(a)  # a cycle: only the collector frees it
            garbage.append(a)
        del garbage, a
        gc.collect(2)
    finally:
        pauses.uninstall()
    samples = _samples(registry)
    assert samples[("scorer_gc_pause_seconds_count", (("generation", "2"),))] == 1
    assert samples[("scorer_gc_collected_objects_total", ())] >= 100
    gc.collect()  # uninstalled: no more observations
    assert _samples(registry)[("scorer_gc_pause_seconds_count", (("generation", "2"),))] == 1


def test_labelled_histogram_buckets_are_cumulative_per_label() -> None:
    registry = CollectorRegistry()
    h = LabelledHistogram("scorer_stage_seconds", "Time per micro-batch stage", "stage", registry=registry)
    for seconds in (0.0001, 0.001, 0.01):
        h.observe("decode", seconds)
    h.observe("ack", 0.002, weight=5)
    samples = _samples(registry)
    assert samples[("scorer_stage_seconds_count", (("stage", "decode"),))] == 3
    assert samples[("scorer_stage_seconds_count", (("stage", "ack"),))] == 5
    assert abs(samples[("scorer_stage_seconds_sum", (("stage", "ack"),))] - 0.01) < 1e-12
    decode = sorted((float(dict(k[1])["le"]), v) for k, v in samples.items()
                    if k[0] == "scorer_stage_seconds_bucket" and dict(k[1])["stage"] == "decode")
    counts = [v for _, v in decode]
    assert counts == sorted(counts) and counts[-1] == 3
    assert h.quantile("decode", 0.5) >= 0.001 > h.quantile("decode", 0.3)
