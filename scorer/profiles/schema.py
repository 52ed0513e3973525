"""Profile records: what the stream jobs publish to ``profiles.<kind>`` and the scorer joins.

A profile topic is compacted and keyed by *profile key* (``scope\\x1fentity[\\x1fitem]``);
its value is the whole current state of that key (msgpack), or a tombstone when the key
expired or was evicted. The same records are the jobs' changelog: a restarted worker
rebuilds its state by reading them back (see :mod:`streams.worker`).

Two record types, both designed so that features read from them do not depend on how far
*ahead* of the scored event the profile already is (the stream job and the scorer run
independently, so the latest profile may already include the event being scored, or later
ones):

- :class:`ItemProfile`, one per (entity, item) such as (host, process image): when it was
  first seen (a minimum: later events never change it) and the first ``HOURS_KEPT``
  distinct hours it was seen in (later events never change those either). "Seen before
  this event" and "in how many hours before this event" are therefore exact for any
  profile that includes at least everything before the event.
- :class:`WindowProfile`, one per entity (source IP, host, connection pair): per-minute
  aggregates. Features read only *completed* minutes before the event's own minute, which
  later events never touch; minutes are kept ``MARGIN_SLOTS`` beyond the window so a
  scorer lagging the job by up to that much still finds them.
"""

from __future__ import annotations

import msgspec

from scorer.events.structs import EventKind

SLOT_S = 60.0  # window aggregates per minute
HOUR_S = 3600.0
WINDOW_SLOTS = 60  # windowed features cover the last hour of completed minutes
MARGIN_SLOTS = 15  # extra minutes kept: the join stays exact for a scorer up to 15 min behind the job
SPAN_S = 300.0  # in-process (local) profiles apply and join at most 5 min of events at a time
HOURS_KEPT = 24  # distinct hours remembered per item (prevalence saturates at one day of activity)
DISTINCT_KEPT = 32  # distinct values remembered per minute (destinations, ports, rules)
SEP = "\x1f"  # key part separator: never in a host name, IP or normalised item


class ItemProfile(msgspec.Struct, tag="i", array_like=True):
    first_seen: float
    last_seen: float  # only for expiry (TTL); never a feature: it moves with later events
    hours: list[int]  # first HOURS_KEPT distinct floor(ts / HOUR_S), ascending
    offset: int = -1  # input offset of the last event applied: a replay after a crash skips it


class Slot(msgspec.Struct, array_like=True):
    """Aggregates of one minute of one entity's events."""

    index: int  # floor(ts / SLOT_S)
    count: int = 0
    out: float = 0.0  # bytes sent by the entity (netflow); 0 elsewhere
    into: float = 0.0  # bytes received
    size_sq: float = 0.0  # sum of squared per-event total bytes (size regularity)
    gaps: int = 0  # inter-arrival gaps ending in this minute (from the previous event of the key)
    gap_sum: float = 0.0
    gap_sq: float = 0.0
    a: list[str] = []  # distinct values seen this minute (destinations / rules), capped
    b: list[str] = []  # second distinct set (ports), capped


class WindowProfile(msgspec.Struct, tag="w", array_like=True):
    first_seen: float
    last_ts: float  # latest event time of the key: gaps and expiry only, never a feature
    slots: list[Slot]  # ascending by index, pruned to WINDOW_SLOTS + MARGIN_SLOTS
    offset: int = -1


Profile = ItemProfile | WindowProfile

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Profile)


def encode(profile: Profile) -> bytes:
    return _ENCODER.encode(profile)


def decode(data: bytes) -> Profile:
    profile: Profile = _DECODER.decode(data)
    return profile


def key(*parts: str) -> str:
    return SEP.join(parts)


def entity_of(profile_key: str) -> str:
    """``scope SEP entity ...`` -> ``scope SEP entity``: the entity a key's caps count against."""
    scope, _, rest = profile_key.partition(SEP)
    return scope + SEP + rest.partition(SEP)[0]


def topic_for(prefix: str, kind: EventKind) -> str:
    return f"{prefix}{kind.value}"


def slot_of(ts: float) -> int:
    return int(ts // SLOT_S)


def hour_of(ts: float) -> int:
    return int(ts // HOUR_S)
