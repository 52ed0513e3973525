"""Netflow features: only what both Zeek conn.log and CICFlowMeter give.

Volumes are log-scaled (flows span bytes to gigabytes), ports are reduced to classes
(exact port numbers memorise a lab), TCP state is read from Zeek's history/conn_state or
CICFlowMeter's flag counts, whichever the record has. Nothing names the lab, the host or
the dataset, so a model cannot learn "which capture is this" instead of "is this bad".
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from scorer.events.structs import Event, EventKind, FlowRecord
from scorer.features.base import (
    F32,
    F64,
    EntityState,
    flag,
    isin,
    log1p,
    numbers,
    ratio,
    stack,
    texts,
    update_order,
)

WEB_PORTS = frozenset({80, 443, 8000, 8080, 8443})
SERVICE_PORTS = frozenset({20, 21, 22, 23, 25, 53, 67, 68, 88, 110, 123, 135, 137, 138, 139,
                           143, 161, 389, 445, 465, 587, 636, 993, 995, 1433, 3306, 3389, 5432,
                           5900, 5985, 5986})
_RST_STATES = frozenset({"rej", "rsto", "rstr", "rstos0", "rstrh"})
WINDOW_S = 60.0
K = TypeVar("K", int, str)
MAX_WINDOW_FLOWS = 2048  # per source: bounds memory under a flood

STATELESS = (
    "log_duration", "log_src_bytes", "log_dst_bytes", "log_src_pkts", "log_dst_pkts",
    "log_src_bytes_per_pkt", "log_dst_bytes_per_pkt", "dst_bytes_share", "dst_pkts_share",
    "log_bytes_per_s", "log_pkts_per_s", "no_reply", "no_payload",
    "proto_tcp", "proto_udp", "proto_icmp", "proto_other",
    "dport_wellknown", "dport_registered", "dport_dynamic", "dport_web", "dport_service",
    "sport_wellknown", "sport_dynamic", "tcp_fin_seen", "tcp_rst_seen",
)
# Distinct destinations per source, not the raw flow count: training data (CIC) is a random
# sample of flows, so its per-source *counts* are far sparser than live traffic and taught
# "busy source = attack" (a busy benign host then scored 0.9998). Distinct ports/IPs
# saturate quickly and survive the sampling far better.
STATEFUL = ("src_dst_ports_60s", "src_dst_ips_60s")


class _SourceWindow:
    """The flows of one source IP in the last WINDOW_S seconds, with distinct counts."""

    __slots__ = ("flows", "ips", "ports")

    def __init__(self) -> None:
        self.flows: deque[tuple[float, int, str]] = deque()
        self.ports: Counter[int] = Counter()
        self.ips: Counter[str] = Counter()

    def add(self, ts: float, port: int, ip: str) -> tuple[int, int]:
        while self.flows and (self.flows[0][0] < ts - WINDOW_S
                              or len(self.flows) >= MAX_WINDOW_FLOWS):
            _, old_port, old_ip = self.flows.popleft()
            _drop(self.ports, old_port)
            _drop(self.ips, old_ip)
        self.flows.append((ts, port, ip))
        self.ports[port] += 1
        self.ips[ip] += 1
        return len(self.ports), len(self.ips)


def _drop(counter: Counter[K], key: K) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


class NetflowFeatures:
    """Features of :class:`FlowRecord` batches (stateful: per-source 60 s window)."""

    kind = EventKind.NETFLOW
    names: tuple[str, ...] = STATELESS + STATEFUL

    def __init__(self, max_entities: int = 100_000) -> None:
        self.state: EntityState[_SourceWindow] = EntityState(_SourceWindow, max_entities)

    def transform(self, events: Sequence[Event]) -> F32:
        flows = [e for e in events if isinstance(e, FlowRecord)]
        if len(flows) != len(events):
            raise TypeError("NetflowFeatures.transform takes FlowRecord events only")
        n = len(flows)
        cols = self._stateless(flows)
        cols.update(self._stateful(flows))
        return stack(self.names, cols, n)

    def _stateless(self, flows: Sequence[FlowRecord]) -> dict[str, F64]:
        n = len(flows)
        dur = numbers(flows, "duration")
        sb, db = numbers(flows, "src_bytes"), numbers(flows, "dst_bytes")
        sp, dp = numbers(flows, "src_pkts"), numbers(flows, "dst_pkts")
        dport, sport = numbers(flows, "dst_port"), numbers(flows, "src_port")
        proto = texts(flows, "proto")
        # Durations under 1 ms are clock resolution, not infinitely fast flows.
        secs = np.maximum(dur, 1e-3)
        cols: dict[str, F64] = {
            "log_duration": log1p(dur),
            "log_src_bytes": log1p(sb), "log_dst_bytes": log1p(db),
            "log_src_pkts": log1p(sp), "log_dst_pkts": log1p(dp),
            "log_src_bytes_per_pkt": log1p(ratio(sb, sp)),
            "log_dst_bytes_per_pkt": log1p(ratio(db, dp)),
            "dst_bytes_share": ratio(db, sb + db), "dst_pkts_share": ratio(dp, sp + dp),
            "log_bytes_per_s": log1p((sb + db) / secs), "log_pkts_per_s": log1p((sp + dp) / secs),
            "no_reply": (dp == 0).astype(np.float64),
            "no_payload": ((sb + db) == 0).astype(np.float64),
            "proto_tcp": isin(proto, frozenset({"tcp"})),
            "proto_udp": isin(proto, frozenset({"udp"})),
            "proto_icmp": isin(proto, frozenset({"icmp", "icmp6"})),
            "proto_other": 1.0 - isin(proto, frozenset({"tcp", "udp", "icmp", "icmp6"})),
            "dport_wellknown": ((dport > 0) & (dport < 1024)).astype(np.float64),
            "dport_registered": ((dport >= 1024) & (dport < 49152)).astype(np.float64),
            "dport_dynamic": (dport >= 49152).astype(np.float64),
            "dport_web": flag((int(p) in WEB_PORTS for p in dport), n),
            "dport_service": flag((int(p) in SERVICE_PORTS for p in dport), n),
            "sport_wellknown": ((sport > 0) & (sport < 1024)).astype(np.float64),
            "sport_dynamic": (sport >= 49152).astype(np.float64),
        }
        fin, rst = _tcp_flags(flows)
        cols["tcp_fin_seen"], cols["tcp_rst_seen"] = fin, rst
        return cols

    def _stateful(self, flows: Sequence[FlowRecord]) -> dict[str, F64]:
        n = len(flows)
        out = np.zeros((n, len(STATEFUL)))
        for i in update_order(len(flows)).tolist():
            f = flows[i]
            out[i] = self.state.get(f.src_ip).add(f.ts, f.dst_port, f.dst_ip)
        logs = log1p(out)
        return {name: logs[:, j] for j, name in enumerate(STATEFUL)}


def _tcp_flags(flows: Sequence[FlowRecord]) -> tuple[F64, F64]:
    """FIN / RST seen: Zeek history letters (either case) or CICFlowMeter flag counts."""
    n = len(flows)
    fin, rst = np.zeros(n), np.zeros(n)
    for i, f in enumerate(flows):
        if f.history is not None or f.conn_state is not None:
            hist = (f.history or "").lower()
            state = (f.conn_state or "").lower()
            fin[i] = "f" in hist or state == "sf"
            rst[i] = "r" in hist or state in _RST_STATES
        elif f.extra:
            x = f.extra
            fin[i] = x.get("FIN Flag Count", 0.0) > 0
            rst[i] = (x.get("RST Flag Count", 0.0) + x.get("Fwd RST Flags", 0.0)
                      + x.get("Bwd RST Flags", 0.0)) > 0
    return fin, rst
