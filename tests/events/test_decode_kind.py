"""``decode_kind``: the rows ``decode_rows`` gives, and whether every one of them is a row with
a uid (the pipeline then keeps them as they are), native part on and off."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import scorer.native
from scorer.events.columnar import decode_kind, decode_rows
from scorer.events.decode import EventDecoder
from scorer.events.structs import EventKind, SourceRef
from tests.support.native import use_native
from tests.support.samples import SAMPLES
from tests.support.strategies import FUZZ, hostile_record

MAX = 64 * 1024
DECODER = EventDecoder(MAX)
REF = SourceRef("events.x", 0, 7)
NATIVE = ["0", "auto"] if scorer.native.built() else ["0"]


def _same_rows(kind: EventKind, values: Sequence[bytes | None], views: bool) -> bool:
    """Whether decode_kind said whole; its rows are decode_rows', and whole only if every row
    is one with a uid (False may also say "look at each row": the pipeline then does)."""
    rows, whole = decode_kind(kind, values, MAX, views)
    reference = decode_rows(kind, values, MAX, views)
    assert [None if r is None else (type(r), r.uid, r.ts) for r in rows] == [
        None if r is None else (type(r), r.uid, r.ts) for r in reference]
    assert not whole or all(r is not None and r.uid for r in rows)
    return whole


@pytest.mark.data
@FUZZ
@given(records=st.lists(hostile_record(), min_size=1, max_size=8), native=st.sampled_from(NATIVE))
def test_whole_says_every_row_decoded_with_its_uid(records: list[tuple[EventKind | None, bytes | None]],
                                                   native: str) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_native(monkeypatch, native)
        for kind in EventKind:
            values = [v for k, v in records if k is kind]
            if values:
                for views in (False, True):
                    _same_rows(kind, values, views)


@pytest.mark.data
@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("kind", list(EventKind))
def test_one_record_a_batch_cannot_take_sends_the_batch_to_the_checks(monkeypatch: pytest.MonkeyPatch, native: str,
                                                                      kind: EventKind) -> None:
    use_native(monkeypatch, native)
    # canonical records (what the columnar path reads): the samples' events as msgspec writes them
    good = [msgspec.json.encode(DECODER.decode(kind, value, REF)) for _, _, value in SAMPLES[kind]()[:6]]
    plain = msgspec.json.decode(good[0])
    bad: list[Any] = [None, b"{", good[0] + b" " * MAX, msgspec.json.encode({**plain, "uid": ""}),
                      msgspec.json.encode({**plain, "ts": 1e400}), msgspec.json.encode({**plain, "uid": 7})]
    for views in (False, True):
        # the common case is whole: EDR events and SIEM alerts, and flows the native scanner reads
        fast = kind is not EventKind.NETFLOW or (views and native != "0")
        assert _same_rows(kind, good, views) == fast
        for value in bad:
            for at in (0, 3, 6):
                assert not _same_rows(kind, [*good[:at], value, *good[at:]], views)
