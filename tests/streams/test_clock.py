"""The stream clock that expiry runs on: one implausible event time cannot wipe a partition,
and offline and online (batched, published, restored) still end with the same state."""

from __future__ import annotations

import msgspec
import pytest

from scorer.events.structs import EventKind, SiemAlert
from scorer.profiles.clock import StreamClock
from scorer.profiles.local import LocalProfiles
from scorer.profiles.schema import decode, encode
from scorer.profiles.store import DAY_S, Limits, ProfileStore
from scorer.profiles.updates import apply
from tests.support.samples import events

YEAR_2970 = 31_525_000_000.0  # seconds since 1970: a record dated year 2970
SIEM = EventKind.SIEM


def _published(store: ProfileStore, log: list[tuple[str, bytes | None]]) -> None:
    """What the worker produces to the profile topic after a batch: expiry, then the changes."""
    store.expire()
    log += [(k, None if p is None else encode(p)) for k, p in store.changes()]


@pytest.mark.data
def test_one_record_from_year_2970_does_not_expire_the_partition() -> None:
    evs = list(events(SIEM, 800))
    store, log = ProfileStore(), list[tuple[str, bytes | None]]()
    for i, e in enumerate(evs):
        apply(store, SIEM, e, i)
    _published(store, log)
    held, clock = len(store), store.stream_ts
    assert held > 20 and store.stats.expired == 0
    bogus = msgspec.structs.replace(evs[-1], ts=YEAR_2970, host="attacker")
    apply(store, SIEM, bogus, len(evs))
    _published(store, log)
    # Before the bound, the clock went to 2970 and every other key was tombstoned here.
    assert store.stats.expired == 0 and len(store) == held + 4  # the attacker's four keys
    assert store.stream_ts == clock and store.stats.implausible == 4
    assert not [k for k, v in log if v is None]
    # A worker restarted from the topic (the bogus key included) keeps the same clock.
    restored = ProfileStore()
    for k, v in log:
        restored.load(k, None if v is None else decode(v))
    restored.expire()
    assert restored.stats.expired == 0 and len(restored) == len(store) and restored.stream_ts == clock


def test_a_genuine_gap_is_confirmed_by_distinct_entities() -> None:
    store = ProfileStore(limits=Limits(ttl_s=DAY_S))
    t0 = 1_600_000_000.0
    alert = SiemAlert(ts=t0, host="h0", rule_id="r", rule_name="r")
    for i, host in enumerate(("a", "b", "c")):
        apply(store, SIEM, msgspec.structs.replace(alert, ts=t0 + i, host=host), i)
    assert store.stream_ts == t0 + 2
    later = t0 + 3 * DAY_S  # the partition was quiet for three days
    for i in range(3):  # the same host again and again does not confirm a jump
        apply(store, SIEM, msgspec.structs.replace(alert, ts=later + i, host="d"), 10 + i)
    store.expire()
    assert store.stream_ts == t0 + 2 and store.stats.expired == 0
    for i, host in enumerate(("e", "f")):
        apply(store, SIEM, msgspec.structs.replace(alert, ts=later + 10 + i, host=host), 20 + i)
    store.expire()  # three hosts report after the gap: the clock follows, a, b, c expire
    assert store.stream_ts == later + 11 and store.stats.expired == 4 * 3
    assert store.get("host\x1fa") is None and store.get("host\x1fd") is not None


def test_clock_never_jumps_past_the_earliest_confirming_entity() -> None:
    clock = StreamClock(max_jump_s=60.0, confirm=3)
    for entity, ts in (("a", 0.0), ("b", 1.0), ("c", 2.0)):
        clock.observe(entity, ts)
    assert clock.now == 2.0
    assert not clock.observe("x", YEAR_2970) and not clock.observe("y", YEAR_2970)
    assert clock.now == 2.0  # two forged entities are not enough
    assert not clock.observe("honest", 500.0)  # a third, honest one after a gap: its time wins
    assert clock.now == 500.0 and set(clock.ahead) == {"x", "y"}
    assert clock.observe("a", 530.0) and clock.now == 530.0


@pytest.mark.data
def test_offline_and_online_agree_with_an_implausible_record_and_a_restart() -> None:
    """Same events, same batches: the offline replay (training) and the worker (a store per
    batch, its changes published, killed halfway and restored from them) end identical,
    with a record from year 2970 in the stream and a TTL short enough to expire keys."""
    evs = list(events(SIEM, 2000))
    evs.insert(700, msgspec.structs.replace(evs[700], ts=YEAR_2970, host="attacker"))
    limits = Limits(ttl_s=3600.0)
    batches = [evs[i:i + 100] for i in range(0, len(evs), 100)]
    offline = LocalProfiles(limits)
    online, log, offset = ProfileStore(limits=limits), list[tuple[str, bytes | None]](), 0
    for n, batch in enumerate(batches):
        offline.observe(SIEM, batch)
        for e in batch:
            apply(online, SIEM, e, offset)
            offset += 1
        _published(online, log)
        if n == len(batches) // 2:  # the worker is restarted: its state comes back from the topic
            online = ProfileStore(limits=limits)
            for k, v in log:
                online.load(k, None if v is None else decode(v))
    assert offline.store.stats.expired > 0
    assert online.stream_ts == offline.store.stream_ts
    assert _values(online) == _values(offline.store)


def _values(store: ProfileStore) -> dict[str, bytes]:
    return {k: encode(msgspec.structs.replace(p, offset=-1)) for k, p in store._keys.items()}  # test-only peek
