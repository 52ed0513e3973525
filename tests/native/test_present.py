"""scorer.native's ``present`` (what an EDR batch carries at all, read once per batch) against its
Python reference on generated events: texts, empty texts, None, 0 and False (a value: ``signed``
False is the "unsigned" flag), fields with empty, non-empty and missing values, and a mapping
that is not a dict; and the EDR v3 matrices of batches where only one event carries a column,
both paths."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scorer.native
from scorer.events.structs import EndpointEvent, EventKind
from scorer.features import feature_set
from scorer.features.edr_batch import ATTRS, FIELDS, present, present_reference
from tests.support.native import use_native

_edr: Any = scorer.native.built_module("_edr")
pytestmark = pytest.mark.skipif(_edr is None, reason="scorer.native._edr is not built")
_TEXT = st.one_of(st.none(), st.just(""), st.sampled_from(["cmd.exe", "C:\\x\\lsass.exe", " ", "0"]))
_INT = st.one_of(st.none(), st.integers(-1, 3))
_FIELDS = st.dictionaries(st.sampled_from(["TargetImage", "GrantedAccess", "OriginalFileName", "PrivilegeList",
                                           "ScriptBlockText", "x"]), st.sampled_from(["", "a", "0x1410", " "]),
                          max_size=4)


def _event(texts: list[str | None], ints: list[int | None], signed: bool | None,
           fields: dict[str, str]) -> EndpointEvent:
    names = ("parent_image", "parent_command_line", "command_line", "target_filename", "target_object",
             "image_loaded", "integrity_level", "user")
    texts_of: dict[str, Any] = dict(zip(names, texts, strict=True))
    return EndpointEvent(ts=1.0, host="h", event_code=1, logon_type=ints[0], dst_port=ints[1], signed=signed,
                         fields=fields, **texts_of)


_EVENTS = st.lists(st.builds(_event, st.lists(_TEXT, min_size=8, max_size=8), st.lists(_INT, min_size=2, max_size=2),
                             st.one_of(st.none(), st.booleans()), _FIELDS), max_size=12)


@settings(max_examples=300, deadline=None)
@given(_EVENTS)
def test_present_equals_the_reference(events: list[EndpointEvent]) -> None:
    fields = [e.fields for e in events]
    names = (*FIELDS, "x", "absent")
    assert _edr.present(events, ATTRS, fields, names) == present_reference(events, ATTRS, fields, names)


class _Fields(Mapping[str, str]):  # not a dict: read through items(), as the reference reads it
    def __init__(self, data: dict[str, str]) -> None:
        self.data = data

    def __getitem__(self, key: str) -> str:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def test_present_reads_other_mappings_and_refuses_bad_input() -> None:
    events = [EndpointEvent(ts=1.0, host="h", event_code=1, signed=False)]
    fields: list[Any] = [_Fields({"a": "", "b": "x"})]
    names = ("a", "b", "c")
    assert _edr.present(events, ATTRS, fields, names) == ({"signed"}, {"b"}) == present_reference(
        events, ATTRS, fields, names)
    with pytest.raises(AttributeError):
        _edr.present(events, ("no_such_attribute",), [], ())
    with pytest.raises(AttributeError):  # as the reference's ``.get`` raises
        _edr.present(events, ATTRS, [42], names)
    with pytest.raises(AttributeError):
        present_reference(events, ATTRS, [42], names)  # type: ignore[list-item]


@pytest.mark.parametrize("attr", ["target_filename", "integrity_level", "user", "logon_type", "dst_port", "signed",
                                  "command_line", "parent_image"])
def test_one_event_carrying_a_column_gives_the_same_matrix(monkeypatch: pytest.MonkeyPatch, attr: str) -> None:
    value: Any = {"logon_type": 3, "dst_port": 443, "signed": False}.get(attr, "C:\\Users\\Public\\evil.exe")
    events = [EndpointEvent(ts=float(i), host="h", event_code=1 if i % 2 else 4624) for i in range(17)]
    events[9] = EndpointEvent(ts=9.0, host="h", event_code=4624, **{attr: value},
                              fields={"TargetImage": "C:\\Windows\\lsass.exe", "GrantedAccess": "0x1410"})
    matrices = []
    for native in ("0", "1"):
        with monkeypatch.context() as m:
            use_native(m, native)
            matrices.append(feature_set(EventKind.EDR, "v3").transform(events))
    assert matrices[0].tobytes() == matrices[1].tobytes()
    assert np.count_nonzero(matrices[1][9]) > np.count_nonzero(matrices[1][0])  # the column was written


def test_present_switches_with_scorer_native(monkeypatch: pytest.MonkeyPatch) -> None:
    events = [EndpointEvent(ts=1.0, host="h", event_code=1, user="", logon_type=0, fields={"a": "x", "b": ""})]
    for native in ("0", "1"):
        with monkeypatch.context() as m:
            use_native(m, native)
            assert present(events, ATTRS, [e.fields for e in events], ("a", "b")) == ({"logon_type"}, {"a"})


def test_a_large_batch_is_its_small_batches_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """EDR features are stateless: a 300-event batch (every column carried by some event) has the
    rows of the same events in 50-event batches (most columns carried by none of a batch's events)."""
    events = [EndpointEvent(ts=float(i), host="h", event_code=(1, 10, 4624, 7)[i % 4],
                            user="SYSTEM" if i % 7 else None, logon_type=3 if i % 4 == 2 else None,
                            fields={"GrantedAccess": "0x1410"} if i % 4 == 1 else {})
              for i in range(300)]
    use_native(monkeypatch, "1")
    features = feature_set(EventKind.EDR, "v3")
    whole = features.transform(events)
    parts = np.concatenate([features.transform(events[i:i + 50]) for i in range(0, len(events), 50)])
    assert whole.tobytes() == parts.tobytes()
