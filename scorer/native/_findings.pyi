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
    (endpoints, connection, process) is written in C. ``ref``: what has the record's ``topic``,
    ``partition`` and ``offset`` (a SourceRef, or the InputRecord itself)."""

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

def score_records(
    record: Callable[[str, bytes, bytes], Any], topic: str, kind: str, model: str, version: str, backend: str,
    uids: list[str], scores: list[float], alerted: list[bool], rules: list[tuple[str, ...]] | None,
    encode: Callable[[Any], bytes], /,
) -> list[Any]:
    """One kind's score records, ``record(topic, value, key)`` each: value the JSON msgspec writes for the
    row's ScoredEvent (``rules`` left out when the empty tuple), key the uid's UTF-8; ``encode`` writes
    the scores (msgspec, in one call)."""

def item_column(items: list[tuple[Any, Any]], attr: str, /) -> list[Any]:
    """``[event.<attr> for event, _ in items]``: a batch's rows' attribute, read through its slot."""
