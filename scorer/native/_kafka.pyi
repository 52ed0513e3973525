from collections.abc import Callable, Iterable, Sequence
from typing import Any

def place(records: Sequence[Any], parts: dict[str, list[int]], /) -> dict[tuple[str, int], list[Any]] | list[str]:
    """The records grouped per (topic, partition) where send() puts them (their own partition,
    else by key, keyless ones round-robin by index); or the topics ``parts`` lacks."""

def fill(append: Callable[..., Any], records: list[Any], start: int, offset: int, /) -> int:
    """``append(offset + j, None, key, value, headers)`` for records[start + j] until it returns
    None (full); how many were appended."""

def inputs(records: Iterable[Any], topic: str, partition: int, topic_kind: Any, kind_of: Callable[[Any, Any], Any],
           input_type: Callable[..., Any], ref_type: Callable[..., Any], /) -> list[Any]:
    """``input_type(kind, value, key, ref_type(topic, partition, offset, timestamp))`` of each
    record; kind: ``topic_kind``, or ``kind_of(headers, topic_kind)`` where it has headers."""
