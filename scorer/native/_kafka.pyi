from collections.abc import Callable, Sequence
from typing import Any

def place(records: Sequence[Any], parts: dict[str, list[int]], /) -> dict[tuple[str, int], list[Any]] | list[str]:
    """The records grouped per (topic, partition) where send() puts them (their own partition,
    else by key, keyless ones round-robin by index); or the topics ``parts`` lacks."""

def fill(append: Callable[..., Any], records: list[Any], start: int, offset: int, /) -> int:
    """``append(offset + j, None, key, value, headers)`` for records[start + j] until it returns
    None (full); how many were appended."""
