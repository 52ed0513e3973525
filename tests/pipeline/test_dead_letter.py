"""Bad input of every kind goes to the dead-letter topic with its reason and original bytes,
good records around it are still scored, and consumed = scored + dead-lettered."""

from __future__ import annotations

import hashlib
import json

import pytest
from prometheus_client import CollectorRegistry

from scorer.events.structs import EventKind
from tests.support.kafka import KafkaBroker
from tests.support.pipeline import kcat_consume, produce, running_scorer, scorer_settings, wait_for
from tests.support.samples import SAMPLES

pytestmark = pytest.mark.data


def _exported(registry: CollectorRegistry, family: str) -> float:
    """What /metrics says: the sum of a counter family's ``_total`` samples over all labels."""
    return sum(s.value for m in registry.collect() if m.name == family
               for s in m.samples if s.name == f"{family}_total")

FLOW = {"ts": 1655071198.4, "src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "dst_port": 443, "src_bytes": 10}

BAD: list[tuple[EventKind, bytes, str]] = [
    (EventKind.NETFLOW, b'{"ts": 1, "src_ip": ', "malformed_json"),
    (EventKind.NETFLOW, b"\xff\xfe\xfd not utf-8", "malformed_json"),
    (EventKind.NETFLOW, json.dumps({**FLOW, "src_bytes": {"nested": 1}}).encode(), "wrong_type"),
    (EventKind.NETFLOW, json.dumps({"ts": 1, "src_ip": "10.0.0.1"}).encode(), "missing_field"),
    (EventKind.NETFLOW, json.dumps({**FLOW, "duration": "NaN"}).encode(), "non_finite"),
    (EventKind.NETFLOW, json.dumps({**FLOW, "src_bytes": 1e300}).encode(), "out_of_range"),
    # Python's json.dumps writes these bare tokens by default; strict JSON has no NaN or infinity.
    (EventKind.NETFLOW, json.dumps({**FLOW, "duration": float("nan")}).encode(), "malformed_json"),
    (EventKind.NETFLOW, json.dumps({**FLOW, "src_bytes": float("-inf")}).encode(), "malformed_json"),
    (EventKind.EDR, json.dumps({"EventID": "one", "Hostname": "h", "UtcTime": "2020-01-01"}).encode(), "wrong_type"),
    (EventKind.EDR, json.dumps({"Event": {"System": {"EventID": 1}}}).encode(), "missing_field"),
    (EventKind.SIEM, json.dumps({"time": "soon", "name": "x", "short": "W"}).encode(), "bad_timestamp"),
    (EventKind.SIEM, json.dumps({"name": "x" * 400_000, "time": 1}).encode(), "oversized_record"),
    (EventKind.SIEM, b"42", "wrong_type"),
]


async def test_bad_records_are_dead_lettered_and_nothing_is_lost(kafka: KafkaBroker) -> None:
    settings = scorer_settings(kafka.bootstrap)
    good = {k: f()[:20] for k, f in SAMPLES.items()}
    for kind, sample in good.items():
        bad = [(b"bad", v) for k, v, _ in BAD if k == kind]
        records = [(k, v) for _, k, v in sample[:10]] + bad + [(k, v) for _, k, v in sample[10:]]
        await produce(kafka.bootstrap, getattr(settings.topics, kind.value), records)
    # An unknown kind: a header naming a kind the scorer does not have.
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    await producer.send_and_wait(settings.topics.siem, json.dumps(FLOW).encode(), headers=[("kind", b"dns")])
    await producer.stop()

    total = sum(len(v) for v in good.values()) + len(BAD) + 1
    async with running_scorer(settings) as (_, metrics):
        assert await wait_for(lambda: sum(metrics.accounting.consumed.values()) >= total, 90)
        acc = metrics.accounting
    assert acc.balanced(), acc.totals()
    assert acc.totals() == {"consumed": total, "scored": total - len(BAD) - 1, "dead_lettered": len(BAD) + 1}
    exported = {k: _exported(metrics.registry, f"scorer_events_{k}") for k in ("consumed", "scored", "dead_lettered")}
    assert exported == acc.totals()

    dlq = kcat_consume(kafka.bootstrap, settings.topics.dead_letter)
    assert len(dlq) == len(BAD) + 1
    by_value: dict[bytes, dict[str, str]] = {}
    for rec in dlq:
        headers = dict(zip(rec["headers"][0::2], rec["headers"][1::2], strict=True))
        assert headers["scorer.dlq.topic"].startswith(settings.topics.netflow.split(".")[0])
        assert int(headers["scorer.dlq.offset"]) >= 0 and headers["scorer.dlq.message"]
        by_value[(rec["payload"] or "").encode("utf-8", "surrogateescape")] = headers
    for kind, value, reason in BAD:
        if value.startswith(b"\xff"):
            continue  # kcat -J cannot show invalid UTF-8 byte for byte; checked below
        assert by_value[value]["scorer.dlq.reason"] == reason, value[:60]
        assert by_value[value]["scorer.dlq.topic"] == getattr(settings.topics, kind.value)
    reasons = sorted(h["scorer.dlq.reason"] for h in by_value.values())
    assert reasons.count("malformed_json") == 4 and "unknown_kind" in reasons

    # byte-exact original value, read with aiokafka
    from tests.support.pipeline import consume

    raw = await consume(kafka.bootstrap, settings.topics.dead_letter, len(BAD) + 1)
    assert {m.value for m in raw} >= {v for _, v, _ in BAD}


async def test_a_record_at_the_broker_size_limit_is_dead_lettered_not_crash_looped(kafka: KafkaBroker) -> None:
    """The dead letter adds headers to the original bytes: for a record already at the broker's
    message size limit, the whole original cannot go to the dead-letter topic. It goes there
    truncated (with its full size and sha256), and the records after it are still scored."""
    settings = scorer_settings(kafka.bootstrap)
    good = SAMPLES[EventKind.SIEM]()[:5]
    huge = b'{"name": "' + b"x" * 1_048_400 + b'", "time": 1}'  # ~1 MiB: the default limit
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, max_request_size=2 << 20)
    await producer.start()
    await producer.send_and_wait(settings.topics.siem, huge, key=b"huge")  # the broker accepts it
    await producer.stop()
    await produce(kafka.bootstrap, settings.topics.siem, [(k, v) for _, k, v in good])
    async with running_scorer(settings) as (_, metrics):
        assert await wait_for(lambda: metrics.accounting.scored.get("siem", 0) >= len(good), 60)
        acc = metrics.accounting
    assert acc.totals() == {"consumed": 6, "scored": 5, "dead_lettered": 1}, acc.totals()
    (rec,) = kcat_consume(kafka.bootstrap, settings.topics.dead_letter)
    headers = dict(zip(rec["headers"][0::2], rec["headers"][1::2], strict=True))
    assert headers["scorer.dlq.reason"] == "oversized_record"
    assert int(headers["scorer.dlq.original_bytes"]) == len(huge)
    assert headers["scorer.dlq.original_sha256"] == hashlib.sha256(huge).hexdigest()
    assert huge.startswith(rec["payload"].encode()) and len(rec["payload"]) < len(huge)
