"""A transactional producer that cannot start says so within its bound instead of waiting
for ever (the soak of 2026-12-04: a restarted scorer stuck in InitProducerId for 300 s)."""

from __future__ import annotations

import os
import signal

import pytest

from scorer.config import KafkaSettings
from scorer.errors import KafkaUnavailable
from scorer.kafka.clients import make_producer
from scorer.kafka.transactions import start_transactional
from tests.support.kafka import KafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def test_a_broker_that_never_answers_gives_one_line_not_a_hang(own_kafka: KafkaBroker) -> None:
    # A frozen broker accepts the connection (the kernel does) and never answers: the start
    # cannot succeed however fast or slow the machine, so the bound is what ends it.
    pid = own_kafka.pid()
    assert pid is not None
    producer = make_producer(KafkaSettings(bootstrap_servers=own_kafka.bootstrap), transactional_id="frozen-broker")
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(KafkaUnavailable, match="'frozen-broker' did not start within 2 s"):
            await start_transactional(producer, "frozen-broker", 2.0)
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_a_live_broker_starts_it(own_kafka: KafkaBroker) -> None:
    producer = make_producer(KafkaSettings(bootstrap_servers=own_kafka.bootstrap), transactional_id="live-broker")
    await start_transactional(producer, "live-broker", 120.0)
    try:
        await producer.begin_transaction()
        await producer.send_and_wait("transactional-start", b"x")
        await producer.commit_transaction()
    finally:
        await producer.stop()
