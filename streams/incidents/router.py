"""Stage 1 of the incident job: findings from ``alerts.<kind>`` re-keyed by correlation entity.

The alert topics are keyed by the scorer's partitioning entity (a flow's source address, an
event's host), so one host's netflow, EDR and SIEM findings sit in three topics, in
partitions that need not match. The router reads them all, learns address -> host links,
sets each finding's correlation key (:mod:`scorer.incidents.links`) and writes a small
digest to ``incidents.keyed`` under that key: every finding about one entity then reaches
one partition, and the stateful stage keeps that entity's episodes partition-local.

The link table is the router's only state. It is rebuilt from the compacted
``incidents.links`` topic at start and followed while running (so several routers share
what each learned); losing a link only keys a flow by its address instead of its host.
A finding that names no entity, and a record that is not a JSON object, go to the job's
dead-letter topic with the reason.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from aiokafka import TopicPartition

from scorer.incidents import LinkTable, Unattributed, decode_finding, digest, encode

from .kafka import Follower, Out, dead
from .stage import JobSettings, Stage, paced

log = logging.getLogger(__name__)
_HOST = msgspec.json.Decoder(str)


class Router(Stage):
    name = "router"

    def __init__(self, settings: JobSettings, counts: dict[str, int]) -> None:
        super().__init__(settings, counts)
        self.links = LinkTable(settings.incidents.max_links)

    def topics(self) -> list[str]:
        return list(self.settings.alert_topics)

    def outputs(self) -> list[str]:
        cfg = self.settings.incidents
        return [cfg.keyed_topic, cfg.links_topic, cfg.dead_letter]

    def _link(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or value is None:
            return
        try:
            self.links.set(key.decode(), _HOST.decode(value))
        except (msgspec.DecodeError, UnicodeDecodeError):
            log.warning("ignored a malformed link record %r", key)

    async def setup(self) -> None:
        self.follower = Follower(self.reader, self.settings.incidents.links_topic, self._link)
        await self.follower.catch_up()
        log.info("router: %d address -> host links restored", len(self.links))

    async def process(self, fetched: dict[TopicPartition, list[Any]]) -> tuple[list[Out], dict[TopicPartition, int]]:
        cfg = self.settings.incidents
        outputs: list[Out] = []
        offsets: dict[TopicPartition, int] = {}
        for tp, messages in fetched.items():
            async for m in paced(messages):
                try:
                    member = digest(decode_finding(m.value), topic=tp.topic, partition=tp.partition,
                                    offset=m.offset)
                    new_links = self.links.learn(member)
                    member = self.links.resolve(member)
                    keyed = Out(cfg.keyed_topic, member.key.encode(), encode(member))
                except Unattributed as exc:
                    outputs.append(dead(cfg.dead_letter, "unattributed", str(exc), m))
                    self._count("dead_lettered")
                    continue
                except (msgspec.DecodeError, ValueError, TypeError, OverflowError) as exc:
                    # The digest is fuzzed (tests/incidents/test_hostile.py); this is the last
                    # line: one record the core did not foresee must not crash-loop the job.
                    outputs.append(dead(cfg.dead_letter, "bad_finding", repr(exc)[:1000], m))
                    self._count("dead_lettered")
                    continue
                for ip, host in new_links:
                    outputs.append(Out(cfg.links_topic, ip.encode(), msgspec.json.encode(host)))
                    self._count("links")
                outputs.append(keyed)
                self._count("routed")
            offsets[tp] = messages[-1].offset + 1
        return outputs, offsets

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
