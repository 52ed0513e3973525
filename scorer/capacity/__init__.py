"""``scorer capacity``: processes, cores, partitions, GPUs and monthly cost for an event rate,
from the benchmark results committed in docs/results (never from constants in the code)."""

from scorer.capacity.measured import Measured, Measurement, load_measured
from scorer.capacity.plan import Plan, PlanError, Prices, plan

__all__ = ["Measured", "Measurement", "Plan", "PlanError", "Prices", "load_measured", "plan"]
