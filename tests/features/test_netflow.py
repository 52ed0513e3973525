"""Netflow features, value by value: every column of the matrix against its definition,
computed here flow by flow, on flows built around the columns' edges (zero packets and
bytes, sub-millisecond durations, each port class's bounds, upper-case and unknown
protocols, Zeek history and state, CICFlowMeter flag counts), whole and one flow a batch,
and an empty batch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from scorer.events.structs import FlowRecord
from scorer.features.base import FeatureSet
from scorer.features.netflow import SERVICE_PORTS, WEB_PORTS, NetflowFeatures
from tests.support.native import use_native


def _flows() -> list[FlowRecord]:
    base: dict[str, Any] = {"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2"}
    return [
        FlowRecord(ts=0.0, **base, dst_port=443, src_port=50000, proto="TCP", duration=0.0, src_bytes=100,
                   src_pkts=2, history="ShADadFf"),
        FlowRecord(ts=1.0, src_ip="10.0.0.1", dst_ip="10.0.0.3", dst_port=1023, src_port=1, proto="udp",
                   duration=2.5, src_bytes=10, dst_bytes=30, src_pkts=1, dst_pkts=3, conn_state="REJ"),
        FlowRecord(ts=2.0, **base, dst_port=1024, src_port=1023, proto="icmp6", duration=0.0004,
                   extra={"FIN Flag Count": 1.0}),
        FlowRecord(ts=3.0, **base, dst_port=49152, src_port=49151, proto="gre", extra={"Bwd RST Flags": 2.0}),
        FlowRecord(ts=4.0, **base, dst_port=49151, src_port=0, proto="icmp", src_bytes=7, dst_bytes=9,
                   src_pkts=1, dst_pkts=1, conn_state="SF"),
        FlowRecord(ts=70.0, src_ip="10.0.0.9", dst_ip="10.0.0.2", dst_port=22, proto="tcp", history="Sr"),
        FlowRecord(ts=71.0, **base, dst_port=0, src_port=65535, proto="tcp", conn_state="S0"),
    ]


def _expected(flows: list[FlowRecord]) -> list[dict[str, float]]:
    """Each flow's features by their definitions (the windows: distinct ports and IPs of the
    flow's source over the 60 s before it, itself included)."""
    out = []
    for i, f in enumerate(flows):
        secs = max(f.duration, 1e-3)
        proto = f.proto.lower()
        zeek = f.history is not None or f.conn_state is not None
        hist, state = (f.history or "").lower(), (f.conn_state or "").lower()
        window = [g for g in flows[: i + 1] if g.src_ip == f.src_ip and g.ts >= f.ts - 60.0]
        rst = sum(f.extra.get(k, 0.0) for k in ("RST Flag Count", "Fwd RST Flags", "Bwd RST Flags"))

        def share(a: float, b: float) -> float:
            return a / b if b else 0.0

        out.append({
            "log_duration": math.log1p(f.duration), "log_src_bytes": math.log1p(f.src_bytes),
            "log_dst_bytes": math.log1p(f.dst_bytes), "log_src_pkts": math.log1p(f.src_pkts),
            "log_dst_pkts": math.log1p(f.dst_pkts),
            "log_src_bytes_per_pkt": math.log1p(share(f.src_bytes, f.src_pkts)),
            "log_dst_bytes_per_pkt": math.log1p(share(f.dst_bytes, f.dst_pkts)),
            "dst_bytes_share": share(f.dst_bytes, f.src_bytes + f.dst_bytes),
            "dst_pkts_share": share(f.dst_pkts, f.src_pkts + f.dst_pkts),
            "log_bytes_per_s": math.log1p((f.src_bytes + f.dst_bytes) / secs),
            "log_pkts_per_s": math.log1p((f.src_pkts + f.dst_pkts) / secs),
            "no_reply": float(f.dst_pkts == 0), "no_payload": float(f.src_bytes + f.dst_bytes == 0),
            "proto_tcp": float(proto == "tcp"), "proto_udp": float(proto == "udp"),
            "proto_icmp": float(proto in ("icmp", "icmp6")),
            "proto_other": float(proto not in ("tcp", "udp", "icmp", "icmp6")),
            "dport_wellknown": float(0 < f.dst_port < 1024), "dport_registered": float(1024 <= f.dst_port < 49152),
            "dport_dynamic": float(f.dst_port >= 49152), "dport_web": float(f.dst_port in WEB_PORTS),
            "dport_service": float(f.dst_port in SERVICE_PORTS),
            "sport_wellknown": float(0 < f.src_port < 1024), "sport_dynamic": float(f.src_port >= 49152),
            "tcp_fin_seen": float("f" in hist or state == "sf") if zeek
            else float(f.extra.get("FIN Flag Count", 0) > 0),
            "tcp_rst_seen": float("r" in hist or state in ("rej", "rsto", "rstr", "rstos0", "rstrh"))
            if zeek else float(rst > 0),
            "src_dst_ports_60s": math.log1p(len({g.dst_port for g in window})),
            "src_dst_ips_60s": math.log1p(len({g.dst_ip for g in window})),
        })
    return out


def same_as_definitions(features: FeatureSet, events: Sequence[Any], expected: list[dict[str, float]],
                        batch: int) -> None:
    """``features`` over ``events`` in batches of ``batch``: a finite float32 C-order matrix whose
    every column is ``expected``'s (event by event), to float32 rounding; an empty batch too."""
    x = np.concatenate([features.transform(events[lo:lo + batch]) for lo in range(0, len(events), batch)])
    assert x.dtype == np.float32 and x.flags.c_contiguous and x.shape == (len(events), len(features.names))
    want = np.array([[row[name] for name in features.names] for row in expected], dtype=np.float32)
    for j, name in enumerate(features.names):
        np.testing.assert_allclose(x[:, j], want[:, j], rtol=1e-6, err_msg=name)
    assert features.transform([]).shape == (0, len(features.names))


@pytest.mark.parametrize("native", ["0", "1"])
@pytest.mark.parametrize("batch", [1, 3, 7])
def test_every_column_is_its_definition(monkeypatch: pytest.MonkeyPatch, native: str, batch: int) -> None:
    use_native(monkeypatch, native)
    flows = _flows()
    same_as_definitions(NetflowFeatures(), flows, _expected(flows), batch)
