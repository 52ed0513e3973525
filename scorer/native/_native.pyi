from collections.abc import Sequence, Sized
from typing import Any

import numpy as np
import numpy.typing as npt

class Windows(Sized):
    """Bounded per-entity sliding windows: kind 0 netflow sources, kind 1 SIEM hosts."""

    def __init__(self, kind: int, max_entities: int, window_s: float, max_window: int,
                 max_rules: int = 1, never_s: float = 0.0) -> None: ...
    def rows(self, keys: list[Any], ts: list[Any], a: list[Any], b: list[Any] | None,
             out: npt.NDArray[np.float64], col: int = -1, /) -> None: ...
    def clear(self) -> None: ...
    def __len__(self) -> int: ...

class Stats:
    """CICFlowMeter statistics objects (JSON bytes) checked and read as msgspec's FlowStats would."""

    def __init__(self, names: tuple[bytes, ...], keep: tuple[int, ...] = (), texts: tuple[bytes, ...] = (),
                 missing: tuple[bytes, ...] = (), max_text: int = 0, blank_ok: int = -1, lower: int = -1) -> None: ...
    def check(self, raws: list[Any], /) -> bytes: ...
    def columns(self, raws: list[Any], wanted: tuple[int, ...], out: npt.NDArray[np.float64], /) -> list[int]: ...
    def cut(self, values: list[Any], /) -> tuple[list[bytes | None], bool]:
        """Per flow record a copy with its statistics cut to the kept ones (None: left whole);
        whether every record cut has texts that pass the columnar path's checks."""
    def rows(self, values: list[Any], max_bytes: int, /) -> list[FlowRow | None]:
        """Per canonical flow record a FlowRow of one batch's columns; None: the cut path decides."""

class FlowRow:
    """One flow of a batch read by ``Stats.rows``: CutFlowView's attributes (read-only)."""

    uid: str
    ts: float
    source: str | None
    label: str | None
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    proto: str
    service: str | None
    duration: float
    src_bytes: int
    dst_bytes: int
    src_pkts: int
    dst_pkts: int
    conn_state: str | None
    history: str | None
    extra: bytes

def flow_kept(rows: list[Any], out: npt.NDArray[np.float64], /) -> bool:
    """The kept statistics of FlowRow rows into ``out`` [n, kept]; False where a row is anything else."""

def numbers(events: list[Any], attrs: tuple[str, ...], default: float, out: npt.NDArray[np.float64], /) -> bool:
    """Numeric attributes as float64 columns ``out[len(attrs), n]`` (None: ``default``); False: not all
    None or plain numbers."""

def column(events: list[Any], attr: str, /) -> list[Any]:
    """An attribute of every event, as ``list(map(attrgetter(attr), events))``."""

def finite32(src: npt.NDArray[np.float64], dst: npt.NDArray[np.float32], transposed: bool, clip: float,
             values: npt.NDArray[np.float64] = ..., at: tuple[int, ...] = ..., /) -> None:
    """``dst`` = ``src`` (``src.T`` if ``transposed``) with NaN -> 0, clipped to +-``clip``, as float32;
    ``src``'s rows ``at`` read as the rows of ``values``."""

def flow_numbers(nums: npt.NDArray[np.float64], out: npt.NDArray[np.float64], logged: npt.NDArray[np.float64],
                 web: tuple[float, ...], service: tuple[float, ...], /) -> None:
    """The netflow features computed from ``nums`` [7, n], into their rows of ``out`` and ``logged``."""

def flow_features(windows: Windows, rows: list[Any], out: npt.NDArray[np.float64], logged: npt.NDArray[np.float64],
                  web: tuple[float, ...], service: tuple[float, ...], /) -> bool:
    """A batch of FlowRows of CICFlowMeter records: ``out`` [28, n] but its logged rows, ``logged`` [11, n]
    (log1p's arguments, then the source window's counts; ``windows`` updated); False: nothing done."""

def partitions(keys: Sequence[bytes | None], n_partitions: int, /) -> list[int]:
    """Kafka's default partitioner per key: ``(murmur2(key) & 0x7FFFFFFF) % n_partitions`` (None as b"")."""

def where(values: list[Any], /) -> dict[Any, list[int]]:
    """Each distinct value of ``values`` (first seen first) with the positions holding it, ascending."""

def longest(values: list[Any], /) -> int:
    """``max(map(len, values), default=0)``."""

def bounded(events: list[Any], floats: tuple[str, ...], ints: tuple[str, ...], limit: int,
            empty: tuple[str, ...], /) -> bool:
    """Whether every event's ``floats`` are exact finite floats, ``ints`` None or exact ints within
    +-``limit``, ``empty`` false (False: not certain; the caller looks column by column)."""

def all_finite(x: npt.NDArray[np.float32] | npt.NDArray[np.float64], /) -> bool:
    """Whether every value of a C-contiguous float32 or float64 buffer is finite."""
