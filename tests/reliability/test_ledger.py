"""The ledger itself: it must catch a good event dead-lettered, a hostile one scored, a lost
one and a missing alert, or the fault tests prove less than they say (no services needed)."""

from __future__ import annotations

import json
from typing import TypeAlias

import pytest
from aiokafka.structs import ConsumerRecord

from scorer.events.structs import EventKind
from scorer.pipeline.deadletter import HEADER_PREFIX
from tests.support.faults import Ledger, Topics, make_stream

pytestmark = pytest.mark.data

TOPICS = Topics("rtest", (EventKind.EDR,))
Out: TypeAlias = ConsumerRecord[bytes, bytes]


def _out(topic: str, value: bytes, headers: tuple[tuple[str, bytes], ...] = (), offset: int = 0) -> Out:
    return ConsumerRecord(topic, 0, offset, 1000 + offset, 0, None, value, None, 0, len(value), headers)


def _score(uid: str, alerted: bool = False) -> Out:
    return _out(TOPICS.scores, json.dumps({"uid": uid, "alerted": alerted}).encode())


def _alert(uid: str) -> Out:
    return _out(TOPICS.alerts(EventKind.EDR), json.dumps({"unmapped": {"scorer": {"event_uid": uid}}}).encode())


def _dead(value: bytes, reason: str = "invalid_json") -> Out:
    return _out(TOPICS.dlq, value, ((f"{HEADER_PREFIX}reason", reason.encode()),))


def _right_outputs() -> tuple[Ledger, list[Out]]:
    records = make_stream([EventKind.EDR], "l", per_kind=80)
    ledger = Ledger.of(records, TOPICS)
    outputs = [_dead(r.value) if r.bad else _score(r.uid) for r in records]
    return ledger, outputs


def test_every_good_event_scored_and_every_bad_one_dead_lettered_is_clean() -> None:
    ledger, outputs = _right_outputs()
    assert len(ledger.bad) == 2 and len(ledger.good) == 78  # one in BAD_EVERY, by construction
    outputs += [_score("alerting", alerted=True), _alert("alerting")]
    ledger.good.add("alerting")
    assert ledger.complete(outputs)
    report = ledger.report(outputs)
    assert not report.problems() and report.duplicate_count == 0, report.problems()
    assert report.reasons == {"invalid_json": 2}


def test_a_good_event_dead_lettered_is_a_failure_not_accounted() -> None:
    ledger, outputs = _right_outputs()
    victim = sorted(ledger.good)[0]
    outputs = [m for m in outputs if m.value is None or victim.encode() not in m.value]
    outputs.append(_dead(json.dumps({"uid": victim}).encode(), reason="scoring_error"))
    assert ledger.complete(outputs)  # every input has *an* outcome ...
    assert ledger.report(outputs).problems() == {"good dead-lettered": (1, [victim])}  # ... the wrong one


def test_bad_scored_lost_missing_alert_and_missing_reason_are_failures() -> None:
    ledger, outputs = _right_outputs()
    bad = sorted(ledger.bad)
    good = sorted(ledger.good)
    outputs = [m for m in outputs if m.value is None or not any(u.encode() in m.value for u in (*bad, good[0]))]
    outputs += [_score(bad[0]), _score("alerting", alerted=True), _dead(b'{"uid": "%s"}' % bad[1].encode(), "")]
    ledger.good.add("alerting")
    assert not ledger.complete(outputs)  # good[0] has no outcome: reading would go on
    problems = ledger.report(outputs).problems()
    assert problems == {"lost": (1, [good[0]]), "bad scored": (1, [bad[0]]), "alerts missing": (1, ["alerting"]),
                        "dead letters without reason": (1, [bad[1]])}


def test_duplicates_are_counted_and_stamped() -> None:
    ledger, outputs = _right_outputs()
    uid = sorted(ledger.good)[0]
    outputs.append(_out(TOPICS.scores, json.dumps({"uid": uid, "alerted": False}).encode(), offset=7))
    report = ledger.report(outputs)
    assert report.duplicates == {uid: 1} and not report.problems()
    assert sorted(ledger.tally(outputs).stamps[uid]) == [1000, 1007]
