"""Score records written by scorer.native._findings from a batch's columns are, byte for byte,
those of the reference (each ScoredEvent encoded by msgspec, keyed by its uid's UTF-8): on
batches of the bundled capture scored by the service's BatchScorer (EDR rule hits, uids with
escapes and non-ASCII text) and on hostile columns."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import msgspec
import numpy as np
import pytest

from scorer.bench.loadgen import payloads, templates
from scorer.config import Settings
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind
from scorer.native import findings
from scorer.pipeline.outcome import BatchOutcome, KindScores, ScoredEvent, ScoredEvents
from scorer.pipeline.records import OutputRecord
from scorer.pipeline.sink import score_records
from scorer.pipeline.source import input_record
from scorer.service.build import build_scorer
from tests.support.native import use_native

needs_c = pytest.mark.skipif(not findings.built(), reason="scorer.native._findings is not built")
# Uids as the events' JSON may carry them: escapes, non-ASCII, a line separator, a lone quote.
_UIDS = (rb"\u00e9t\u00e9-", "日本-✓-".encode(), rb"q\"\\\n\t\u0001-", rb"\u2028\ud83d\ude00-")


def _records(monkeypatch: pytest.MonkeyPatch, scores: Sequence[ScoredEvent], native: str) -> list[OutputRecord]:
    with monkeypatch.context() as m:
        use_native(m, native)
        return score_records("scores", scores, msgspec.json.Encoder())


def _outcomes(n: int, batch: int) -> list[BatchOutcome]:
    stream = payloads(templates(bundled_capture(), tuple(EventKind)), n)
    records = [input_record(kind, value.replace(b'{"uid":"', b'{"uid":"' + _UIDS[i % len(_UIDS)], 1), key,
                            f"events.{kind.value}", 0, i)
               for i, (kind, key, value) in enumerate(stream)]
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))  # type: ignore[arg-type]

    async def run() -> list[BatchOutcome]:
        return [await scorer.score(records[i : i + batch]) for i in range(0, len(records), batch)]

    return asyncio.run(run())


@needs_c
def test_the_captures_score_records_are_the_references(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes = _outcomes(3000, 700)
    written = [r for o in outcomes for r in _records(monkeypatch, o.scores, "1")]
    reference = [r for o in outcomes for r in _records(monkeypatch, list(o.scores), "0")]
    assert written == reference and len(written) == 3000
    events = [msgspec.json.decode(r.value, type=ScoredEvent) for r in written]
    assert {e.kind for e in events} == set(EventKind)
    assert any(e.rules for e in events), "no EDR rule hit: the rules' member is not covered"
    assert any(e.alerted for e in events) and not all(e.alerted for e in events)
    assert any(not e.uid.isascii() for e in events) and any("\n" in e.uid for e in events)
    assert [r.key for r in written] == [e.uid.encode() for e in events]


def _hostile(rng: random.Random, n: int) -> KindScores:
    texts = ["", "a", "é", "\u2028", "\x00\x1f\x7f", '"\\', "😀", "line\nbreak", "x" * 40]
    # float32 scores as the models give them, the edges of msgspec's fixed and exponent layouts included
    edges = [0.0, -0.0, 1.0, 1e-5, 1e-4, 9.99e-5, 1e-7, 3.4e38, 1.4e-45, 0.1, 1 / 3, 123456.78]
    probs = np.array(edges + [rng.random() ** rng.choice([1, 5, 20]) for _ in range(n - len(edges))],
                     dtype=np.float32)
    rules = [tuple(rng.choice(texts) for _ in range(rng.choice([0, 0, 1, 3]))) for _ in range(n)]
    rules[:2] = [(), []]  # type: ignore[list-item]  # the default left out, an empty list written
    return KindScores(EventKind.EDR, [rng.choice(texts) + str(i) for i in range(n)], probs.tolist(),
                      rng.choice(texts), rng.choice(texts), "onnx\"runtime", [rng.random() < 0.3 for _ in range(n)],
                      rules)


@needs_c
def test_hostile_columns_are_written_as_the_reference_writes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(16)
    scores = ScoredEvents()
    for _ in range(5):
        scores.add(_hostile(rng, 200))
    scores.add(KindScores(EventKind.NETFLOW, ["n1", "n2"], [0.5, 0.25], "m", "1", "b", [True, False], None))
    written = _records(monkeypatch, scores, "1")
    assert written == _records(monkeypatch, list(scores), "0")
    assert written[-2].value == b'{"kind":"netflow","uid":"n1","score":0.5,"model":"m","version":"1",' \
                                b'"backend":"b","alerted":true}'


def test_the_reference_path_writes_columns_too(monkeypatch: pytest.MonkeyPatch) -> None:
    scores = ScoredEvents()
    scores.add(_hostile(random.Random(7), 50))
    written = _records(monkeypatch, scores, "0")
    assert [r.value for r in written] == [msgspec.json.encode(e) for e in scores]
    assert len(scores) == len(written) == 50 and scores[3] == list(scores)[3]


@needs_c
def test_columns_of_different_lengths_are_refused() -> None:
    from scorer.native import _findings as native

    with pytest.raises(ValueError, match="different lengths"):
        native.score_records(OutputRecord, "t", "edr", "m", "1", "b", ["u"], [0.5, 0.1], [True], None,
                             msgspec.json.encode)
