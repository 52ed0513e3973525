"""scorer.features.texts.text_memo: the values of the function it wraps, cached only for texts
up to the bound (a record's 100 kB field is computed, never kept)."""

from __future__ import annotations

from scorer.features.texts import text_memo


def test_values_are_the_functions_and_long_texts_are_not_kept() -> None:
    seen: list[str] = []

    def row(text: str) -> tuple[float, ...]:
        seen.append(text)
        return (float(len(text)), float("x" in text))

    memo = text_memo(row, lower=True, longest=8, size=2)
    assert memo("AbX") == row("abx") and memo("AbX") == (3.0, 1.0)
    seen.clear()
    assert memo("AbX") == (3.0, 1.0) and seen == []  # cached: not computed again
    long = "X" * 9
    assert memo(long) == memo(long) == (9.0, 1.0) and seen == ["x" * 9, "x" * 9]  # beyond the bound: each time
    for text in ("a", "b", "c"):  # the cache holds ``size`` texts, the least recently used go first
        memo(text)
    seen.clear()
    assert memo("AbX") == (3.0, 1.0) and seen == ["abx"]
