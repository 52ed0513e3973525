from typing import Any

def fold(fields: list[Any] | None, events: list[Any], sel: list[int] | None, n: int, key: str, attr: str | None,
         how: int, cache: dict[str, list[int]], missing: list[int], amask: dict[int, int]) -> dict[Any, int] | None: ...
def fold_many(fields: list[Any] | None, events: list[Any], n: int, present: set[str] | None,
              reads: dict[str, tuple[str | None, int, dict[str, list[int]], list[int]]],
              plan: list[tuple[int, tuple[str, ...]]], skip: frozenset[str] | set[str],
              amask: dict[int, int]) -> list[tuple[str, int, dict[Any, int] | None]]: ...
def pairs(events: list[Any], attrs: tuple[str, ...],
          types: tuple[tuple[type, ...], ...]) -> dict[tuple[Any, ...], int] | None: ...
