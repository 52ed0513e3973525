"""Score records: one per scored event, each exactly the event's own JSON, keyed by its uid."""

from __future__ import annotations

import msgspec

from scorer.events.structs import EventKind
from scorer.pipeline.outcome import ScoredEvent
from scorer.pipeline.sink import score_records


def _scores() -> list[ScoredEvent]:
    uids = ["a", "line\nbreak", "quote\"comma,", "é\u2028", ""]
    return [ScoredEvent(kind, uid, i / 7, "m", "3", "onnxruntime", i % 2 == 0, ("r1", "r\n2") if i == 1 else ())
            for i, (kind, uid) in enumerate(zip(list(EventKind) * 2, uids, strict=False))]


def test_score_records_are_each_events_json_keyed_by_uid() -> None:
    scores = _scores()
    records = score_records("scores", scores, msgspec.json.Encoder())
    assert [r.value for r in records] == [msgspec.json.encode(s) for s in scores]
    assert [r.key for r in records] == [s.uid.encode() for s in scores]
    assert {r.topic for r in records} == {"scores"}
    assert [msgspec.json.decode(r.value, type=ScoredEvent) for r in records] == scores


def test_no_topic_or_no_scores_no_records() -> None:
    assert score_records(None, _scores(), msgspec.json.Encoder()) == []
    assert score_records("scores", [], msgspec.json.Encoder()) == []
