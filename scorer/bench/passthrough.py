"""The ceiling: the scorer's own Kafka loop moving the same bytes with no scoring.

``python -m scorer.bench.passthrough`` takes the same ``SCORER_*`` settings as
``scorer run`` and writes every input record, unchanged, to ``SCORER_TOPICS__SCORES``.
Same consumer, same producer, same commit-after-ack: the only difference is the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from scorer.config import Settings
from scorer.metrics import ScorerMetrics
from scorer.pipeline.loop import ScoringLoop
from scorer.pipeline.outcome import BatchOutcome
from scorer.pipeline.records import InputRecord, OutputRecord
from scorer.service.gctune import tune_gc
from scorer.service.http import HealthServer
from scorer.service.signals import stop_on_signals


class PassthroughScorer:
    """Quacks like BatchScorer: every record is "scored" by copying it to the output topic."""

    collect_scores = False

    def __init__(self, topic: str) -> None:
        self.topic = topic

    async def score(self, records: Sequence[InputRecord]) -> BatchOutcome:
        outputs = [OutputRecord(self.topic, r.value or b"", r.key) for r in records]
        n = len(records)
        return BatchOutcome(alerts=outputs, dead_letters=[], scores=[], consumed={"passthrough": n},
                            scored={("passthrough", "none"): n}, failures=[], timings={}, alert_counts={})


async def main() -> None:
    settings = Settings()
    assert settings.topics.scores, "set SCORER_TOPICS__SCORES to the output topic"
    metrics = ScorerMetrics()
    loop = ScoringLoop(settings, PassthroughScorer(settings.topics.scores), metrics)  # type: ignore[arg-type]
    # Same /metrics as the scorer: the bench reads the floor of "added latency" from it.
    http = HealthServer(metrics.registry, lambda: loop.ready, host=settings.http.host, port=settings.http.port)
    await http.start()
    stop_on_signals(loop.request_stop)
    await loop.start()
    tune_gc()
    try:
        await loop.run()
    finally:
        await loop.stop()
        await http.close()


if __name__ == "__main__":
    asyncio.run(main())
