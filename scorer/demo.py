"""``scorer demo``: the embedded default, no Kafka and no Triton.

Replays the bundled, attributed capture (all three kinds) through the same BatchScorer the
service uses, with in-process ONNX Runtime, writes the alerts as JSON lines and prints a
summary. Latency here is the scoring time of each event's micro-batch (no broker).
"""

from __future__ import annotations

import gzip
import time
from collections import Counter
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from scorer.events.structs import EventKind
from scorer.pipeline.records import InputRecord
from scorer.pipeline.scoring import BatchScorer
from scorer.pipeline.source import input_record

DEMO_CAPTURE = "demo_capture.jsonl.gz"


class CaptureLine(msgspec.Struct):
    kind: str
    event: msgspec.Raw


def bundled_capture() -> Path:
    return Path(str(resources.files("scorer") / "data" / DEMO_CAPTURE))


def capture_records(path: Path) -> Iterator[InputRecord]:
    """Canonical capture lines -> the bytes a producer would have put on each kind's topic."""
    opener = gzip.open if path.suffix == ".gz" else open
    decoder = msgspec.json.Decoder(CaptureLine)
    with opener(path, "rb") as fh:
        for offset, line in enumerate(fh):
            if not line.strip():
                continue
            item = decoder.decode(line)
            kind = EventKind(item.kind)
            yield input_record(kind, bytes(item.event), None, f"capture.{kind.value}", 0, offset)


class DemoReport(msgspec.Struct):
    events: int
    scored: int
    dead_lettered: int
    alerts_by_kind: dict[str, int]
    alerts_by_severity: dict[str, int]
    seconds: float
    events_per_second: float
    latency_ms: dict[str, float]
    alerts_path: str
    batch_size: int = 512


async def run_demo(scorer: BatchScorer, capture: Path, out: Path, batch_size: int = 512) -> DemoReport:
    records = list(capture_records(capture))
    alerts_by_kind: Counter[str] = Counter()
    severities: Counter[str] = Counter()
    scored = dead = 0
    per_event_latency: list[np.ndarray[Any, np.dtype[np.float64]]] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with out.open("wb") as fh:
        for i in range(0, len(records), batch_size):
            batch = records[i : i + batch_size]
            t0 = time.perf_counter()
            outcome = await scorer.score(batch)
            per_event_latency.append(np.full(len(batch), time.perf_counter() - t0))
            scored += sum(outcome.scored.values())
            dead += len(outcome.dead_letters)
            for alert in outcome.alerts:
                fh.write(alert.value + b"\n")
                finding = msgspec.json.decode(alert.value)
                alerts_by_kind[finding["unmapped"]["scorer"]["kind"]] += 1
                severities[finding["severity"]] += 1
    seconds = time.perf_counter() - start
    lat = np.concatenate(per_event_latency) * 1000 if per_event_latency else np.zeros(1)
    return DemoReport(
        events=len(records),
        scored=scored,
        dead_lettered=dead,
        alerts_by_kind=dict(alerts_by_kind),
        alerts_by_severity=dict(severities),
        seconds=round(seconds, 3),
        events_per_second=round(len(records) / seconds, 1) if seconds else 0.0,
        latency_ms={q: round(float(np.percentile(lat, p)), 3) for q, p in (("p50", 50), ("p99", 99), ("p99.9", 99.9))},
        alerts_path=str(out),
        batch_size=batch_size,
    )


def format_report(report: DemoReport) -> str:
    lines = [
        f"events        {report.events}  (scored {report.scored}, dead-lettered {report.dead_lettered})",
        f"alerts        {sum(report.alerts_by_kind.values())}  "
        + "  ".join(f"{k}={v}" for k, v in sorted(report.alerts_by_kind.items())),
        "severity      " + "  ".join(f"{k}={v}" for k, v in sorted(report.alerts_by_severity.items())),
        f"throughput    {report.events_per_second:,.0f} events/s  ({report.seconds:.2f} s)",
        "latency (ms)  " + "  ".join(f"{k}={v}" for k, v in report.latency_ms.items())
        + f"  (an event's wait for its {report.batch_size}-event micro-batch to be scored; no Kafka)",
        f"alerts file   {report.alerts_path}",
    ]
    return "\n".join(lines)
