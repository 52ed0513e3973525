"""Shared helpers of the fault-injection tests (one import point for every test module).

Every scorer under test is a real ``python -m scorer.cli run`` subprocess configured by
``SCORER_*`` environment variables (as in production), so ``kill -9`` and RSS measure the
real thing, not a coroutine inside pytest.

- :mod:`.process`: topics and env of one test, the scorer process, RSS sampling;
- :mod:`.streams`: paced streams with hostile records, reading outputs, the uid ledger;
- :mod:`.live`: a stream that flows while the faults happen, and its outcomes;
- :mod:`.network`: TLS material, a TLS-only tritonserver, a broker produce quota.
"""

from tests.support.faults.live import Ending, LiveFeed, finish, read_outcomes
from tests.support.faults.network import TlsFiles, TlsTritonServer, make_tls, set_produce_quota
from tests.support.faults.process import (
    RssWatch,
    ScorerProcess,
    Topics,
    new_topics,
    plaintext,
    rss_bytes,
    running_scorer,
    score_backends,
    scorer_env,
    seed,
    stopped_on_exit,
    usable_kinds,
)
from tests.support.faults.streams import (
    BAD_EVERY,
    Ledger,
    LedgerReport,
    Record,
    Tally,
    endless_stream,
    feed,
    make_stream,
    read_topics,
)

__all__ = [
    "BAD_EVERY",
    "Ending",
    "Ledger",
    "LedgerReport",
    "LiveFeed",
    "Record",
    "RssWatch",
    "ScorerProcess",
    "Tally",
    "TlsFiles",
    "TlsTritonServer",
    "Topics",
    "endless_stream",
    "feed",
    "finish",
    "make_stream",
    "make_tls",
    "new_topics",
    "plaintext",
    "read_outcomes",
    "read_topics",
    "rss_bytes",
    "running_scorer",
    "score_backends",
    "scorer_env",
    "seed",
    "set_produce_quota",
    "stopped_on_exit",
    "usable_kinds",
]
