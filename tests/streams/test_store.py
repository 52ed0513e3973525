"""The profile state: exact reads whatever the job has already seen, no double counting on
replay, and bounded memory (per entity, TTL, total budget)."""

from __future__ import annotations

import itertools

import msgspec
import numpy as np
import pytest

from scorer.events.structs import EndpointEvent, Event, EventKind, FlowRecord
from scorer.features import feature_set
from scorer.features.base import F32
from scorer.profiles.join import NoProfiles, read_item, read_window
from scorer.profiles.keys import edr_keys
from scorer.profiles.local import FrozenProfiles, LocalProfiles
from scorer.profiles.schema import MARGIN_SLOTS, SLOT_S, ItemProfile, WindowProfile, decode, encode, slot_of
from scorer.profiles.store import KeyBudget, Limits, ProfileStore
from scorer.profiles.updates import apply
from tests.support.samples import events


def _joined_with_lead(kind: EventKind, evs: list[Event], lead_s: float) -> F32:
    """Each minute of events joined while the job has already applied ``lead_s`` more."""
    job = LocalProfiles()
    fs = feature_set(kind, "v2", FrozenProfiles(job))
    done, rows = 0, list[F32]()
    for minute, group in itertools.groupby(evs, key=lambda e: slot_of(e.ts)):
        batch = list(group)
        horizon = (minute + 1) * SLOT_S + lead_s
        ahead = list(itertools.takewhile(lambda e, h=horizon: e.ts < h, evs[done:]))  # type: ignore[misc]
        job.observe(kind, ahead)
        done += len(ahead)
        rows.append(fs.transform(batch))
    return np.concatenate(rows)


@pytest.mark.data
@pytest.mark.parametrize("kind", list(EventKind))
def test_reads_do_not_depend_on_how_far_ahead_the_profile_is(kind: EventKind) -> None:
    """Each event joined against the state just before it == against a state up to the
    retention margin ahead: what lets the scorer join a profile the job has moved past."""
    evs = list(events(kind))
    step = feature_set(kind, "v2")  # local profiles, updated as each batch of 1 arrives
    as_of_event = np.concatenate([step.transform([e]) for e in evs])
    base = feature_set(kind).transform(evs)
    for lead_s in (0.0, 60.0, (MARGIN_SLOTS - 1) * SLOT_S):
        ahead = _joined_with_lead(kind, evs, lead_s)
        np.testing.assert_array_equal(ahead[:, len(base[0]):], as_of_event[:, len(base[0]):])
    extra = as_of_event[:, len(base[0]):]
    assert np.isfinite(extra).all() and (extra != 0).any(axis=0).sum() >= len(extra[0]) // 2


@pytest.mark.data
def test_item_reads_hold_for_any_lead() -> None:
    """Host items (EDR) carry no window: even the state after the whole capture reads the same."""
    evs = list(events(EventKind.EDR))
    step = feature_set(EventKind.EDR, "v2")
    as_of_event = np.concatenate([step.transform([e]) for e in evs])
    final = LocalProfiles()
    final.observe(EventKind.EDR, evs)
    np.testing.assert_array_equal(feature_set(EventKind.EDR, "v2", FrozenProfiles(final)).transform(evs), as_of_event)


@pytest.mark.data
def test_v2_starts_with_the_v1_columns() -> None:
    for kind in EventKind:
        v1, v2 = feature_set(kind), feature_set(kind, "v2", NoProfiles())
        assert v2.names[:len(v1.names)] == v1.names and len(set(v2.names)) == len(v2.names)
        evs = list(events(kind, 300))
        np.testing.assert_array_equal(v2.transform(evs)[:, :len(v1.names)], v1.transform(evs))
    with pytest.raises(ValueError, match="unknown feature set"):
        feature_set(EventKind.EDR, "v9")


@pytest.mark.data
def test_replayed_offsets_are_not_counted_twice() -> None:
    evs = list(events(EventKind.NETFLOW, 500))
    once, twice = ProfileStore(), ProfileStore()
    for i, e in enumerate(evs):
        apply(once, EventKind.NETFLOW, e, i)
        apply(twice, EventKind.NETFLOW, e, i)
    for i, e in enumerate(evs[:300]):  # a crash replays the uncommitted tail
        apply(twice, EventKind.NETFLOW, e, i)
    assert twice.stats.duplicates > 0
    assert _state(once) == _state(twice)


@pytest.mark.data
def test_records_round_trip_and_restore_gives_the_same_state() -> None:
    evs = list(events(EventKind.SIEM, 800))
    store = ProfileStore()
    for i, e in enumerate(evs):
        apply(store, EventKind.SIEM, e, i)
    restored = ProfileStore()
    for key, p in store.changes():
        restored.load(key, None if p is None else decode(encode(p)))
    assert _state(restored) == _state(store) and restored.stream_ts == store.stream_ts


def test_a_flood_of_new_items_cannot_flush_a_hosts_baseline() -> None:
    store = ProfileStore(limits=Limits(max_per_entity=10))
    base = EndpointEvent(ts=1000.0, host="h", event_code=1, image="c:\\windows\\system32\\cmd.exe")
    apply(store, EventKind.EDR, base, 0)
    for i in range(1, 500):
        apply(store, EventKind.EDR, msgspec.structs.replace(base, ts=1000.0 + i, image=f"c:\\x\\{_word(i)}.exe"), i)
    assert store.stats.refused > 0 and len(store) <= 11 + 1  # host key + 10 images (+ lineage none)
    baseline = edr_keys(base).image
    assert baseline is not None and read_item(store.get(baseline), 5000.0).seen


def test_total_keys_are_capped_and_expire() -> None:
    budget = KeyBudget(max_keys=1000)
    a, b = ProfileStore(budget), ProfileStore(budget)
    for i in range(5000):  # a flood of new sources spread over two partitions
        flow = FlowRecord(ts=float(i), src_ip=f"10.0.{i // 256}.{i % 256}", dst_ip="10.9.9.9", dst_port=443)
        apply(a if i % 2 else b, EventKind.NETFLOW, flow, i)
    assert budget.used == len(a) + len(b) <= 1000 + 2
    assert a.stats.evicted + b.stats.evicted > 0
    gone = a.changes()
    assert any(v is None for _, v in gone)  # evictions are published as tombstones
    short = ProfileStore(limits=Limits(ttl_s=60.0))
    for i, (t, src) in enumerate(((0.0, "a"), (1000.0, "c"), (1000.0, "e"))):  # 3 entities start the clock
        apply(short, EventKind.NETFLOW, FlowRecord(ts=t, src_ip=src, dst_ip="b"), i)
    short.expire()
    assert short.get("src\x1fa") is None and short.stats.expired == 2 and short.get("src\x1fc") is not None


def test_window_reads_only_completed_minutes() -> None:
    store = ProfileStore()
    for i, t in enumerate((0.0, 10.0, 70.0, 130.0, 131.0)):
        apply(store, EventKind.NETFLOW, FlowRecord(ts=t, src_ip="s", dst_ip="d", dst_port=80, src_bytes=10), i)
    p = store.get("pair\x1fs\x1fd\x1f80")
    assert isinstance(p, WindowProfile)
    assert read_window(p, 125.0).events == 3  # minutes 0 and 1 are complete at t=125
    assert read_window(p, 5.0).events == 0  # nothing completed yet: the event's own minute is unread
    assert read_window(p, 125.0).gaps == 2 and read_window(p, 125.0).gap_sum == 70.0
    assert isinstance(store.get("src\x1fs"), WindowProfile)
    assert not isinstance(store.get("src\x1fs"), ItemProfile)


def _word(i: int) -> str:
    """A distinct name per number without digits (digits are masked in item keys)."""
    return "".join("ghijklmnop"[int(d)] for d in str(i))


def _state(store: ProfileStore) -> dict[str, bytes]:
    """Every key's value without the bookkeeping offset."""
    out = {}
    for key, p in store._keys.items():  # test-only peek at the whole state
        out[key] = encode(msgspec.structs.replace(p, offset=-1))
    return out


def test_bounds_are_exported_as_metrics() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from streams.kafka import StatsCollector

    store = ProfileStore(KeyBudget(max_keys=10))
    for i in range(50):
        apply(store, EventKind.NETFLOW, FlowRecord(ts=float(i), src_ip=f"s{i}", dst_ip="d"), i)
    registry = CollectorRegistry()
    registry.register(StatsCollector({"netflow": store.stats}, store.budget, {"netflow": lambda: len(store)}))
    text = generate_latest(registry).decode()
    evicted = store.stats.evicted
    assert evicted > 0 and f'streams_profile_updates_total{{kind="netflow",outcome="evicted"}} {float(evicted)}' in text
    assert f'streams_profile_keys{{kind="netflow"}} {float(len(store))}' in text
    assert "streams_profile_key_budget 10.0" in text
    assert 'streams_profile_implausible_times_total{kind="netflow"} 0.0' in text
