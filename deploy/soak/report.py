"""The soak report: every sample as it is taken (JSON, rewritten whole each minute so a run
cut short still leaves one), the verdict over the last hour, and a plot (matplotlib PNG)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOUR_S = 3600.0


def parse_metrics(text: str) -> tuple[dict[str, float], list[tuple[float, float]]]:
    """Family sums of the counters the soak reads, and the added-latency histogram's
    cumulative buckets (le, count)."""
    sums: dict[str, float] = {}
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        if name == "scorer_added_latency_seconds_bucket":
            le = name_labels.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(value)))
        elif name in (
            "scorer_events_consumed_total",
            "scorer_events_scored_total",
            "scorer_events_dead_lettered_total",
            "scorer_consumption_paused",
        ):
            sums[name] = sums.get(name, 0.0) + float(value)
            if name == "scorer_events_scored_total" and 'backend="triton"' in name_labels:
                sums["scored_by_triton"] = sums.get("scored_by_triton", 0.0) + float(value)
    return sums, sorted(buckets)


def p99(now: list[tuple[float, float]], before: list[tuple[float, float]]) -> float | None:
    """p99 of the observations between two scrapes of one histogram (upper bucket bound);
    after a restart (counts fell) the whole of ``now``."""
    prev = dict(before)
    delta = [(le, c - prev.get(le, 0.0)) for le, c in now]
    if not delta or delta[-1][1] <= 0 or any(d < 0 for _, d in delta):
        delta = now
    total = delta[-1][1] if delta else 0.0
    if total <= 0:
        return None
    for le, count in delta:
        if count >= 0.99 * total:
            return le
    return None


def growth(samples: list[dict[str, Any]], key: str, window_s: float = HOUR_S) -> dict[str, Any]:
    """Growth of ``key`` over the last ``window_s`` of one scorer lifetime (a kill -9 resets
    RSS, so a window across a restart would hide a leak): median of the window's first
    five samples against the median of its last five."""
    if not samples:
        return {"window_s": 0}
    last_start = samples[-1]["scorer_starts"]
    end = samples[-1]["t"]
    window = [s for s in samples if s["scorer_starts"] == last_start and s["t"] >= end - window_s and s[key]]
    if len(window) < 10:
        return {"window_s": 0}
    first = sorted(s[key] for s in window[:5])[2]
    last = sorted(s[key] for s in window[-5:])[2]
    return {
        "window_s": round(window[-1]["t"] - window[0]["t"]),
        "first": first,
        "last": last,
        "growth": round((last - first) / first, 4) if first else None,
    }


@dataclass
class Report:
    path: Path  # .json; the plot goes beside it as .png
    meta: dict[str, Any]
    samples: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        s = self.samples
        return {
            "samples": len(s),
            "hours": round(s[-1]["t"] / HOUR_S, 2) if s else 0.0,
            "accounting_true_every_sample": all(x["accounting_ok"] for x in s),
            "rss_last_hour": growth(s, "scorer_rss_mb"),
            "fds_last_hour": growth(s, "scorer_fds"),
            "pending_max": max((x["pending"] for x in s), default=0),
            "added_latency_p99_max_s": max((x["p99_s"] or 0.0 for x in s), default=0.0),
            "minutes_with_p99_over_10s": sum(1 for x in s if x.get("p99_over_10s")),
            "faults": {k: sum(1 for f in self.faults if f["fault"] == k) for k in {f["fault"] for f in self.faults}},
            "fault_failures": [f for f in self.faults if not f.get("ok", True)],
        }

    def write(self, *, plot: bool = False) -> None:
        doc = {
            "meta": self.meta,
            "summary": self.summary(),
            "final": self.final,
            "faults": self.faults,
            "samples": self.samples,
        }
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, self.path)
        if plot:
            self.plot()

    def plot(self) -> None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:  # the JSON is the report; the plot is a convenience
            return
        s = self.samples
        if not s:
            return
        t = [x["t"] / HOUR_S for x in s]
        series = [
            ("scorer RSS (MB)", "scorer_rss_mb"),
            ("scorer open fds", "scorer_fds"),
            ("pending events (produced, no outcome yet)", "pending"),
            ("added latency p99 per minute (s)", "p99_s"),
        ]
        fig, axes = plt.subplots(len(series), 1, figsize=(10, 10), sharex=True)
        colors = {
            "scorer_kill": "red",
            "broker_restart": "blue",
            "triton_restart": "green",
            "promote": "orange",
            "rollback": "purple",
        }
        for ax, (title, key) in zip(axes, series, strict=True):
            ax.plot(t, [x[key] if x[key] is not None else float("nan") for x in s], lw=1)
            ax.set_ylabel(title, fontsize=8)
            for f in self.faults:
                ax.axvline(f["t"] / HOUR_S, color=colors.get(f["fault"], "grey"), lw=0.5, alpha=0.5)
        bad = [x["t"] / HOUR_S for x in s if not x["accounting_ok"]]
        for b in bad:
            axes[0].axvline(b, color="black", lw=2)
        axes[-1].set_xlabel(
            "hours (vertical lines: red scorer kill -9, blue broker restart, "
            "green Triton restart, orange promote, purple rollback; thick black on the first panel: "
            "a sample whose accounting failed)",
            fontsize=8,
        )
        fig.suptitle(
            f"soak {self.meta.get('started', '')}: {self.meta.get('rate')} events/s, "
            f"{self.meta.get('mode')}, commit {self.meta.get('commit', '')[:8]}",
            fontsize=9,
        )
        fig.tight_layout()
        fig.savefig(self.path.with_suffix(".png"), dpi=90)
        plt.close(fig)
