"""Replay pacing, ordering and error handling, with an in-memory sink (no broker needed).

Pacing is checked on a virtual clock (:func:`on_virtual_clock`): time moves only when the
replay waits, so a schedule is held exactly or not at all, whatever the speed or load of
the machine. Benchmarks, not tests, measure speed.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import itertools
import selectors
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from replay.cli import items, partitions_needed
from replay.outgoing import Outgoing, capture_items, recorded_items
from replay.player import Clock, Pacing, ProgressBar, Summary, planned, play
from replay.record import write_envelopes
from scorer.captures import LabeledEvent, ReadError, iter_capture, write_canonical
from scorer.captures.recorded import Envelope, is_record_file
from scorer.config import Settings
from scorer.events import EventKind, FlowRecord, entity_key
from tests.support.captures import EVTX_RECORDS, evtx_sample

T = TypeVar("T")


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock stands still while code runs and jumps to the next timer
    when nothing else is ready: ``asyncio.sleep`` takes no real time, and the replay's
    elapsed time is exactly the waits its schedule asked for (real I/O still works)."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(selector=_SkippingSelector(self))

    def time(self) -> float:
        return self.now


class _SkippingSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualClockLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout <= 0:
            return list(super().select(timeout))
        ready = list(super().select(0))
        if not ready:  # nothing to do until the next timer: go there at once
            self._loop.now += timeout
        return ready


def on_virtual_clock(coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        return runner.run(coro)


class SlowSink:
    """A sink that takes ``cost`` seconds (of the virtual clock) for each of its first
    ``slow`` events: the replay falls behind its schedule, then must catch up."""

    def __init__(self, cost: float, slow: int) -> None:
        self.cost, self.slow = cost, slow
        self.sent_at: list[float] = []

    async def send(self, item: Outgoing) -> None:
        if len(self.sent_at) < self.slow:
            await asyncio.sleep(self.cost)
        self.sent_at.append(asyncio.get_running_loop().time())

    async def idle(self) -> None:
        pass

    async def close(self) -> None:
        pass


class MemorySink:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.idles = 0
        self.closed = False

    async def send(self, item: Outgoing) -> None:
        self.sent.append(item)

    async def idle(self) -> None:
        self.idles += 1

    async def close(self) -> None:
        self.closed = True


def flows(n: int, gap: float, *, start: float = 1_600_000_000.0) -> list[LabeledEvent]:
    return [
        LabeledEvent(
            EventKind.NETFLOW,
            FlowRecord(
                uid=f"f{i}",
                ts=start + i * gap,
                src_ip=f"10.0.0.{i % 7}",
                dst_ip="10.1.1.1",
                label="BENIGN" if i % 3 else "DDoS",
            ),
            "cap",
            i + 1,
        )
        for i in range(n)
    ]


def capture(tmp_path: Path, n: int, gap: float, name: str = "cap.jsonl") -> Path:
    path = tmp_path / name
    write_canonical(flows(n, gap), path)
    return path


async def run(
    path: Path | list[Path], pacing: Pacing, **kw: object
) -> tuple[Summary, MemorySink, str]:
    sink, err = MemorySink(), io.StringIO()
    paths = path if isinstance(path, list) else [path]
    summary = await play(
        items(paths, Settings()),
        sink,
        pacing,
        Summary("memory", pacing.describe()),
        errors=err,
        **kw,  # type: ignore[arg-type]
    )
    return summary, sink, err.getvalue()


def test_clock_keeps_gaps_scaled_and_never_waits_backwards() -> None:
    clock = Clock(Pacing(speed=10))
    dues = [clock.due("a", ts) for ts in (100.0, 101.0, 100.5, 103.0)]
    # 100.5 is out of order: no wait, and 103.0 is measured from 101.0, not from 100.5
    assert dues == pytest.approx([0.0, 0.1, 0.1, 0.3])
    assert clock.due("b", 5.0) == pytest.approx(0.3), "a new capture starts at once"
    assert Clock(Pacing(max_gap=2)).due("a", 0.0) == 0.0
    clipped = Clock(Pacing(max_gap=2))
    assert [clipped.due("a", t) for t in (0.0, 3600.0)] == [0.0, 2.0]


def test_clock_fixed_rate_and_fast() -> None:
    clock = Clock(Pacing(rate=100))
    assert [clock.due("a", 0.0) for _ in range(3)] == pytest.approx([0.0, 0.01, 0.02])
    assert Clock(Pacing(fast=True)).due("a", 1.0) is None


def test_as_recorded_x1000_holds_its_rate(tmp_path: Path) -> None:
    path = capture(tmp_path, 601, gap=1.0)  # 600 s of capture -> 0.6 s at x1000
    summary, sink, _ = on_virtual_clock(run(path, Pacing(speed=1000)))
    assert summary.events == 601 and sink.closed
    assert summary.seconds == pytest.approx(0.6, abs=0.001)
    assert summary.max_lateness_s == 0
    assert sink.idles > 0, "the sink is told before each wait"


def test_fixed_rate_holds_its_rate(tmp_path: Path) -> None:
    path = capture(tmp_path, 1001, gap=0.0)
    summary, _, _ = on_virtual_clock(run(path, Pacing(rate=2000)))
    assert summary.seconds == pytest.approx(0.5, abs=0.001)
    assert summary.events_per_second == pytest.approx(2000, rel=0.01)


def test_a_late_replay_catches_up_instead_of_drifting(tmp_path: Path) -> None:
    """The schedule is absolute: 100 events costing 5 ms each at 1000/s put the replay
    0.4 s behind; it then sends without waiting until it is back on its schedule, and
    ends on it."""
    path = capture(tmp_path, 1001, gap=0.0)
    sink = SlowSink(cost=0.005, slow=100)

    async def late() -> Summary:
        return await play(items([path], Settings()), sink, Pacing(rate=1000), Summary("slow", "rate"))

    summary = on_virtual_clock(late())
    assert summary.events == 1001
    assert summary.seconds == pytest.approx(1.0, abs=0.001), "drifted: the lateness was carried to the end"
    assert summary.max_lateness_s == pytest.approx(0.4, abs=0.006)
    assert sink.sent_at[-1] == pytest.approx(1.0, abs=0.001)
    assert all(t >= i / 1000 - 0.0005 for i, t in enumerate(sink.sent_at)), "an event went before it was due"


def test_fast_keeps_order_and_sets_keys(tmp_path: Path) -> None:
    path = capture(tmp_path, 50, gap=3600.0)
    summary, sink, _ = on_virtual_clock(run(path, Pacing(fast=True)))
    assert summary.seconds == 0 and sink.idles == 0, "fast: never a wait"
    assert [o.labeled.event.uid for o in sink.sent if o.labeled] == [f"f{i}" for i in range(50)]
    for out in sink.sent:
        assert out.labeled is not None and out.key == entity_key(out.labeled.event).encode()
        value = msgspec.json.decode(out.value or b"")
        assert "label" not in value, "ground truth goes to the sidecar, never to the scorer"


async def test_limit_counts_events(tmp_path: Path) -> None:
    path = capture(tmp_path, 50, gap=1.0)
    summary, sink, _ = await run(path, Pacing(fast=True), limit=7)
    assert summary.events == len(sink.sent) == 7 and summary.limited
    assert planned(capture_items([path]), Pacing(speed=2), 7) == (7, pytest.approx(3.0))  # type: ignore[comparison-overlap]


async def test_corrupt_lines_and_unknown_formats_do_not_stop_the_replay(tmp_path: Path) -> None:
    good = capture(tmp_path, 10, gap=1.0, name="a.jsonl")
    lines = good.read_bytes().splitlines()
    lines.insert(4, b'{"kind": "netflow", "event": {"ts": oops')
    good.write_bytes(b"\n".join(lines) + b"\n")
    unknown = tmp_path / "b.bin"
    unknown.write_bytes(b"\x00\x01 not a capture")
    second = capture(tmp_path, 5, gap=1.0, name="c.jsonl")
    summary, sink, err = await run(
        [good, unknown, tmp_path / "missing.csv", second], Pacing(fast=True)
    )
    assert summary.events == len(sink.sent) == 15
    assert summary.read_errors == 3
    assert summary.errors_by_reason == {"malformed_json": 1, "unknown_format": 1, "not_found": 1}
    assert f"{good}:5: malformed_json" in err
    assert f"{unknown}:0: unknown_format" in err and "missing.csv:0: not_found" in err


async def test_uids_taken_by_an_earlier_event_are_made_unique(tmp_path: Path) -> None:
    # two captures with the same source uids, as CIC class files (flow ids restart)
    a = capture(tmp_path, 3, gap=1.0, name="a.jsonl")
    b = capture(tmp_path, 3, gap=1.0, name="b.jsonl")
    summary, sink, _ = await run([a, b], Pacing(fast=True))
    uids = [o.labeled.event.uid for o in sink.sent if o.labeled]
    assert uids == ["f0", "f1", "f2", "cap:1", "cap:2", "cap:3"] and summary.renamed_uids == 3
    assert [msgspec.json.decode(o.value or b"")["uid"] for o in sink.sent] == uids


def test_recorded_dump_round_trips_with_tombstones(tmp_path: Path) -> None:
    envs = [
        # every third record a tombstone (value None), as in a compacted topic
        Envelope("t", p, o, 1000 + o, 0, f"k{o}".encode(), None if o == 1 else bytes([0, 255, o]),
                 [("h", b"\xff")])
        for o in range(3)
        for p in (2, 0)
    ]
    path = tmp_path / "dump.jsonl"
    assert write_envelopes(envs, path) == 6 and is_record_file(path)
    assert not is_record_file(capture(tmp_path, 2, 1.0))
    out = list(recorded_items(path, {"t": EventKind.SIEM}))
    assert all(isinstance(o, Outgoing) for o in out)
    got = [
        (o.partition, o.key, o.value, o.headers, o.ts, o.kind)
        for o in out
        if isinstance(o, Outgoing)
    ]
    assert got == [
        (e.partition, e.key, e.value, (("h", b"\xff"),), e.timestamp / 1000, EventKind.SIEM)
        for e in envs
    ]
    assert [o.value for o in out if isinstance(o, Outgoing)].count(None) == 2


async def test_dump_inside_a_folder_is_replayed_record_for_record(tmp_path: Path) -> None:
    folder = tmp_path / "captures"
    dump = folder / "zz-dump.jsonl"
    write_envelopes(
        [Envelope("events.siem", 4, o, 1000 + o, 0, b"k", None if o else b"v") for o in range(2)],
        dump,
    )
    lines = dump.read_bytes().splitlines()
    dump.write_bytes(b"\n".join([*lines, b'{"topic": "events.siem", "oops"}']) + b"\n")
    capture(folder, 3, gap=1.0, name="a.jsonl")
    summary, sink, err = await run(folder, Pacing(fast=True))
    assert summary.events == 5 and summary.errors_by_reason == {"malformed_record": 1}
    assert f"{dump}:3: malformed_record" in err, "a corrupt dump line: its real line number"
    records = [o for o in sink.sent if o.topic is not None]
    assert [(o.partition, o.value, o.capture) for o in records] == [
        (4, b"v", "zz-dump"), (4, None, "zz-dump")]
    assert records[0].kind is EventKind.SIEM, "the settings' topic of siem events"
    assert partitions_needed([folder], None) == {"events.siem": 5}
    assert partitions_needed([folder], "other") == {"other": 5}
    (found,) = list(iter_capture(dump))
    assert isinstance(found, ReadError) and found.reason == "recorded_dump"


async def test_captures_are_named_by_their_path_below_the_common_root(tmp_path: Path) -> None:
    a = capture(tmp_path / "a" / "x", 2, gap=1.0, name="cap.jsonl")
    b = capture(tmp_path / "b", 2, gap=1.0, name="cap.jsonl")
    _, sink, _ = await run([a, b], Pacing(fast=True))
    assert [o.capture for o in sink.sent] == ["a/x/cap"] * 2 + ["b/cap"] * 2
    assert [o.labeled.event.uid for o in sink.sent if o.labeled] == ["f0", "f1", "b/cap:1",
                                                                     "b/cap:2"]
    _, alone, _ = await run(b, Pacing(fast=True))
    assert {o.capture for o in alone.sent} == {"cap"}, "one input: just its name"
    _, under, _ = await run(tmp_path, Pacing(fast=True))
    assert {o.capture for o in under.sent} == {"a/x/cap", "b/cap"}


async def test_files_sharing_a_stem_in_one_folder_stay_apart(tmp_path: Path) -> None:
    plain = capture(tmp_path, 2, gap=1.0, name="cap.jsonl")
    gz = tmp_path / "cap.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    _, sink, _ = await run(tmp_path, Pacing(fast=True))
    assert sorted({o.capture for o in sink.sent}) == ["cap", "cap.jsonl.gz"]


def test_progress_bar_shows_rate_and_eta() -> None:
    out = io.StringIO()
    bar = ProgressBar(total=100, planned_s=10.0, out=out)
    bar(50, 5.0)
    bar(100, 10.0)
    text = out.getvalue()
    assert "50/100" in text and " 50%" in text and "10 ev/s" in text and "ETA 00:00:05" in text
    assert text.endswith("\n")


async def test_evtx_capture_replays_as_edr(tmp_path: Path) -> None:
    summary, sink, err = await run(evtx_sample(tmp_path), Pacing(fast=True))
    assert err == "" and summary.events == EVTX_RECORDS and summary.by_kind == {"edr": 7}
    assert {o.key for o in sink.sent} == {b"temporal"}
    first = msgspec.json.decode(sink.sent[0].value or b"")
    assert first["event_code"] == 5152 and first["uid"] == "Security_short_selected:1"
    assert list(itertools.islice((o.ts for o in sink.sent), 2)) == pytest.approx(
        [1467213874.346, 1467213876.686]
    )
