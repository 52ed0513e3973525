"""One ``/metrics`` for a supervisor and its worker processes.

Each worker (``scorer run --processes N``) serves its own registry on a port of the
loopback interface; the supervisor's endpoint scrapes them all when it is scraped and
re-exposes every sample with a ``worker`` label (the worker's index, stable across
restarts), beside its own metrics. Prometheus sums across workers in queries
(``sum without (worker) (rate(scorer_events_scored_total[1m]))``); a restarted worker's
counters start again from zero under the same labels, which ``rate()`` reads as a counter
reset. Why not prometheus_client's multiprocess mode: it keeps only plain counters, gauges
and histograms in its shared files, while the scorer also exposes collectors of its own
(weighted latency histograms, profile and lifecycle state).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

SCRAPE_TIMEOUT_S = 2.0


def merge_expositions(texts: Iterable[tuple[str, str]], label: str = "worker") -> list[Metric]:
    """Families of several Prometheus text expositions, each sample labelled with the name
    its text came with (``(name, text)`` pairs); families of one name merged."""
    merged: dict[str, Metric] = {}
    for name, text in texts:
        for family in text_string_to_metric_families(text):
            into = merged.get(family.name)
            if into is None:
                into = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            into.samples.extend(
                Sample(s.name, {label: name, **s.labels}, s.value, s.timestamp, s.exemplar) for s in family.samples
            )
    return list(merged.values())


def fetch(url: str, timeout: float = SCRAPE_TIMEOUT_S) -> tuple[int, str]:
    """GET ``url``: status and body; status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""
    except OSError:
        return 0, ""


class WorkerMetrics(Collector):
    """Scrapes ``targets()`` (worker name -> base URL) on each collect, in parallel.

    A worker that does not answer (starting, restarting) is left out of that scrape; the
    supervisor's own ``scorer_worker_up`` says which.
    """

    def __init__(self, targets: Callable[[], Sequence[tuple[str, str]]]) -> None:
        self.targets = targets
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="scrape")

    def collect(self) -> Iterator[Metric]:
        targets = list(self.targets())
        answers = self._pool.map(lambda t: (t[0], fetch(t[1] + "/metrics")), targets)
        yield from merge_expositions((name, text) for name, (status, text) in answers if status == 200)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
