"""A live stream for a fault test: produced at a fixed rate while the faults happen, stopped
by the test once the last fault is over, then read back until every input has its outcome.

    live = LiveFeed.start(kafka, topics, "b", rate=400)
    ...faults, scheduled on the scorer's progress...
    produced = live.stop()            # one more chunk follows: work no fault can have seen
    sent, ledger, outputs = await live.outcomes()
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord

from tests.support.faults.process import ScorerProcess, Topics, plaintext
from tests.support.faults.streams import Ledger, endless_stream, feed, read_topics
from tests.support.kafka import KafkaBroker


@dataclass
class LiveFeed:
    """:func:`endless_stream` ``tag`` fed into ``topics`` until :meth:`stop`."""

    kafka: KafkaBroker
    topics: Topics
    tag: str
    progress: list[int]  # records acknowledged so far (``progress[0]``)
    until: asyncio.Event
    task: asyncio.Task[int]

    @classmethod
    def start(cls, kafka: KafkaBroker, topics: Topics, tag: str, *, rate: float) -> LiveFeed:
        progress, until = [0], asyncio.Event()
        task = asyncio.create_task(feed(plaintext(kafka), topics, endless_stream(topics.kinds, tag), rate=rate,
                                        progress=progress, until=until))
        return cls(kafka, topics, tag, progress, until, task)

    @property
    def produced(self) -> int:
        return self.progress[0]

    def stop(self) -> int:
        """Ends the stream after one more chunk; what was produced before that chunk."""
        self.until.set()
        return self.produced

    async def outcomes(self, timeout: float = 120.0) -> tuple[int, Ledger, list[ConsumerRecord[bytes, bytes]]]:
        """Once the feed has ended: how many records it sent, their ledger, and their outputs
        (:func:`read_outcomes`)."""
        sent = await self.task
        ledger = Ledger.of(itertools.islice(endless_stream(self.topics.kinds, self.tag), sent), self.topics)
        return sent, ledger, await read_outcomes(self.kafka, ledger, timeout)


@dataclass(frozen=True)
class Ending:
    """What a fault test checks at the end of its stream (:func:`finish`)."""

    produced_by_then: int  # produced before the last chunk: work no fault can have seen
    sent: int
    ledger: Ledger
    outputs: list[ConsumerRecord[bytes, bytes]]
    rc: int  # the scorer's exit code on SIGTERM


async def finish(live: LiveFeed, proc: ScorerProcess, phase: int) -> Ending:
    """The end of a fault test: ``phase`` more events scored after the last fault, the feed
    stopped, every input's outcome read back, the scorer (which must still run) stopped."""
    await proc.scored_more(phase)
    produced_by_then = live.stop()
    sent, ledger, outputs = await live.outcomes()
    assert proc.pid is not None, f"scorer died:\n{proc.log_tail()}"
    return Ending(produced_by_then, sent, ledger, outputs, proc.stop())


async def read_outcomes(kafka: KafkaBroker, ledger: Ledger, timeout: float) -> list[ConsumerRecord[bytes, bytes]]:
    """Every output of the ledger's topics until each of its inputs has its outcome
    (``timeout``: of no progress, as in :func:`read_topics`)."""
    return await read_topics(plaintext(kafka), ledger.topics.all_outputs(), ledger.complete, timeout=timeout)
