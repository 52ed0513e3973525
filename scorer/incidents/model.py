"""The records of the incident stage: a finding's digest (:class:`Member`), an incident's
state (:class:`IncidentState`, also the changelog value) and what the stage emits
(:class:`Emission`).

A digest keeps what correlation, suppression and the Incident Finding need of a Detection
Finding and nothing else: the finding itself stays on its alert topic, reachable by uid
and position, so the internal topic and the state stay small whatever an alert carries.
Every collection in the state is bounded (:class:`Policy`), so one host raising a million
findings costs one state of fixed size.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import msgspec


class Activity(enum.IntEnum):
    """OCSF Incident Finding ``activity_id``."""

    CREATE = 1
    UPDATE = 2
    CLOSE = 3


# gc=False on the records held by thousands (states, their samples, a batch's digests): they
# never form reference cycles, and untracked they cost the collector's full passes nothing
# (those passes stall the job's event loop, router and correlator alike).
class Member(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One Detection Finding as the incident stage sees it."""

    uid: str
    kind: str  # netflow / edr / siem
    time_ms: int  # the finding's event time (finding_info.first_seen_time)
    key: str = ""  # the correlation entity ("host:ws1", "ip:10.0.0.5"), set by the router
    severity_id: int = 0
    title: str = ""
    model: str = ""
    rules: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()  # ATT&CK tactic ids (TA0006)
    techniques: tuple[str, ...] = ()  # ATT&CK technique ids (T1003.001)
    hosts: tuple[str, ...] = ()  # lower-case host names, own and resolved from its IPs
    ips: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    own_ip: str = ""  # the host's own address, where the event says so (links.LinkTable.learn)
    topic: str = ""
    partition: int = -1
    offset: int = -1


class SampleEntry(msgspec.Struct, frozen=True, array_like=True, gc=False):
    uid: str
    kind: str
    time_ms: int
    title: str


class IncidentState(msgspec.Struct, kw_only=True, gc=False):
    """One open incident (episode) of one correlation entity."""

    uid: str
    key: str
    first_ms: int
    last_ms: int
    count: int = 0
    kinds: dict[str, int] = {}
    severity_id: int = 0  # the highest of its members
    tactics: list[str] = []
    techniques: list[str] = []
    rules: list[str] = []
    hosts: list[str] = []
    ips: list[str] = []
    users: list[str] = []
    first: list[SampleEntry] = []  # the first members, in order
    recent: list[SampleEntry] = []  # the latest members, oldest first
    revision: int = 0  # records emitted for it so far (Create is 1)
    emitted_count: int = 0  # member count in its last record
    emitted_ms: int = 0  # last_ms in its last record
    material: bool = False  # something an analyst would want to hear about since then
    closed: str = ""  # why it closed ("quiet", "max_span", "evicted", "end_of_stream")
    last_offset: int = -1  # input offset last applied: a replayed record is skipped

    def sample(self) -> list[SampleEntry]:
        """The bounded sample of member findings: the first and the latest, no repeats."""
        seen = {e.uid for e in self.first}
        return self.first + [e for e in self.recent if e.uid not in seen]


class Emission(msgspec.Struct, frozen=True):
    """A record the stage publishes: ``state`` as it was when ``activity`` happened."""

    activity: Activity
    state: IncidentState


class Suppressed(msgspec.Struct, frozen=True, kw_only=True):
    """A finding a suppression rule muted: published as such, never joined to an incident."""

    member: Member
    rule_id: str
    reason: str


@dataclass(frozen=True)
class Policy:
    """When episodes open and close, and the bounds that keep memory fixed.

    Times are event times (the findings' own clock), never wall time, so replaying a
    capture later groups exactly as the online job did.
    """

    quiet_s: float = 3600.0  # an episode closes after this long without a new member
    max_span_s: float = 86_400.0  # and never covers more than this
    update_interval_s: float = 300.0  # an Update for mere growth at most this often (event time)
    sample: int = 32  # member uids kept: the first half and the latest half
    max_items: int = 64  # tactics, techniques, rules, hosts, IPs, users kept per incident
    max_open: int = 20_000  # open episodes per partition; beyond, the least recently fed closes
    recent_uids: int = 32_768  # finding uids remembered per partition to drop re-published duplicates
    max_future_s: float = 3600.0  # a finding dated further after the wall clock joins at the watermark


_STATE_ENCODER = msgspec.json.Encoder()
_STATE_DECODER = msgspec.json.Decoder(IncidentState)
_MEMBER_DECODER = msgspec.json.Decoder(Member)


def encode(value: IncidentState | Member | Suppressed | list[str] | list[SampleEntry]) -> bytes:
    return _STATE_ENCODER.encode(value)


def decode_state(raw: bytes) -> IncidentState:
    return _STATE_DECODER.decode(raw)


def decode_member(raw: bytes) -> Member:
    return _MEMBER_DECODER.decode(raw)

