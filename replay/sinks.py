"""Where a replay goes: a Kafka broker (the live path) or the BatchScorer in process.

Both write the truth sidecar; the embedded one also writes what the Kafka deployment would
publish (OCSF alerts, per-event scores), so ``scorer eval`` reads either the same way.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer

from scorer.captures import ReadError
from scorer.captures.recorded import Envelope
from scorer.config import Settings
from scorer.errors import ConfigError
from scorer.kafka import make_producer
from scorer.pipeline.records import InputRecord
from scorer.pipeline.scoring import BatchScorer
from scorer.pipeline.sink import score_records

from .eval.truth import TruthWriter, truth_row
from .incidents import IncidentWriter, wait_incidents
from .outgoing import Outgoing
from .player import Pacing, Summary, play
from .record import end_offsets, read_range, wait_committed, write_envelopes

# Outstanding sends before waiting for acks: bounds memory, keeps the producer's batches full.
MAX_IN_FLIGHT = 5000


class KafkaSink:
    """Produces to ``events.<kind>`` (or a recorded record's topic and partition).

    ``topic`` overrides the destination of every record. ``produced`` ends as the last
    offset written per (topic, partition), which is what waiting for the scorer needs.
    """

    def __init__(
        self, settings: Settings, truth: TruthWriter | None, topic: str | None = None
    ) -> None:
        self.settings = settings
        self.truth = truth
        self.topic = topic
        self.produced: dict[tuple[str, int], int] = {}
        self._producer: AIOKafkaProducer | None = None
        self._pending: list[tuple[Outgoing, asyncio.Future[Any]]] = []

    async def start(self) -> None:
        # Not transactional even when the scorer is: a replay is an ordinary upstream producer.
        self._producer = make_producer(self.settings.kafka)
        try:
            await self._producer.start()
        except BaseException:  # no broker: close it here, the caller never got a sink to close
            await self._producer.stop()
            self._producer = None
            raise

    def destination(self, item: Outgoing) -> str:
        if self.topic or item.topic:
            return str(self.topic or item.topic)
        if item.kind is None:
            raise ConfigError("a record without a kind or topic cannot be replayed to Kafka")
        return str(getattr(self.settings.topics, item.kind.value))

    async def send(self, item: Outgoing) -> None:
        assert self._producer is not None, "start() first"
        future = await self._producer.send(
            self.destination(item),
            item.value,
            key=item.key,
            partition=item.partition,
            headers=list(item.headers) or None,
        )
        self._pending.append((item, future))
        if len(self._pending) >= MAX_IN_FLIGHT:
            await self._drain()

    async def idle(self) -> None:
        """Nothing to do: the producer sends on its own (linger 1 ms)."""

    async def _drain(self) -> None:
        pending, self._pending = self._pending, []
        for item, future in pending:
            md = await future
            self.produced[(md.topic, md.partition)] = md.offset
            if self.truth is not None and item.labeled is not None:
                self.truth.write(
                    truth_row(
                        item.labeled,
                        topic=md.topic,
                        partition=md.partition,
                        offset=md.offset,
                        produced_ms=md.timestamp,
                        produced_ts_type=md.timestamp_type,
                    )
                )

    async def close(self) -> None:
        try:
            await self._drain()
        finally:
            if self._producer is not None:
                await self._producer.stop()


class EmbeddedSink:
    """Scores in micro-batches with a BatchScorer, as ``scorer demo`` does.

    A batch is scored when it is full or when the replay is about to wait, so paced replays
    are scored as they go instead of all at the end.
    """

    def __init__(
        self,
        scorer: BatchScorer,
        out_dir: Path,
        truth: TruthWriter,
        batch_size: int = 512,
        incidents: IncidentWriter | None = None,
    ) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.scorer = scorer
        self.incidents = incidents
        self.truth = truth
        self.batch_size = batch_size
        self.alerts_path, self.scores_path = out_dir / "alerts.jsonl", out_dir / "scores.jsonl"
        self._alerts = self.alerts_path.open("wb")
        self._scores = self.scores_path.open("wb")
        self._encoder = msgspec.json.Encoder()
        self._batch: list[InputRecord] = []
        self._offset = 0
        self.dead_letters: Counter[str] = Counter()
        self.scoring_seconds = 0.0
        scorer.collect_scores = True

    async def send(self, item: Outgoing) -> None:
        if item.kind is None:
            self.dead_letters["unknown_kind"] += 1
            return
        self._batch.append(InputRecord(item.kind, item.value, item.key, f"replay.{item.kind.value}", 0, self._offset,
                                       int(time.time() * 1000)))
        self._offset += 1
        if item.labeled is not None:
            self.truth.write(truth_row(item.labeled))
        if len(self._batch) >= self.batch_size:
            await self._score()

    async def idle(self) -> None:
        await self._score()

    async def _score(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        t0 = time.perf_counter()
        outcome = await self.scorer.score(batch)
        self.scoring_seconds += time.perf_counter() - t0
        self._alerts.writelines(a.value + b"\n" for a in outcome.alerts)
        if self.incidents is not None:
            self.incidents.batch(a.value for a in outcome.alerts)
        # The service's score records (scorer.pipeline.sink): written from the batch's columns.
        self._scores.writelines(r.value + b"\n" for r in score_records("scores", outcome.scores, self._encoder))
        self.dead_letters.update(f.reason for f in outcome.failures)

    async def close(self) -> None:
        try:
            await self._score()
        finally:
            self._alerts.close()
            self._scores.close()


async def replay_embedded(
    settings: Settings,
    items: Iterable[Outgoing | ReadError],
    pacing: Pacing,
    out_dir: Path,
    *,
    batch_size: int = 512,
    incidents: bool = False,
    **play_options: Any,
) -> Summary:
    """Score ``items`` in process; truth.jsonl, alerts.jsonl, scores.jsonl in ``out_dir``;
    with ``incidents``, the incident stage after the scorer: incidents.jsonl."""
    from scorer.service.build import build_scorer  # loads models: only when this path is taken

    scorer = build_scorer(settings)
    await scorer.backend.start()
    summary = Summary(target=f"embedded ({scorer.backend.name})", pacing=pacing.describe())
    writer = IncidentWriter(out_dir / "incidents.jsonl", settings.incidents) if incidents else None
    try:
        with TruthWriter(out_dir / "truth.jsonl") as truth:
            sink = EmbeddedSink(scorer, out_dir, truth, batch_size, writer)
            await play(items, sink, pacing, summary, **play_options)
    finally:
        await scorer.backend.close()
        if writer is not None:
            summary.incidents = writer.close()
    summary.dead_lettered = dict(sink.dead_letters)
    summary.scoring_seconds = round(sink.scoring_seconds, 4)
    summary.outputs = {
        "truth": str(truth.path),
        "alerts": str(sink.alerts_path),
        "scores": str(sink.scores_path),
    } | ({"incidents": str(writer.path)} if writer is not None else {})
    return write_summary(summary, out_dir)


async def replay_to_kafka(
    settings: Settings,
    items: Iterable[Outgoing | ReadError],
    pacing: Pacing,
    out_dir: Path,
    *,
    topic: str | None = None,
    wait_s: float | None = None,
    incidents: bool = False,
    **play_options: Any,
) -> Summary:
    """Produce ``items``; with ``wait_s``, wait for the scorer's consumer group to commit past
    them and collect what it published (alerts, and scores when a scores topic is set); with
    ``incidents`` too, then wait for the incident job to correlate those alerts
    (:func:`replay.incidents.wait_incidents`)."""
    collect = [settings.topics.alert_topic(k) for k in settings.kinds]
    collect += [settings.topics.scores] if settings.topics.scores else []
    # Offsets before the replay: only what this replay caused is collected afterwards.
    before = await end_offsets(settings, collect) if wait_s is not None else {}
    summary = Summary(target=f"kafka {settings.kafka.bootstrap_servers}", pacing=pacing.describe())
    with TruthWriter(out_dir / "truth.jsonl") as truth:
        sink = KafkaSink(settings, truth, topic)
        await sink.start()
        await play(items, sink, pacing, summary, **play_options)
    summary.outputs = {"truth": str(truth.path)}
    if wait_s is not None:
        alerts = await _collect(settings, sink.produced, before, wait_s, out_dir, summary)
        if incidents:
            summary.incidents_caught_up = await wait_incidents(settings, alerts, wait_s)
    return write_summary(summary, out_dir)


async def _collect(
    settings: Settings,
    produced: dict[tuple[str, int], int],
    before: dict[Any, int],
    wait_s: float,
    out_dir: Path,
    summary: Summary,
) -> list[Envelope]:
    """Wait for the scorer, then write what it published; returns the alerts."""
    group = settings.kafka.group_id
    done = await wait_committed(settings, group, produced, wait_s)
    if not done:
        print(
            f"replay: consumer group {group!r} did not commit past the replay "
            f"within {wait_s:g} s: collected alerts and scores are partial",
            file=sys.stderr,
        )
    summary.scorer_caught_up = done
    collect = [settings.topics.alert_topic(k) for k in settings.kinds]
    # Settled: an exactly-once scorer's commit is seen before its last batch's markers may be.
    after = await end_offsets(
        settings, [*collect, *([settings.topics.scores] if settings.topics.scores else [])],
        settle_s=wait_s if done else None,
    )
    alert_tps = {tp: o for tp, o in after.items() if tp.topic != settings.topics.scores}
    alerts = await read_range(settings, before, alert_tps)
    write_envelopes(alerts, out_dir / "alerts.jsonl")
    summary.outputs["alerts"] = str(out_dir / "alerts.jsonl")
    if settings.topics.scores:
        score_tps = {tp: o for tp, o in after.items() if tp.topic == settings.topics.scores}
        write_envelopes(await read_range(settings, before, score_tps), out_dir / "scores.jsonl")
        summary.outputs["scores"] = str(out_dir / "scores.jsonl")
    return alerts


def write_summary(summary: Summary, out_dir: Path) -> Summary:
    """summary.json next to truth.jsonl: eval reads the replay's counts and rate from it."""
    path = out_dir / "summary.json"
    summary.outputs["summary"] = str(path)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(summary)))
    return summary
