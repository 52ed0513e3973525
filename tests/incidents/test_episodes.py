"""Episodes: grouping per entity and finding time, coalesced records, bounded state, restore."""

from __future__ import annotations

from scorer.incidents import (
    Activity,
    Correlator,
    Emission,
    IncidentState,
    LinkTable,
    Member,
    Policy,
    decode_changelog,
    digest,
    encode,
)
from tests.incidents.findings import finding

HOUR = 3600.0


def _members(findings: list[dict[str, object]]) -> list[Member]:
    links = LinkTable()
    out = []
    for f in findings:
        m = digest(f)
        links.learn(m)
        out.append(links.resolve(m))
    return out


def _run(corr: Correlator, members: list[Member], start: int = 0) -> list[Emission]:
    out: list[Emission] = []
    for i, m in enumerate(members, start):
        corr.add(m, offset=i)
        out += corr.flush()
    return out


def _story() -> list[Member]:
    """One host attacked across kinds, quiet for two hours, attacked again; a scanner elsewhere."""
    t = 1_700_000_000.0
    return _members([
        finding("siem", t, host="web1", src_ip="10.0.0.5", tactics=("discovery",), severity_id=2),
        finding("netflow", t + 10, src_ip="10.0.0.5", dst_ip="10.0.0.99"),
        finding("edr", t + 20, host="WEB1", user="www", tactics=("execution",), severity_id=4, rule="r1"),
        finding("netflow", t + 30, src_ip="192.0.2.1", dst_ip="198.51.100.7"),
        finding("siem", t + 40, host="web1", src_ip="10.0.0.5", tactics=("credential_access",)),
        finding("siem", t + 3 * HOUR, host="web1", src_ip="10.0.0.5"),
    ])


def test_kinds_about_one_host_form_one_incident_that_grows_then_closes() -> None:
    corr = Correlator(Policy(quiet_s=HOUR))
    out = _run(corr, _story()) + corr.close_all()
    web = [e for e in out if e.state.key == "host:web1"]
    first, second = web[0].state.uid, web[-1].state.uid
    assert first != second  # the two-hour gap splits the host's findings into two episodes
    one = [e for e in web if e.state.uid == first]
    assert [e.activity for e in one] == [Activity.CREATE, Activity.UPDATE, Activity.UPDATE, Activity.UPDATE,
                                         Activity.CLOSE]
    closed = one[-1].state
    assert closed.count == 4
    assert closed.kinds == {"siem": 2, "netflow": 1, "edr": 1}
    assert closed.tactics == ["TA0007", "TA0002", "TA0006"]
    assert closed.closed == "quiet"
    assert [e.state.revision for e in one] == [1, 2, 3, 4, 5]
    scanner = [e for e in out if e.state.key == "ip:192.0.2.1"]
    assert [e.activity for e in scanner] == [Activity.CREATE, Activity.CLOSE]
    assert corr.open == {}


def test_uids_are_the_same_on_a_second_run() -> None:
    members = _story()
    runs = [[(e.activity, e.state.uid) for e in _run(Correlator(), members)] for _ in range(2)]
    assert runs[0] == runs[1]


def test_an_episode_never_spans_more_than_max_span() -> None:
    corr = Correlator(Policy(quiet_s=HOUR, max_span_s=4 * HOUR, update_interval_s=1e9))
    members = _members([finding("edr", 1000 + i * 1800, host="h") for i in range(20)])  # every 30 min, 9.5 h
    out = _run(corr, members) + corr.close_all()
    closes = [e.state for e in out if e.activity is Activity.CLOSE]
    assert len(closes) == 3
    assert all(s.last_ms - s.first_ms < 4 * HOUR * 1000 for s in closes)
    assert sum(s.count for s in closes) == 20
    assert [s.closed for s in closes] == ["max_span", "max_span", "end_of_stream"]


def test_far_future_finding_neither_moves_the_watermark_nor_holds_the_episode_open() -> None:
    corr = Correlator(Policy(quiet_s=HOUR))
    t = 1_700_000_000.0
    members = _members([finding("edr", t, host="a"), finding("edr", t, host="b"),
                        finding("edr", 32_000_000_000.0, host="a"),  # year 2984
                        finding("edr", t + 2 * HOUR, host="b")])
    out = _run(corr, members)
    assert corr.stats["implausible_time"] == 1
    assert corr.watermark_ms == int((t + 2 * HOUR) * 1000)
    closed_a = [e.state for e in out if e.activity is Activity.CLOSE and e.state.key == "host:a"]
    assert len(closed_a) == 1  # host a's episode closed on time, its bogus member dated at the watermark
    assert closed_a[0].count == 2
    assert closed_a[0].last_ms == int(t * 1000)


def test_a_storm_for_one_host_keeps_its_state_and_records_bounded() -> None:
    policy = Policy(sample=16, max_items=8, update_interval_s=1e9)
    corr = Correlator(policy)
    base = _members([finding("edr", 1000, host="victim", src_ip="10.0.0.1", tactics=("execution",))])[0]
    emitted = 0
    n = 1_000_000  # the storm: a million findings for one host
    for i in range(n):
        m = Member(uid=f"u{i}", kind=base.kind, time_ms=1_000_000 + i, key=base.key, severity_id=3,
                   hosts=base.hosts, ips=(f"10.{i % 250}.{i % 7}.1",), users=(f"user{i}",), rules=(f"r{i}",))
        corr.add(m, offset=i)
        if i % 1000 == 999:
            emitted += len(corr.flush())
    state = corr.open["host:victim"]
    assert state.count == n
    assert len(state.sample()) == 16
    assert state.sample()[0].uid == "u0"
    assert state.sample()[-1].uid == f"u{n - 1}"
    assert max(len(state.ips), len(state.users), len(state.rules), len(state.hosts)) <= 8
    assert len(encode(state)) < 4096
    # Updates follow growth by doublings (and the first new items), not the findings' count.
    assert emitted <= 20


def test_open_episodes_are_bounded_and_evicted_ones_are_closed_not_lost() -> None:
    corr = Correlator(Policy(max_open=10))
    members = _members([finding("netflow", 1000 + i, src_ip=f"10.0.{i}.1", dst_ip="10.9.9.9") for i in range(25)])
    out = _run(corr, members)
    assert len(corr.open) == 10
    evicted = [e.state for e in out if e.activity is Activity.CLOSE]
    assert len(evicted) == 15
    assert {s.closed for s in evicted} == {"evicted"}
    assert [s.key for s in evicted] == [f"ip:10.0.{i}.1" for i in range(15)]  # least recently fed first
    assert corr.stats["evicted"] == 15


def test_restored_from_the_changelog_it_goes_on_as_if_never_stopped() -> None:
    members = _story()
    whole = Correlator(Policy(quiet_s=HOUR))
    expected = _run(whole, members) + whole.close_all()
    first = Correlator(Policy(quiet_s=HOUR))
    out = _run(first, members[:3])
    changelog = {k: None if s is None else encode(s) for k, s in first.changes().items()}
    second = Correlator(Policy(quiet_s=HOUR))
    for key, raw in changelog.items():
        second.load(key, decode_changelog(key, raw))
    # A replay of what the first had applied is skipped by offset, then the rest continues.
    out += _run(second, members, start=0) + second.close_all()
    assert [(e.activity, e.state.uid, e.state.count) for e in out] == \
        [(e.activity, e.state.uid, e.state.count) for e in expected]
    assert second.stats["duplicates"] == 3  # the three members the first had applied


def test_a_batch_flushed_once_gives_one_create() -> None:
    corr = Correlator()
    for m in _story()[:5]:
        corr.add(m)
    out = corr.flush()
    assert sorted(e.activity for e in out) == [Activity.CREATE, Activity.CREATE]
    assert {e.state.count for e in out} == {4, 1}


def test_a_finding_published_twice_counts_once() -> None:
    """An at-least-once scorer re-publishes its last findings after a crash, same uids."""
    corr = Correlator(Policy(recent_uids=3))
    members = _story()[:5]
    for m in members + members[-3:]:
        corr.add(m)
    assert corr.stats["duplicates"] == 3
    assert sum(s.count for s in corr.open.values()) == 5
    corr.add(members[0])  # older than the bounded memory: counted again
    assert corr.stats["duplicates"] == 3


def test_the_remembered_finding_uids_survive_a_restore_through_the_changelog() -> None:
    """A finding re-published after the stage restarted (the at-least-once scorer after its own
    crash) still counts once: the window of remembered uids is in the changelog, and chunks that
    left the window are tombstoned, so the compacted changelog stays bounded."""
    members = [m for i in range(40) for m in _members([finding("edr", 1000 + i, host=f"h{i % 4}", uid=f"u{i}")])]
    first = Correlator(Policy(recent_uids=10))
    changelog: dict[str, bytes | None] = {}
    for start in range(0, 40, 5):  # batches of 5, a changelog write after each, as the job does
        for i, m in enumerate(members[start:start + 5], start):
            first.add(m, offset=i)
        first.flush()
        changelog |= {k: None if v is None else encode(v) for k, v in first.changes().items()}
    live_chunks = [k for k, v in changelog.items() if k.startswith("\x00recent:") and v is not None]
    assert len(live_chunks) == 2  # the last two batches hold the last 10 uids; older chunks are tombstones
    second = Correlator(Policy(recent_uids=10))
    for key, raw in changelog.items():  # a compacted topic, read in order
        second.load(key, decode_changelog(key, raw))
    # Re-published after the restart (new input offsets): the last 10 are remembered, duplicates.
    assert [second.add(m, offset=100 + i) for i, m in enumerate(members[30:])] == [None] * 10
    assert second.stats["duplicates"] == 10
    assert second.add(members[29], offset=200) is not None  # older than the window: counted, as live
    for i in range(100):  # in process nobody asks for the changelog: what it would hold stays bounded
        second.add(_members([finding("edr", 2000 + i, host="h0", uid=f"v{i}")])[0], offset=300 + i)
    assert len(second.log.uids) < 2 * 10


def test_a_complete_first_sample_is_written_once_and_restored_with_its_episode() -> None:
    members = _members([finding("edr", 1000 + i, host="h", uid=f"u{i}") for i in range(9)])
    first = Correlator(Policy(sample=4))  # first sample: 2 members
    log: list[tuple[str, bytes | None]] = []
    for i, m in enumerate(members[:6]):
        first.add(m, offset=i)
        first.flush()
        log += [(k, None if v is None else encode(v)) for k, v in first.changes().items()]
    assert sum(k.startswith("\x00first:host:h\x00") for k, _ in log) == 1  # once, when complete
    latest = decode_changelog("host:h", dict(log)["host:h"])
    assert isinstance(latest, IncidentState) and latest.first == []  # not with every state since
    for records in (log, list(dict(log).items())):  # the topic as written, and compacted
        second = Correlator(Policy(sample=4))
        for key, raw in records:
            second.load(key, decode_changelog(key, raw))
        assert second.open == first.open
        rest = [e for i, m in enumerate(members[6:], 6) for e in second.process(m, i)[1]] + second.close_all()
        whole = Correlator(Policy(sample=4))
        expected = [e for i, m in enumerate(members) for e in whole.process(m, i)[1]] + whole.close_all()
        assert rest[-1].state.sample() == expected[-1].state.sample()
        assert [e.uid for e in rest[-1].state.sample()] == ["u0", "u1", "u7", "u8"]


def test_the_next_episode_of_a_key_restores_its_own_first_sample() -> None:
    """One episode of a key closes and the next opens in the same batch: the restored one
    has the next episode's first sample, not the closed one's."""
    members = _members([finding("edr", t, host="h", uid=f"u{t}") for t in (1, 2, 3, 4, 3 * HOUR, 3 * HOUR + 1)])
    first = Correlator(Policy(sample=4))
    log: list[tuple[str, bytes | None]] = []
    for batch in (members[:3], members[3:5], members[5:]):  # the second batch closes one, opens the next
        for m in batch:
            first.add(m, offset=members.index(m))
        first.flush()
        log += [(k, None if v is None else encode(v)) for k, v in first.changes().items()]
    for records in (log, list(dict(log).items())):
        second = Correlator(Policy(sample=4))
        for key, raw in records:
            second.load(key, decode_changelog(key, raw))
        assert second.open == first.open
        assert [e.uid for e in second.open["host:h"].first] == [f"u{3 * HOUR}", f"u{3 * HOUR + 1}"]


def test_restored_episodes_close_on_time_though_a_newer_one_opened_after() -> None:
    first = Correlator(Policy(quiet_s=HOUR))
    first.add(_members([finding("edr", 1000, host="old")])[0])
    first.flush()
    second = Correlator(Policy(quiet_s=HOUR))
    for key, state in first.changes().items():
        second.load(key, state)
    second.add(_members([finding("edr", 1000 + HOUR / 2, host="new")])[0])  # due later than "old"
    second.flush()
    second.add(_members([finding("edr", 1000 + HOUR + 10, host="new")])[0])
    closed = [e.state.key for e in second.flush() if e.activity is Activity.CLOSE]
    assert closed == ["host:old"]


def test_growth_that_is_not_material_is_published_once_the_update_interval_passes() -> None:
    """A finding that joins a large open incident without anything new (same kind, tactic,
    host) is published by an Update once the watermark is ``update_interval_s`` past the last
    one, even when no later finding of that incident arrives (only a Close would otherwise)."""
    t = 1_700_000_000.0
    corr = Correlator(Policy(quiet_s=12 * HOUR, update_interval_s=300))
    big = [finding("siem", t + i, host="web1", tactics=("discovery",)) for i in range(8)]
    out = _run(corr, _members(big))
    late = _members([finding("siem", t + 100, host="web1", tactics=("discovery",))])
    assert _run(corr, late, start=8) == []  # nothing new, not doubled, within the interval: held
    assert out[-1].state.count == 8
    corr.advance(int((t + 100 + 301) * 1000))  # the watermark moves on (another host, or wall time)
    due = corr.flush()
    assert [(e.activity, e.state.count) for e in due] == [(Activity.UPDATE, 9)]
    assert corr.flush() == []  # published once
