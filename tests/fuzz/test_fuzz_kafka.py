"""~1,000 hostile records (tests/support/strategies.py) through the real Kafka into a real
`scorer run`: every record ends scored or dead-lettered with a reason, none is lost, and the
scorer is still alive afterwards.

Which records must be dead-lettered is known before reading the outputs: the same
BatchScorer, in process, scores the very records with the refs (topic, partition, offset)
the broker gave them. The ledger then requires the Kafka run to agree record by record:
exactly those dead-lettered, with the same reason, and every other one scored (with its
alert when its score alerts). Records over 300 kB are left to tests/fuzz (they would make
this test slow), apart from two fixed ones beyond the scorer's record limit, plus a
tombstone and records whose ``kind`` header names no kind.

Run more: SCORER_FUZZ_KAFKA_EXAMPLES=20000 pytest -s tests/fuzz/test_fuzz_kafka.py
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from hypothesis import Phase, given, settings

from scorer.config import Settings
from scorer.events.decode import DecodeFailure, EventDecoder
from scorer.events.structs import EventKind, SourceRef
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.pipeline.deadletter import header_dict
from scorer.pipeline.outcome import BatchOutcome
from scorer.pipeline.scoring import BatchScorer
from scorer.pipeline.source import input_record
from scorer.service.build import build_runtimes, load_rules
from tests.support import ocsf_schema
from tests.support.faults import (
    Ledger,
    Topics,
    new_topics,
    plaintext,
    read_outcomes,
    running_scorer,
    scorer_env,
    usable_kinds,
)
from tests.support.kafka import KafkaBroker
from tests.support.paths import MODEL_REPOSITORY
from tests.support.strategies import FUZZ, hostile_record

pytestmark = pytest.mark.data

EXAMPLES = int(os.environ.get("SCORER_FUZZ_KAFKA_EXAMPLES", "1000"))
MAX_BYTES = 300_000
Fuzzed = tuple[EventKind | None, bytes | None]
NO_KIND = b"no-such-kind"  # ``kind`` header of a record of no kind: the scorer must not guess one


def _hostile_inputs(kinds: tuple[EventKind, ...]) -> list[Fuzzed]:
    """EXAMPLES records from the fuzz strategies, unique by the uid they decode to (so the
    ledger can tell every scored one apart), plus the fixed edge cases."""
    drawn: list[Fuzzed] = []

    @settings(FUZZ, max_examples=EXAMPLES * 9 // 8, phases=[Phase.generate])  # some repeat a uid
    @given(hostile_record().filter(lambda r: len(r[1] or b"") <= MAX_BYTES and (r[0] is None or r[0] in kinds)))
    def draw(record: Fuzzed) -> None:
        drawn.append(record)

    draw()
    decoder, uids, out = EventDecoder(), set(), list[Fuzzed]()
    for i, (k, value) in enumerate(drawn):
        if len(out) == EXAMPLES:
            break
        event = decoder.decode(k, value, SourceRef("dry-run", 0, i))
        if not isinstance(event, DecodeFailure) and event.uid != f"dry-run:0:{i}":
            if event.uid in uids:
                continue  # the same source uid twice (a sample drawn twice): keep the first
            uids.add(event.uid)
        out.append((k, value))
    kind = kinds[0]
    return [*out, (kind, None), (kind, b"{" * 300_000), (kind, b'{"uid": "' + b"x" * 900_000 + b'"}')]


async def _produce(kafka: KafkaBroker, topics: Topics, inputs: list[Fuzzed]) -> list[Any]:
    """Every input to its kind's topic (a record of no kind: with a ``kind`` header naming
    none); the broker's RecordMetadata of each, in order."""
    producer = AIOKafkaProducer(**plaintext(kafka), acks="all", linger_ms=5, max_request_size=2**20)
    await producer.start()
    try:
        futures = [  # keyed: a tombstone needs a key
            await producer.send(topics.input(kind or topics.kinds[0]), value, key=str(i).encode(),
                                headers=None if kind else [("kind", NO_KIND)])
            for i, (kind, value) in enumerate(inputs)
        ]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


async def _expected(inputs: list[Fuzzed], placed: list[Any]) -> BatchOutcome:
    """What the scorer must make of the inputs: the same BatchScorer, in process."""
    settings_ = Settings(kinds=usable_kinds(), inference={"model_repository": MODEL_REPOSITORY})  # type: ignore[arg-type]
    scorer = BatchScorer(build_runtimes(settings_, rules=load_rules(settings_)), OnnxRuntimeBackend(MODEL_REPOSITORY))
    records = [input_record(kind, value, str(i).encode(), meta.topic, meta.partition, meta.offset)
               for i, ((kind, value), meta) in enumerate(zip(inputs, placed, strict=True))]
    return await scorer.score(records)


def _ref(m: ConsumerRecord[bytes, bytes]) -> str:
    """A dead letter's input record, as ``topic:partition:offset`` from its headers."""
    h = header_dict(m.headers)
    return f"{h.get('topic')}:{h.get('partition')}:{h.get('offset')}"


async def test_fuzzed_records_through_kafka_are_scored_or_dead_lettered(kafka: KafkaBroker, tmp_path: Path) -> None:
    started = time.monotonic()
    topics = await new_topics(kafka)
    inputs = _hostile_inputs(topics.kinds)
    async with running_scorer(scorer_env(kafka.bootstrap, topics), tmp_path / "scorer.log") as proc:
        placed = await _produce(kafka, topics, inputs)
        expected = await _expected(inputs, placed)
        bad = {f"{f.ref.topic}:{f.ref.partition}:{f.ref.offset}": f.reason for f in expected.failures}
        ledger = Ledger({s.uid for s in expected.scores}, set(bad), topics, dead_letter_id=_ref)
        outputs = await read_outcomes(kafka, ledger, timeout=180)
        alive = proc.pid is not None
        rc = proc.stop()
    report = ledger.report(outputs)
    megabytes = sum(len(v or b"") for _, v in inputs) / 1e6
    print(f"\n{len(inputs)} fuzzed records ({megabytes:.1f} MB) through Kafka in {time.monotonic() - started:.0f}s: "
          f"{report}")
    assert len(expected.scores) + len(bad) == len(inputs)  # the in-process oracle accounts for all
    assert alive and rc == 0, proc.log_tail()
    assert not report.problems(), report.problems()
    assert report.duplicate_count == 0, report.duplicates
    assert ledger.tally(outputs).reasons == bad, "a dead letter's reason differs from the in-process scorer's"
    assert len(set(bad.values())) >= 3 and len(expected.scores) >= len(inputs) // 10, report  # both paths exercised
    alert_topics = {topics.alerts(k) for k in topics.kinds}
    ocsf_schema.assert_valid(m.value for m in outputs if m.topic in alert_topics)  # hostile input, valid OCSF
