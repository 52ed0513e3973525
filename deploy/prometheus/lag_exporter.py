"""Consumer-group lag as Prometheus series, named as kafka_exporter names them.

    python -m deploy.prometheus.lag_exporter [--config scorer.yaml] [--group REGEX] [--port 9308]

``kafka_consumergroup_lag{consumergroup,topic,partition}`` = log end offset - committed
offset, plus ``kafka_consumergroup_current_offset`` and ``kafka_topic_partition_current_offset``.
The alert rules and the dashboard read these names, so a cluster that already runs
danielqsj/kafka_exporter needs nothing of this; it exists because that exporter cannot be
built here (the Go module proxy refuses it) and the live Prometheus test needs real lag.
Kafka connection (TLS/SASL included) comes from the scorer's settings (``SCORER_KAFKA__*``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.registry import Collector

from scorer.config import KafkaSettings, load_settings
from scorer.kafka.clients import admin_client, make_reader
from scorer.service.http import HealthServer
from scorer.service.signals import stop_on_signals

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """Offsets read by the last poll: what every scrape until the next poll reports."""

    committed: dict[tuple[str, TopicPartition], int] = field(default_factory=dict)
    end: dict[TopicPartition, int] = field(default_factory=dict)
    polls: int = 0


class LagCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s, labels = self.snapshot, ["consumergroup", "topic", "partition"]
        lag = GaugeMetricFamily("kafka_consumergroup_lag", "Log end offset minus committed offset", labels=labels)
        current = GaugeMetricFamily("kafka_consumergroup_current_offset", "Committed offset", labels=labels)
        for (group, tp), offset in sorted(s.committed.items()):
            values = [group, tp.topic, str(tp.partition)]
            current.add_metric(values, offset)
            if tp in s.end:
                lag.add_metric(values, max(s.end[tp] - offset, 0))
        end = GaugeMetricFamily("kafka_topic_partition_current_offset", "Log end offset",
                                labels=["topic", "partition"])
        for tp, offset in sorted(s.end.items()):
            end.add_metric([tp.topic, str(tp.partition)], offset)
        yield from (lag, current, end)


async def poll_once(kafka: KafkaSettings, admin: AIOKafkaAdminClient, groups: re.Pattern[str],
                    snapshot: Snapshot) -> None:
    """Committed offsets of every matching group, then the end offsets of their partitions."""
    listed = await admin.list_consumer_groups()
    committed: dict[tuple[str, TopicPartition], int] = {}
    for group, *_ in listed:
        if not groups.fullmatch(group):
            continue
        for tp, meta in (await admin.list_consumer_group_offsets(group)).items():
            if meta.offset >= 0:
                committed[(group, tp)] = meta.offset
    partitions = sorted({tp for _, tp in committed})
    end: dict[TopicPartition, int] = {}
    if partitions:
        reader = make_reader(kafka, "lag-exporter")
        await reader.start()
        try:
            end = dict(await reader.end_offsets(partitions))
        finally:
            await reader.stop()
    snapshot.committed, snapshot.end = committed, end
    snapshot.polls += 1


async def run(kafka: KafkaSettings, groups: re.Pattern[str], interval_s: float, host: str, port: int) -> None:
    snapshot, registry, stop = Snapshot(), CollectorRegistry(), asyncio.Event()
    registry.register(LagCollector(snapshot))
    http = HealthServer(registry, lambda: snapshot.polls > 0, host=host, port=port)
    await http.start()
    stop_on_signals(stop.set)
    log.info("lag exporter up; metrics on :%d", http.port)
    try:
        async with admin_client(kafka) as admin:
            while not stop.is_set():
                try:
                    await poll_once(kafka, admin, groups, snapshot)
                except Exception as exc:  # a broker hiccup: keep the last snapshot, retry next round
                    log.warning("lag poll failed: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval_s)
    finally:
        await http.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.prometheus.lag_exporter",
                                     description="Consumer-group lag as Prometheus series (kafka_exporter's names).")
    parser.add_argument("--config", type=Path, help="scorer YAML settings file (default: SCORER_* environment only)")
    parser.add_argument("--group", default=".*", help="regex of the consumer groups to export (default: all)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between offset polls (default: 10)")
    parser.add_argument("--host", default="0.0.0.0", help="address /metrics listens on (default: 0.0.0.0)")
    parser.add_argument("--port", type=int, default=9308, help="port of /metrics, kafka_exporter's (default: 9308)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings(args.config)
    asyncio.run(run(settings.kafka, re.compile(args.group), args.interval, args.host, args.port))


if __name__ == "__main__":
    main()
