"""What consuming costs before any scoring: the Kafka client's CPU per event.

    python -m scorer.bench.consume --stream realistic --events 200000 --rounds 2

The stream is preloaded into fresh topics (one per kind, as a drain's), then each variant
reads all of it in a fresh process and turns it into the scoring loop's ``InputRecord`` list
(``fetched_records``), timed from the end of its first non-empty fetch (start-up left
out):

- ``aiokafka``: the scorer's own consumer (``scorer.kafka.clients.make_consumer``) read as
  the scoring loop reads it (``scorer.pipeline.source.fetch_inputs``: the fetched record
  batches built into InputRecords without a ConsumerRecord each, where that fast path runs),
  CRC checks as configured by default (off);
- ``aiokafka-crc``: the same with ``kafka.check_crcs`` on (Kafka's Java client's default);
- ``aiokafka-getmany``: the same consumer through aiokafka's public ``getmany()`` (a
  ``ConsumerRecord`` per record), what the loop did before ``scorer.kafka.fetch``;
- ``librdkafka``: confluent-kafka's consumer (librdkafka, C; present where the ``bench``
  extra installed Quix Streams), CRC checks off (its default), the same records built.

Variants alternate round by round, so a drift of the machine lands on all of them. A drain's
CPU per event (``scorer bench``) is this plus the scoring plus producing the outputs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from typing import Any

from scorer.bench.harness import drop_topics, make_topics
from scorer.bench.loadgen import LoadGenerator, Payload, payloads, templates
from scorer.bench.realistic import add_stream_arguments, stream_templates
from scorer.config import KafkaSettings
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind
from scorer.pipeline.records import InputRecord

VARIANTS = ("aiokafka", "aiokafka-crc", "aiokafka-getmany", "librdkafka")
_BATCH = 2000


async def _aiokafka(bootstrap: str, topics: dict[str, EventKind], partitions: int, events: int,
                    crc: bool, public: bool) -> tuple[int, float, float]:
    from aiokafka import TopicPartition

    from scorer.kafka.clients import make_consumer
    from scorer.kafka.fetch import refused
    from scorer.pipeline.source import fetch_inputs, fetched_records

    consumer = make_consumer(KafkaSettings(bootstrap_servers=bootstrap, check_crcs=crc), [], group_id=None)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(t, p) for t in topics for p in range(partitions)])
        if not public and (why := refused(consumer)):  # the variant would measure getmany() again
            print(f"fetch_inputs takes getmany() here: {why}", file=sys.stderr)
        got, start = 0, None
        while got < events:
            fetched = (await consumer.getmany(timeout_ms=100, max_records=_BATCH) if public else
                       await fetch_inputs(consumer, topics, timeout_ms=100, max_records=_BATCH))
            got += len(fetched_records(fetched, topics)[0])
            if got and start is None:  # timed from the end of the first fetch on
                start = (time.process_time(), time.perf_counter(), got)
    finally:
        await consumer.stop()
    assert start is not None
    return got - start[2], time.process_time() - start[0], time.perf_counter() - start[1]


def _librdkafka(bootstrap: str, topics: dict[str, EventKind], partitions: int, events: int) -> tuple[int, float, float]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "scorer-bench-consume",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    consumer.assign([TopicPartition(t, p, 0) for t in topics for p in range(partitions)])
    got, start = 0, None
    try:
        while got < events:
            messages = consumer.consume(_BATCH, 0.1)
            records = [InputRecord(topics[m.topic()], m.value(), m.key(), m.topic(), m.partition(), m.offset(),
                                   m.timestamp()[1])
                       for m in messages]
            got += len(records)
            if got and start is None:
                start = (time.process_time(), time.perf_counter(), got)
    finally:
        consumer.close()
    assert start is not None
    return got - start[2], time.process_time() - start[0], time.perf_counter() - start[1]


def _variant(args: argparse.Namespace) -> dict[str, Any]:
    topics = {t: EventKind(k) for t, k in json.loads(args.topics).items()}
    if args.variant == "librdkafka":
        n, cpu, wall = _librdkafka(args.bootstrap, topics, args.partitions, args.events)
    else:
        n, cpu, wall = asyncio.run(_aiokafka(args.bootstrap, topics, args.partitions, args.events,
                                             args.variant == "aiokafka-crc", args.variant == "aiokafka-getmany"))
    return {"variant": args.variant, "events": n, "cpu_us_per_event": round(cpu / n * 1e6, 3),
            "wall_us_per_event": round(wall / n * 1e6, 3)}


def _available(variant: str) -> bool:
    if variant != "librdkafka":
        return True
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        return False
    return True


async def preload(args: argparse.Namespace) -> tuple[list[Payload], dict[EventKind, str], str]:
    """``args.events`` of ``--stream`` produced into fresh topics: the events (kind, key,
    value), the topic of each kind, and the run's output topic's name (drop_topics')."""
    kinds = tuple(EventKind)
    items = list(payloads(stream_templates(args, templates(bundled_capture(), kinds)), args.events))
    topics, out = await make_topics(args.bootstrap, kinds, args.partitions)
    await LoadGenerator(args.bootstrap, topics, len(items)).run(items)
    return items, topics, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of " + ",".join(VARIANTS))
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # one variant, in its own process
    parser.add_argument("--topics", help=argparse.SUPPRESS)
    add_stream_arguments(parser)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(_variant(args)))
        return
    _, preloaded, output_topic = asyncio.run(preload(args))
    topics = json.dumps({t: k.value for k, t in preloaded.items()})
    results: list[dict[str, Any]] = []
    try:
        for _ in range(args.rounds):
            for variant in [v for v in args.variants.split(",") if _available(v)]:
                out = subprocess.run([sys.executable, "-m", "scorer.bench.consume", "--variant", variant,
                                      "--topics", topics, "--bootstrap", args.bootstrap, "--events",
                                      str(args.events), "--partitions", str(args.partitions)],
                                     check=True, capture_output=True, text=True).stdout
                results.append(json.loads(out.strip().splitlines()[-1]))
                print(out.strip().splitlines()[-1], flush=True)
    finally:
        asyncio.run(drop_topics(args.bootstrap, output_topic))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"events": args.events, "stream": args.stream, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
