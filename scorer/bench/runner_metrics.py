"""What a benchmarked runner says of itself on ``/metrics``: a scrape, and the numbers a run
reports from two of them (records per worker, per-batch means, latency histograms' quantiles).

Apart from :mod:`scorer.bench.harness`, which runs the phases, because reading the
Prometheus text is the same whichever phase asks (the drain scrapes once after it, the
fixed rate before and after its measured phase) and is tested without a runner.
"""

from __future__ import annotations


def scrape(port: int | None) -> dict[str, float] | None:
    """The runner's /metrics samples: name{labels} -> value (None without a port)."""
    if port is None:
        return None
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines() if line.startswith("scorer_")
    }


def consumed_by_worker(samples: dict[str, float] | None) -> dict[str, float]:
    """``scorer_events_consumed_total`` of a scrape summed over kinds, by its ``worker`` label
    ("" where there is none: one process)."""
    out: dict[str, float] = {}
    for name, value in (samples or {}).items():
        if name.startswith("scorer_events_consumed_total"):
            worker = _label(name, "worker")
            out[worker] = out.get(worker, 0.0) + value
    return out


def _label(sample: str, label: str) -> str:
    """The value of ``label`` in a sample's ``name{label="value",...}`` ("" without it)."""
    head = f'{label}="'
    return sample.split(head, 1)[1].split('"', 1)[0] if head in sample else ""


def batch_means(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float]:
    if before is None or after is None:
        return {}

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    batches = delta("scorer_batch_records_count")
    if batches <= 0:
        return {}
    out = {"records": round(delta("scorer_batch_records_sum") / batches, 1)}
    for name in after:
        if name.startswith("scorer_stage_seconds_sum"):
            stage = _label(name, "stage")
            out[f"{stage}_ms"] = round(delta(name) / batches * 1000, 3)
    return out


def histograms(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, dict[str, float]]:
    from scorer.bench.latency import histogram_quantiles  # that module runs the harness's phases

    return histogram_quantiles(before, after)
