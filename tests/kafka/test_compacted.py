"""Reading a compacted topic to its end: the fetch loop stops at the end offsets of when it
started, forgets partitions unassigned meanwhile, and gives up at its deadline; the JSON
fold keeps the latest value per key, deletes on a tombstone and skips junk."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from aiokafka import TopicPartition

from scorer.kafka import fetching, read_to_end, read_until
from scorer.kafka.compacted import decode_into

A, B = TopicPartition("scorer.control", 0), TopicPartition("scorer.control", 1)


@dataclass
class Msg:
    offset: int
    key: bytes | None
    value: bytes | None


class FakeConsumer:
    """Each getmany() returns the next ``step`` records of every assigned partition."""

    def __init__(self, logs: Mapping[TopicPartition, list[Msg]], step: int = 2) -> None:
        self.logs = dict(logs)
        self.step = step
        self.positions = dict.fromkeys(logs, 0)
        self.fetches = 0

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.logs[tp]) for tp in tps}

    async def getmany(self, *tps: TopicPartition, timeout_ms: int, max_records: int | None = None
                      ) -> dict[TopicPartition, list[Msg]]:
        self.fetches += 1
        out = {}
        for tp, at in self.positions.items():
            if records := self.logs[tp][at:at + self.step]:
                out[tp] = records
                self.positions[tp] = at + len(records)
        return out


class State(msgspec.Struct):
    version: str


def _msg(offset: int, key: str, version: str | None) -> Msg:
    return Msg(offset, key.encode(), None if version is None else msgspec.json.encode(State(version)))


async def test_reads_every_partition_to_its_end_and_folds_the_latest_value_per_key() -> None:
    logs = {A: [_msg(0, "edr", "1"), _msg(1, "siem", "1"), _msg(2, "edr", "2"), _msg(3, "siem", None)],
            B: [_msg(0, "netflow", "3"), Msg(1, b"netflow", b"{not json")]}
    consumer = FakeConsumer(logs)
    out: dict[str, tuple[int, State]] = {}

    def fold(tp: TopicPartition, records: list[Any]) -> None:
        for m in records:
            decode_into(out, m.key, m.value, m.offset, State)

    assert await read_to_end(consumer, [A, B], fetching(consumer, fold))
    assert consumer.positions == {A: 4, B: 2} and consumer.fetches == 2
    assert out == {"edr": (2, State("2")), "netflow": (0, State("3"))}, "latest kept, tombstone deleted, junk skipped"


async def test_a_partition_unassigned_meanwhile_no_longer_counts() -> None:
    consumer = FakeConsumer({A: [_msg(i, "k", "1") for i in range(4)], B: [_msg(i, "k", "1") for i in range(40)]})

    async def fetch(timeout_ms: int) -> None:
        await consumer.getmany(timeout_ms=timeout_ms)
        consumer.positions.pop(B, None)  # revoked: a profile view drops it and its keys

    assert await read_until(consumer, {A: 4, B: 40}, fetch)
    assert consumer.positions == {A: 4}


async def test_gives_up_at_the_deadline() -> None:
    consumer = FakeConsumer({A: [_msg(i, "k", "1") for i in range(4)]}, step=0)  # never advances

    async def fetch(timeout_ms: int) -> None:
        await consumer.getmany(timeout_ms=timeout_ms)

    assert not await read_until(consumer, {A: 4}, fetch, timeout_s=0.0)
