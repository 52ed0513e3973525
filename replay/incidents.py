"""The incident stage in process, after the embedded scorer (``scorer replay --to embedded``).

It does what ``python -m streams incidents`` does with the alert topics, minus Kafka: every
alert of a scored micro-batch, in the order the scorer published it, is digested, keyed
(address -> host links learned on the way) and correlated; the batch ends with one flush,
as the job's batch ends with one transaction, so Creates and Updates are coalesced alike.
The OCSF Incident Findings go to ``incidents.jsonl`` (one per line, Create / Update /
Close); the end of the replay closes what is still open (reason ``end_of_stream``).

Settings are the job's (``SCORER_INCIDENTS__*``: quiet period, max span, bounds), so a
replay groups as the deployed job would. Findings that name no entity are counted by
reason, as the job dead-letters them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import msgspec
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from scorer.captures.recorded import Envelope
from scorer.config import IncidentSettings, Settings
from scorer.incidents import (
    Activity,
    Correlator,
    Emission,
    LinkTable,
    Policy,
    Unattributed,
    digest,
    encode_incident,
    incident_finding,
)
from scorer.kafka import admin_client, poll_until, settled_end_offsets, topic_partition_list


def policy_of(cfg: IncidentSettings) -> Policy:
    return Policy(
        quiet_s=cfg.quiet_s,
        max_span_s=cfg.max_span_s,
        update_interval_s=cfg.update_interval_s,
        sample=cfg.sample,
        max_items=cfg.max_items,
        max_open=cfg.max_open,
        recent_uids=cfg.recent_uids,
        max_future_s=cfg.max_future_s,
    )


class IncidentWriter:
    """Alerts (OCSF Detection Finding bytes) in, Incident Findings out to ``path``."""

    def __init__(self, path: Path, cfg: IncidentSettings) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.cfg = cfg
        self.links = LinkTable(cfg.max_links)
        self.correlator = Correlator(policy_of(cfg))
        self.records: Counter[str] = Counter()  # by activity
        self.unattributed: Counter[str] = Counter()  # by reason
        self.incidents: set[str] = set()
        self._fh = path.open("wb")
        self._offset = 0

    def batch(self, alerts: Iterable[bytes]) -> None:
        """One scored micro-batch's alerts, then the batch's records."""
        for raw in alerts:
            self._offset += 1
            try:
                finding = msgspec.json.decode(raw)
                if not isinstance(finding, dict):
                    raise Unattributed("not a JSON object")
                member = digest(finding, topic="replay.alerts", offset=self._offset)
            except (msgspec.DecodeError, Unattributed) as exc:
                self.unattributed["not_json" if isinstance(exc, msgspec.DecodeError) else "unattributed"] += 1
                continue
            self.links.learn(member)
            self.correlator.add(self.links.resolve(member), self._offset)
        self._write(self.correlator.flush())

    def _write(self, emissions: list[Emission]) -> None:
        for e in emissions:
            self.records[e.activity.name.lower()] += 1
            if e.activity is Activity.CREATE:
                self.incidents.add(e.state.uid)
            record = incident_finding(e.activity, e.state, assignee_group=self.cfg.assignee_group)
            self._fh.write(encode_incident(record) + b"\n")

    def close(self) -> dict[str, int]:
        """Close every open incident and the file; the counts for the replay's summary."""
        try:
            self._write(self.correlator.close_all())
        finally:
            self._fh.close()
        return {"incidents": len(self.incidents), **{f"records_{k}": v for k, v in sorted(self.records.items())},
                **{f"findings_{k}": v for k, v in sorted(self.unattributed.items())}}


async def wait_incidents(settings: Settings, alerts: Iterable[Envelope], stall_s: float) -> bool | None:
    """``scorer replay --to kafka --wait``: until the incident job (``python -m streams
    incidents`` with these settings: groups ``<group>-incidents-router`` and
    ``-correlator``) has routed every alert of the replay, correlated every digest, and what
    it wrote is visible to a read_committed reader.

    Waits on observed progress: gives up (False) once neither group's committed offsets nor
    the topics' last stable offsets have moved for ``stall_s``; None when the router group
    has neither committed anything nor a member (no incident job runs for these settings:
    nothing to wait for).
    """
    group = f"{settings.kafka.group_id}-incidents"
    cfg = settings.incidents
    routed: dict[TopicPartition, int] = {}  # the replay's last alert per partition
    for e in alerts:
        tp = TopicPartition(e.topic, e.partition)
        routed[tp] = max(routed.get(tp, -1), e.offset)
    async with admin_client(settings.kafka) as admin:
        if not await _router_runs(admin, f"{group}-router"):
            return None
        if not await _committed_past(admin, f"{group}-router", routed, stall_s):
            return False
        # The router's offsets are visible before its markers on the keyed partitions may be:
        # the end taken now could stop before its last batch, which the correlator has not read.
        ends = await settled_end_offsets(settings.kafka, await topic_partition_list(settings.kafka, [cfg.keyed_topic]),
                                         stall_s=stall_s)
        if ends is None:
            return False
        # Each of the router's transactions ends a keyed partition with a marker: the last
        # digest sits just before it, and the correlator commits the marker's offset.
        if not await _committed_past(admin, f"{group}-correlator", {tp: e - 2 for tp, e in ends.items() if e >= 2},
                                     stall_s):
            return False
    outputs = await topic_partition_list(settings.kafka, [cfg.topic, cfg.suppressed_topic, cfg.dead_letter])
    return await settled_end_offsets(settings.kafka, outputs, stall_s=stall_s) is not None


async def _router_runs(admin: AIOKafkaAdminClient, group: str) -> bool:
    """Whether an incident job runs (or ran) for these settings: its router group has committed
    offsets, or members; a job that has just joined has not committed yet, and a replay
    started right after it must still wait for it."""
    if await admin.list_consumer_group_offsets(group):
        return True
    described = await admin.describe_consumer_groups([group])
    # DescribeGroups answers per group (error_code, group, state, protocol_type, protocol, members, ...).
    return any(g[0] == 0 and len(g[5]) > 0 for response in described for g in response.groups)


async def _committed_past(admin: AIOKafkaAdminClient, group: str, last: dict[TopicPartition, int],
                          stall_s: float) -> bool:
    """Until ``group`` committed past every ``last`` offset; False once its commits stalled."""
    async def committed() -> dict[TopicPartition, int]:
        return {tp: m.offset for tp, m in (await admin.list_consumer_group_offsets(group)).items()}

    return await poll_until(committed, lambda c: all(c.get(tp, -1) > offset for tp, offset in last.items()),
                            stall_s=stall_s, every_s=0.25) is not None
