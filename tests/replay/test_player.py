"""Replay pacing, ordering and error handling, with an in-memory sink (no broker needed).

Timing checks are loose on purpose (a shared CI machine): they catch a wrong schedule,
not a few milliseconds of jitter. Benchmarks, not tests, measure speed.
"""

from __future__ import annotations

import base64
import gzip
import io
import itertools
from pathlib import Path

import msgspec
import pytest

from replay.cli import items
from replay.player import (
    Clock,
    Outgoing,
    Pacing,
    ProgressBar,
    Summary,
    capture_items,
    planned,
    play,
)
from replay.readers import LabeledEvent, write_canonical
from replay.record import Envelope, is_record_file, recorded_items, write_envelopes
from scorer.config import Settings
from scorer.events import EventKind, FlowRecord, entity_key


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
        **kw,
    )  # type: ignore[arg-type]
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


async def test_as_recorded_x1000_holds_its_rate(tmp_path: Path) -> None:
    path = capture(tmp_path, 601, gap=1.0)  # 600 s of capture -> 0.6 s at x1000
    summary, sink, _ = await run(path, Pacing(speed=1000))
    assert summary.events == 601 and sink.closed
    assert summary.seconds == pytest.approx(0.6, rel=0.1)
    assert sink.idles > 0, "the sink is told before each wait"


async def test_fixed_rate_holds_its_rate(tmp_path: Path) -> None:
    path = capture(tmp_path, 1001, gap=0.0)
    summary, _, _ = await run(path, Pacing(rate=2000))
    assert summary.seconds == pytest.approx(0.5, rel=0.1)
    assert summary.events_per_second == pytest.approx(2000, rel=0.1)


async def test_fast_keeps_order_and_sets_keys(tmp_path: Path) -> None:
    path = capture(tmp_path, 50, gap=3600.0)
    summary, sink, _ = await run(path, Pacing(fast=True))
    assert summary.seconds < 1.0
    assert [o.labeled.event.uid for o in sink.sent if o.labeled] == [f"f{i}" for i in range(50)]
    for out in sink.sent:
        assert out.labeled is not None and out.key == entity_key(out.labeled.event).encode()
        value = msgspec.json.decode(out.value)
        assert "label" not in value, "ground truth goes to the sidecar, never to the scorer"


async def test_limit_counts_events(tmp_path: Path) -> None:
    path = capture(tmp_path, 50, gap=1.0)
    summary, sink, _ = await run(path, Pacing(fast=True), limit=7)
    assert summary.events == len(sink.sent) == 7 and summary.limited
    assert planned(capture_items([path]), Pacing(speed=2), 7) == (7, pytest.approx(3.0))


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
    assert [msgspec.json.decode(o.value)["uid"] for o in sink.sent] == uids


def test_recorded_dump_round_trips(tmp_path: Path) -> None:
    envs = [
        Envelope("t", p, o, 1000 + o, 0, f"k{o}".encode(), bytes([0, 255, o]), [("h", b"\xff")])
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


def test_progress_bar_shows_rate_and_eta() -> None:
    out = io.StringIO()
    bar = ProgressBar(total=100, planned_s=10.0, out=out)
    bar(50, 5.0)
    bar(100, 10.0)
    text = out.getvalue()
    assert "50/100" in text and " 50%" in text and "10 ev/s" in text and "ETA 00:00:05" in text
    assert text.endswith("\n")


async def test_evtx_capture_replays_as_edr(tmp_path: Path) -> None:
    path = tmp_path / "Security_short_selected.evtx"
    path.write_bytes(gzip.decompress(base64.b64decode("".join(EVTX_SAMPLE))))
    summary, sink, err = await run(path, Pacing(fast=True))
    assert err == "" and summary.events == 7 and summary.by_kind == {"edr": 7}
    assert {o.key for o in sink.sent} == {b"temporal"}
    first = msgspec.json.decode(sink.sent[0].value)
    assert first["event_code"] == 5152 and first["uid"] == "Security_short_selected:1"
    assert list(itertools.islice((o.ts for o in sink.sent), 2)) == pytest.approx(
        [1467213874.346, 1467213876.686]
    )


# samples/Security_short_selected.evtx of the evtx crate (omerbenamram/evtx, MIT/Apache-2.0),
# 7 Security-channel records, gzip + base64: the only real EVTX file at hand.
EVTX_SAMPLE = (
    "H4sICI0oD2MCA1NlY3VyaXR5X3Nob3J0X3NlbGVjdGVkLmV2dHgA7ZoLbBzVFYbPzM6u1+vdtR3HBEJCEiAJCdhJbOw4pBCM"
    "HyGNQ0ziNKkaKTH2hjhZryM/Qh6EOLyTVkhIQOlTEaUqVC2PVrSFAo3a0oeEaKEvFamoqvpAQghSoK1oJPecM3d2Zje7xgSc"
    "qMr/re7O3Jlz5957zrnn3ju7belt7X3pFOUTNcdRThaFiCos+rgZHbb/SwAAAAAAAAAAAJh02tLbWrZndpK3uy8xx/y8vAeg"
    "C4g6LyQ61L/wgY9arzz/+ouO7Alemxkh+i1X+E6Y6HUnV/4EX78y9OHreekDyhyKmLrD7vHfRv7hiC/zJb62La89Kzj/H9s9"
    "n55XR3/YP3/UnK9h2XZ+5jNO8bb0Tx+/rRsqiZ5LuudvlvnXv10ycX0kZuXmFy4k+nPUt/fRJy7eOP2Vl61yy6K4NT9+cHie"
    "6aWc/6Xh5Ybvn/jK4ZVzf/a7u7knItVcSTc7bgeFZ+JhaqPdlKIMDXP+Lk6RHebms+Vh2kP9lOabQ5wPWw20ncWGaRddQYv4"
    "M0Q9fCXFMt18XsvHPr4ySAOcG6BtLFnL+QG+vohu4nsZPtbRYv5czmeLqYm/U9nqh3JytjU29mLIt9tAV4TW016WGtYaiezm"
    "sbFPByx6fH+UOrX23VxXL0sN8tVGTu2eM66+36HruLH9JC/RkkmyIpvMrQXVDq2kES3Jt8qpPNQcojV8vs9IvNddElDWKmoV"
    "PYvCxOXkMQtejdH1/IhuVlkfd79PmyCqSzoUsZMhijhWGV0Y8PRzS0voU0asj1uekX4ly8hxLB3BWRfvfSlMHUY9aRUiEbJp"
    "BmdmGD9t2+9Ql9pip4rYUqFFs80QEB67IEJr2YBill7Vgp205Elhupj8kbPjV1Fazbf3st0GuHW92g07GaZqh9XeyZl7jejy"
    "e8q40j7VaQuLprgBYqJeTz0yisSnPrE/lmNBrxCrJ0KVISvG3uLHkvZQIqDtdXzsMS1xNW8nYxSTttwRCAgP/bOM2yBig6on"
    "aYmn1s3y0HYjGDseo2Z+otwWbxnmdrnPTZZQeUSCgpi94YVKrTqd7VORQglxl7Gx/kAQ+cFTpdyBPdrwkUA7rpV2sDVJ2hL7"
    "Q6nx2R4WHOKPeWCUohEJrWLaO5ZFWVnbjW49BSRLKRqyKtSdZpoAeBu7aAtLdnNNmaynVJDl8Gi6nNyoJoZbnomqovrZFUa0"
    "azJW7LAVNcbZpVoUTxYdXxMIvkdro2xGt1eDRgtEEqkiXhze1hGhDdwXeappbJyqQk6ykuY4NEVnFEcTe6gmIUrVnCr13OEz"
    "SVGKqZxHO+cqqJyTRQ2hOXyltG72VPdexagXD0VeXPSNw7EqN6CfFJhqaKMGpF7O38RXa07qUw3beoTv96ntMnQjzX3g9q49"
    "Xfet+vozVy0PXfKTRH4JNwxfs+/hf3lBXs7fer3m/WN3PvvC/LdOPL3VdsMwW6PLdudPofXW0oCvt6qzdZsIt9zMp+IxRwac"
    "wN3zReUS2cLWyU7US3aC3AFSY54wy5cv477t4k9a9eKPEjvBbZMyC0yZnDpaWWpQ++zL2678EiN/kS+fYI0OqHakVc3col4t"
    "Le2zEyG33KWm3Ey/XCynXKf6IU8HCcctUbA3rfrc4ZNqCbtl5psy5/llotkyfg2RcaRd/Q6rjgdYb3aihKJFe9DO+kmbYbWO"
    "x64MAjsRde1RULcdbIW9Ku/NT3aidBxb+PL+8yUgOlSmQynGw8oinuBoOicZROdyiupgcodVUvOx7NCqobn8WcJTcwMt42m6"
    "juo5IC/jfC1fbdCcTN51er+R88v4eiN/17JMI383quRiTvX8aeI7MrCnRd3lSvDpSymRv9aRdY2sb37N48L2rj1/eNPJ65uP"
    "K3783JL4YS0OTXHvzR716pOf0F5kzcw7cgbix6Gr7vmst2CU89anzjnw+N9rX7vkC+e+erWVjR+XW278kBhRbzxkru8hSW7P"
    "CN1AO8x49cLxel3gSGyoEt9qMCXn+yXLi5T0/dLEiGWm7KV+2cq8sq06xXRr//3yJmZMoNUdXP5GjTRuRAu5y4+lpuQCv2RF"
    "QDY3Fvr1SgRxSKZnno3YjSxN4jbiDpbrpmHxhi4Ox2v4OWt5dDXzky9ma8v5al4iruOzDXzvH2Zl5vpBOlu7QfxY/PlBPoZO"
    "iz/fq/5MTY9M8ebDfH+efyb8+fhlx2zZCElX5fxvv9i+89m/ztv6ztd6fvwaZf35FfL9uWCM72Q79vDCtptrTgWsSuN4kyyG"
    "B1V+HD8uWNtGnRV26gzRffJ8d5EpU+2Xke2JKztiZrip7G1iqk+aKFyhppvK2l/Fiy/xo/Wc2rmVW1i3G/h4LfvddRrPW/iK"
    "HNdyfgv3vZmvrObvlSyxhbcMS/h7sc53/WqNPm3poNYvLc/34B1Ex9T0Dxq/3FRCWT86euieSfTL6yPql0sqi/rlJWfCL/c9"
    "9Pb7G9xekJyvPHFL45/s97d89Xs/Kn3Eyfrll52zN84WXNUVGlNebx23t6cwFs1KrWBkD5Ys3NPIhEdlCY/KYj1r1+em1VNS"
    "uu/rVj/M6Nqt+FrM1WVuPaVuPUXWbp62u9gbd2kPYu5q8hRntjK3datM6eV+6fN0dAzra5qMjpDger9YTI27zyvotYUjo182"
    "4Za90pRd5Jet4v4O6t50SKPWsNlTr1df2K1tS6n2kuPsKjq4bLF2l49jJfd1Rofq4UbViJ2ocLVeUL7QjqqSKpzi81Nh20wZ"
    "p02r2Pr5e5aqcXxZ5P39ylRdz1QXWM9IPjjjxM1RQnXSyMk92yQ3hFfT1YH9wqmuh6zAf88mPj/18/wkOwTZdcj+QeYr2Zt4"
    "kaKe78xmraZ0JIjXuW9k8p9TQzVac1PcbUELXUGb8+aQzTmvoeTJm83rSX8VV8v35N1N8V1Qo+50GmmpW5HMpzKvHuPue6+U"
    "t7Z9t3fy5tWnKf/9h1ef9/5jxZEz+P7D24fGA/tQ2+xD7QL7UK+TQdvk7khzd5tL+NOkuTpjiUI70SZ9Wf5kJHcP2qh3Lwvu"
    "P8VuYr+j3A7v54Sta5/cOXn2u1/fX8Xq5ha139XGftbptF/1qoMx78cNOf/WF7ec/8s1Y+vql7d0Puy/v3rQ9tdFE4qfrXgj"
    "dVa+kWL5RUZ+ji8f1/VVv/YglfOyWFYzxdfMwVJrdBWwXb07ZcryzMdzYiIv9ngxZ3qR2CPzpaQPG4OCcWa86PTBMSg4a1qF"
    "/r0tcUniU6fj/847ufGpTeMT1Tdn921effoXc07XnIn5Jf2N+ibvh1E577z9j79/4rmt91274qcd5Mend8/i92MFx9vaQDlv"
    "xS3f2Tg215Sa5pcqyVubZ+NXwejaqZbarZEmpSvzDrPuy0ayCa+0S05hpR3V9XBpgfWwjEBJM0z+io+wvs33ytn6m2CPzhCy"
    "w5qtcSlj9iaDpyTfxfdvKKBP703iRFe1ac53q5a89WyWTgf/pwEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAACA/z9en0nUVEW0L2QuWJYewlP4aw31UQ8N0gANcdpGw1RDG/lahno5fxNfraENnOuj3ZRi"
    "uSHqpjR18XmaUz+nYb66l1o438e5DOcPfudwb8vNd26aSbHuHy5c+pnJqGMRraVdKt3NuT5+TkZLxa3n35h625VR7iX3zqEE"
    "WZ4eHHqEzxcuJD3uN9oYuX/s3V1Tf2OVs1bi1ucG02/Os4lENRaXkGRTxCSiKFVzqqQKfV5UU5RiKhenKn1iF+cqqJwbY9E0"
    "msN3lvLHbQ4z6tVYzE77z3I7UY6dbjbamHb0sePfPOd02smrsZCd4uf5LTvL7ESFx9MBo41zKh+fdDs18ce3k1djsfF0AHYK"
    "2OkWo41Ht4y8e3rt5NVYyE4vzvJbhvlJjgeNNmbdNfl2yo17Xo3F7HQQdgrYadRo4+3tS947vePJq7FY3BtF3AvY6ZDRxo4D"
    "k2+n3PHk1VjITjPa/JbBTnK81Wjj8011p3k8eTUWG0+3Yl1uFd9N/w9lP/GUABABAA=="
)
