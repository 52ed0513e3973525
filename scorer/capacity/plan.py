"""From an event rate and an alert rate to processes, cores, partitions, GPUs and cost.

Every process is sized to run at ``utilisation`` of what it was measured to do (default
0.6: 40% headroom for bursts, rebalances and a lost node); partitions are sized for
``growth`` times that, because adding partitions later moves keys between them (entity
profiles and incident state are keyed). GPUs get one spare beyond what the load needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from scorer.capacity.measured import GPU_KINDS, Measured
from scorer.errors import ConfigError

HOURS_PER_MONTH = 730.0
MAX_PARTITIONS_PER_TOPIC = 4096  # past this, split the stream across clusters: no plan extrapolates that far


class PlanError(ConfigError):
    """An input no deployment can meet, with the reason."""


@dataclass(frozen=True)
class Prices:
    """Example on-demand rates in USD, not quotes: override any of them with ``--prices FILE``."""

    core_hour: float = 0.04
    gib_hour: float = 0.005
    gpu_hour_h200: float = 3.80
    gpu_hour_h100: float = 3.00
    gpu_hour_l40s: float = 1.20
    partition_hour: float = 0.0015  # managed Kafka partition; storage and traffic not included

    @classmethod
    def override(cls, values: dict[str, object]) -> Prices:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise PlanError(f"unknown price keys {unknown}; known: {sorted(known)}")
        bad = {k: v for k, v in values.items() if not isinstance(v, int | float) or isinstance(v, bool) or v < 0}
        if bad:
            raise PlanError(f"prices must be numbers >= 0: {bad}")
        return cls(**{k: float(v) for k, v in values.items()})  # type: ignore[arg-type]

    def gpu_hour(self, gpu: str) -> float:
        return float(getattr(self, f"gpu_hour_{gpu}"))


@dataclass(frozen=True)
class Role:
    name: str
    processes: int
    cores: float  # per process (the chart's request)
    gib: float  # per process (the chart's request)


@dataclass
class Plan:
    events_per_s: float
    alert_rate: float
    gpu: str
    roles: list[Role]
    partitions_per_topic: int
    alert_partitions: int
    gpus: int | None  # None: not measured for this GPU kind
    gpu_busy: float | None  # share of the GPUs' measured rate the load takes, spare excluded
    notes: list[str] = field(default_factory=list)
    monthly: dict[str, float] = field(default_factory=dict)

    @property
    def cores(self) -> float:
        return sum(r.processes * r.cores for r in self.roles)


def _check(events_per_s: float, alert_rate: float, utilisation: float, growth: float, gpu: str) -> None:
    if not math.isfinite(events_per_s) or events_per_s <= 0:
        raise PlanError(f"--events-per-second must be a finite number > 0, got {events_per_s}")
    if not math.isfinite(alert_rate) or not 0 <= alert_rate <= 1:
        raise PlanError(f"--alert-rate is alerts per event, between 0 and 1, got {alert_rate}")
    if not 0 < utilisation <= 1:
        raise PlanError(f"--utilisation is the share of a measured rate to plan for, in (0, 1], got {utilisation}")
    if not math.isfinite(growth) or growth < 1:
        raise PlanError(f"--growth is how many times today's rate the partitions must carry, >= 1, got {growth}")
    if gpu not in GPU_KINDS:
        raise PlanError(f"--gpu must be one of {GPU_KINDS}, got {gpu!r}")


def plan(m: Measured, events_per_s: float, alert_rate: float, *, gpu: str = "h200", utilisation: float = 0.6,
         growth: float = 2.0, spare_gpus: int = 1, gpu_rows_per_s: float | None = None,
         prices: Prices | None = None) -> Plan:
    _check(events_per_s, alert_rate, utilisation, growth, gpu)
    prices = prices or Prices()
    alerts_per_s = events_per_s * alert_rate

    def need(rate: float, per_process: float) -> int:
        return max(1, math.ceil(rate / (per_process * utilisation)))

    scorers = need(events_per_s, m.scorer_eps.value)
    partitions = math.ceil(scorers * growth)
    if partitions > MAX_PARTITIONS_PER_TOPIC:
        raise PlanError(f"{events_per_s:g} events/s needs {scorers} scorer processes and {partitions} partitions per "
                        f"input topic, over {MAX_PARTITIONS_PER_TOPIC}: split the stream across Kafka clusters and "
                        "plan each; this tool does not extrapolate that far from one measured process")
    roles = [
        Role("scorer", scorers, 1.0, 1.0),
        Role("profile worker", need(events_per_s, m.profiles_eps.value), 1.0, 2.0),
        Role("incident job", need(alerts_per_s, m.incidents_fps.value) if alerts_per_s else 0, 1.0, 1.0),
    ]
    notes = [f"scorer: {m.scorer_eps.value:,.0f} events/s per process ({m.scorer_eps.source}; {m.scorer_eps.caveat})",
             f"profile worker: {m.profiles_eps.value:,.0f} events/s per process ({m.profiles_eps.source}; "
             f"{m.profiles_eps.caveat})",
             f"incident job: {m.incidents_fps.value:,.0f} findings/s per process ({m.incidents_fps.source}; "
             f"{m.incidents_fps.caveat})"]
    measured = m.gpu_rows.get(gpu)
    rows = gpu_rows_per_s if gpu_rows_per_s is not None else (measured.value if measured else None)
    gpus = busy = None
    if gpu_rows_per_s is not None:
        notes.append(f"GPU: {gpu_rows_per_s:,.0f} rows/s per {gpu} from --gpu-rows-per-second (not docs/results)")
    elif measured is not None:
        notes.append(f"GPU: {measured.value:,.0f} rows/s per {gpu} ({measured.source}"
                     + (f"; {measured.caveat})" if measured.caveat else ")"))
    else:
        notes.append(f"GPU: NOT MEASURED for {gpu}: no GPU count or GPU cost; run deploy/gpu/bench.sh on one and pass "
                     "--gpu-rows-per-second")
    if rows is not None:
        load = events_per_s / rows  # one row per event: each event is scored by its kind's model once
        gpus = max(1, math.ceil(load / utilisation)) + spare_gpus
        busy = load / (gpus - spare_gpus)
        roles.append(Role(f"triton ({gpu})", gpus, 4.0, 8.0))
    # The incident job reads the alert topics: their partitions bound its processes, with the same growth.
    alert_partitions = max(1, math.ceil(roles[2].processes * growth))
    result = Plan(events_per_s, alert_rate, gpu, roles, partitions, alert_partitions, gpus, busy, notes)
    cpu = sum(r.processes * (r.cores * prices.core_hour + r.gib * prices.gib_hour) for r in roles)
    result.monthly = {
        "cpu and memory": cpu * HOURS_PER_MONTH,
        "kafka partitions": (3 * partitions + 3 * result.alert_partitions) * prices.partition_hour * HOURS_PER_MONTH,
    }
    if gpus is not None:
        result.monthly[f"GPUs ({gpu})"] = gpus * prices.gpu_hour(gpu) * HOURS_PER_MONTH
    return result
