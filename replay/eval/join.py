"""Joining ground truth, scores and alerts by event uid.

Scores are :class:`ScoredEvent` JSON lines; alerts are OCSF Detection Findings linked to
their event by ``finding_info.related_events[0].uid``. Either file may be plain JSON lines
(``scorer replay --to embedded``) or a ``scorer record`` dump of the Kafka topic, whose
record timestamps give the end-to-end latency. Delivery is at least once, so a uid may come
twice: the first is kept and the duplicates are counted, never silently merged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from scorer.captures.recorded import Envelope, is_record_file, read_envelopes
from scorer.pipeline.outcome import ScoredEvent

from .truth import TruthRow, read_truth


class AlertRow(msgspec.Struct, frozen=True):
    uid: str
    kind: str
    severity: str
    score: float
    kafka_ms: int | None = None  # timestamp of the alert record, when read from Kafka
    kafka_ts_type: int | None = None  # of kafka_ms: 0 CreateTime, 1 LogAppendTime


class Joined(msgspec.Struct):
    truth: list[TruthRow]
    scores: dict[str, ScoredEvent]
    alerts: dict[str, AlertRow]
    score_ms: dict[str, int]
    duplicates: dict[str, int]
    unmatched: dict[str, int]  # scores / alerts whose uid is not in the truth
    bad_lines: dict[str, int]
    replay: dict[str, Any] | None = None


class _Finding(msgspec.Struct):
    finding_info: dict[str, Any]
    severity: str = "Unknown"
    unmapped: dict[str, Any] = {}


class _Value(NamedTuple):
    value: bytes
    kafka_ms: int | None = None  # the Kafka timestamp of a recorded record
    kafka_ts_type: int | None = None


def record_values(path: Path, bad: Counter[str]) -> Iterator[_Value]:
    """Every value of a plain or recorded file, with its Kafka timestamp when recorded."""
    if is_record_file(path):
        for env in read_envelopes(path):
            if isinstance(env, Envelope) and env.value is not None:
                yield _Value(env.value, env.timestamp, env.timestamp_type)
            else:
                bad[path.name] += 1
        return
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                yield _Value(line)


def _alert(value: _Value, decoder: msgspec.json.Decoder[_Finding]) -> AlertRow:
    f = decoder.decode(value.value)
    uid = f.finding_info["related_events"][0]["uid"]
    scorer = f.unmapped.get("scorer", {})
    kind = scorer.get("kind") or f.finding_info["related_events"][0].get("type", "?")
    score = float(scorer.get("score", float("nan")))
    return AlertRow(str(uid), str(kind), f.severity, score, value.kafka_ms, value.kafka_ts_type)


def join(
    truth_path: Path,
    scores_path: Path | None,
    alerts_path: Path | None,
    replay_summary: Path | None = None,
) -> Joined:
    duplicates: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    truth: dict[str, TruthRow] = {}
    for row in read_truth(truth_path):
        if row.uid in truth:
            duplicates["truth"] += 1
        else:
            truth[row.uid] = row
    scores: dict[str, ScoredEvent] = {}
    score_ms: dict[str, int] = {}
    if scores_path is not None:
        decoder = msgspec.json.Decoder(ScoredEvent)
        for value, ms, _ in record_values(scores_path, bad):
            try:
                s = decoder.decode(value)
            except msgspec.DecodeError:
                bad[scores_path.name] += 1
                continue
            if s.uid in scores:
                duplicates["scores"] += 1
                continue
            scores[s.uid] = s
            if ms is not None:
                score_ms[s.uid] = ms
    alerts: dict[str, AlertRow] = {}
    if alerts_path is not None:
        finding = msgspec.json.Decoder(_Finding)
        for item in record_values(alerts_path, bad):
            try:
                a = _alert(item, finding)
            except (msgspec.DecodeError, KeyError, IndexError, TypeError, ValueError):
                bad[alerts_path.name] += 1
                continue
            if a.uid in alerts:
                duplicates["alerts"] += 1
            else:
                alerts[a.uid] = a
    unmatched = {
        "scores": sum(1 for u in scores if u not in truth),
        "alerts": sum(1 for u in alerts if u not in truth),
    }
    replay = None
    if replay_summary is not None and replay_summary.is_file():
        replay = msgspec.json.decode(replay_summary.read_bytes())
    return Joined(
        list(truth.values()),
        scores,
        alerts,
        score_ms,
        dict(duplicates),
        unmatched,
        dict(bad),
        replay,
    )
