from collections.abc import Callable
from typing import Any

def finding(
    consts: tuple[Any, ...], event: Any, what: int, ref: Any, decision: Any, now_ms: int,
    evidence: bytes | tuple[bytes], rules: tuple[str, str, bytes, bytes] | None, /,
) -> bytes | None:
    """An alert's finding as ``scorer.alerts.ocsf.encode(detection_finding(...))`` writes it, its
    ``escape_json`` included (scorer.alerts.findingjson.FindingWriter), or None: a score or time that
    is not a float, or an event value of a type no decoder makes (the reference path writes those).
    ``evidence``: the evidence's JSON, or ``(data,)``: the event's JSON, around which the evidence
    (endpoints, connection, process) is written in C."""

def flow_extra(
    raw: Any, names: tuple[bytes, ...], decode_floats: Callable[[bytes], list[float]],
    encode: Callable[[Any], bytes], /,
) -> bytes | None:
    """A flow's statistics object as msgspec writes the dict[str, float] it decodes to, or None."""

def top_features(
    x: Any, weights: Any, center: Any, scale: Any, k: int, names: list[str], rows: list[int], /,
) -> list[list[tuple[str, float, float]]]:
    """Each listed row's ``k`` largest positive contributions ``weights * (x - center) / scale``
    (float32), most first, with their values, rounded to 6 places as NumPy rounds each dtype."""

def flow_split(
    record: bytes, names: tuple[bytes, ...], decode_floats: Callable[[bytes], list[float]],
    encode: Callable[[Any], bytes], /,
) -> tuple[bytes, bytes | None] | None:
    """The record with its "extra" object replaced by ``{}``, and that object as flow_extra
    writes it (None: the record has none), or None: not the plain case."""

def alerted(scores: Any, threshold: float, cutoffs: Any, /) -> tuple[list[int], list[float], list[int]]:
    """The rows whose float32 score reaches the threshold (compared in float32), their scores, and
    how many of the ascending float64 cut-offs each reaches."""
