"""Stage 2 of the incident job: the episodes of each ``incidents.keyed`` partition.

Every partition has its own :class:`scorer.incidents.Correlator`; all of an entity's
findings arrive in one partition (the router keyed them), so no state is shared across
partitions or processes. Per batch, in one transaction: the Incident Findings the batch
caused (``incidents``, keyed by incident uid), the findings a suppression rule muted
(``incidents.suppressed``), every changed episode (``incidents.state``, same partition
number, a tombstone once closed) and the input offsets.

Restart or rebalance: a partition's episodes are read back from its changelog partition
before its first batch; the committed offsets are exactly those of the last changelog
written (one transaction), so nothing is applied twice and nothing is missed. Each
episode also remembers the input offset it last applied, a second guard should offsets
and changelog ever disagree.

Watermark: finding time, per partition. A partition that receives nothing for ``idle_s``
of wall time moves its watermark by the wall time since its last input, so its episodes
still close when the findings stop (an attack that ends is the usual case).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec
from aiokafka import TopicPartition

from scorer.incidents import (
    Correlator,
    InvalidRule,
    Policy,
    Suppressed,
    Suppressions,
    decode_member,
    encode,
    encode_incident,
    incident_finding,
    load_file,
    parse_rule,
)
from scorer.kafka import make_reader

from .kafka import Follower, Out, dead, restore
from .stage import JobSettings, Stage, paced

log = logging.getLogger(__name__)


def policy_of(settings: JobSettings) -> Policy:
    c = settings.incidents
    return Policy(quiet_s=c.quiet_s, max_span_s=c.max_span_s, update_interval_s=c.update_interval_s,
                  sample=c.sample, max_items=c.max_items, max_open=c.max_open, max_future_s=c.max_future_s,
                  recent_uids=c.recent_uids)


class CorrelatorStage(Stage):
    name = "correlator"

    def __init__(self, settings: JobSettings, counts: dict[str, int]) -> None:
        super().__init__(settings, counts)
        self.policy = policy_of(settings)
        path = settings.incidents.suppressions_file
        self.suppressions = Suppressions(load_file(path) if path is not None else ())
        self.stats: dict[str, int] = {}  # every partition's Correlator counts into this one
        self.partitions: dict[int, Correlator] = {}
        self.arrival: dict[int, tuple[float, int]] = {}  # partition -> (wall s, watermark) at last input
        self.restorer: Any = None
        self._restoring = asyncio.Lock()

    def topics(self) -> list[str]:
        return [self.settings.incidents.keyed_topic]

    def outputs(self) -> list[str]:
        cfg = self.settings.incidents
        return [cfg.topic, cfg.state_topic, cfg.suppressed_topic, cfg.dead_letter]

    def _rule(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        try:
            self.suppressions.put(key.decode(), None if value is None else parse_rule(value))
        except (InvalidRule, UnicodeDecodeError) as exc:
            self.counts["invalid_rules"] = self.counts.get("invalid_rules", 0) + 1
            log.warning("suppression rule %r refused: %s", key, exc)

    async def setup(self) -> None:
        self.restorer = make_reader(self.settings.kafka, "incident-restore")
        await self.restorer.start()
        self.follower = Follower(self.reader, self.settings.incidents.suppressions_topic, self._rule)
        await self.follower.catch_up()
        log.info("correlator: %d suppression rules", len(self.suppressions.rules))

    async def stop(self) -> None:
        await super().stop()
        if self.restorer is not None:
            await self.restorer.stop()

    async def assigned(self, tp: TopicPartition) -> None:
        await self.correlator_of(tp.partition)

    def revoked(self, tp: TopicPartition) -> None:
        self.partitions.pop(tp.partition, None)
        self.arrival.pop(tp.partition, None)

    def reset(self) -> None:
        self.partitions.clear()
        self.arrival.clear()

    async def correlator_of(self, partition: int) -> Correlator:
        """The partition's episodes, restored from its changelog the first time. The rebalance
        callback and the batch may both ask while a restore is awaited: one restores."""
        async with self._restoring:
            corr = self.partitions.get(partition)
            if corr is None:
                corr = Correlator(self.policy, self.suppressions, stats=self.stats)
                tp = TopicPartition(self.settings.incidents.state_topic, partition)
                n = await restore(self.restorer, tp, corr)
                self.partitions[partition] = corr
                log.info("restored partition %d: %d open episodes from %d records", partition, len(corr.open), n)
        return corr

    async def process(self, fetched: dict[TopicPartition, list[Any]]) -> tuple[list[Out], dict[TopicPartition, int]]:
        cfg = self.settings.incidents
        outputs: list[Out] = []
        offsets: dict[TopicPartition, int] = {}
        now = time.time()
        for tp, messages in fetched.items():
            corr = await self.correlator_of(tp.partition)
            async for m in paced(messages):
                try:
                    member = decode_member(m.value)
                except (msgspec.DecodeError, TypeError) as exc:
                    outputs.append(dead(cfg.dead_letter, "bad_digest", str(exc), m))
                    continue
                joined = corr.add(member, offset=m.offset)
                if isinstance(joined, Suppressed):
                    outputs.append(Out(cfg.suppressed_topic, member.key.encode(), _suppressed(joined)))
            offsets[tp] = messages[-1].offset + 1
            self.arrival[tp.partition] = (now, corr.watermark_ms)
            outputs += self._emit(tp.partition, corr)
        return outputs, offsets

    async def tick(self) -> list[Out]:
        now = time.time()
        outputs: list[Out] = []
        for partition, corr in self.partitions.items():
            wall, watermark = self.arrival.get(partition, (now, corr.watermark_ms))
            self.arrival.setdefault(partition, (wall, watermark))
            if corr.open and now - wall >= self.settings.idle_s:
                corr.advance(watermark + int((now - wall) * 1000))
                outputs += self._emit(partition, corr)
        return outputs

    def _emit(self, partition: int, corr: Correlator) -> list[Out]:
        cfg = self.settings.incidents
        out = [Out(cfg.topic, e.state.uid.encode(),
                   encode_incident(incident_finding(e.activity, e.state, assignee_group=cfg.assignee_group)))
               for e in corr.flush()]
        out += [Out(cfg.state_topic, key.encode(), None if state is None else encode(state), partition)
                for key, state in corr.changes().items()]
        return out

    def open_episodes(self) -> int:
        return sum(len(c.open) for c in self.partitions.values())


def _suppressed(s: Suppressed) -> bytes:
    m = s.member
    return msgspec.json.encode({
        "finding_uid": m.uid, "kind": m.kind, "key": m.key, "time": m.time_ms, "suppressed": True,
        "suppression": {"rule_id": s.rule_id, "reason": s.reason},
        "source": {"topic": m.topic, "partition": m.partition, "offset": m.offset},
    })
