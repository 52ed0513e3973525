"""The Grafana dashboard's panels drawn with matplotlib from a live Prometheus: Grafana has
no package here, so this is how the panels' data is shown (one PNG, a subplot per panel,
a line per series of each target, Prometheus' own query_range results)."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

from tests.support.prometheus import PrometheusServer

LEGEND_VAR = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def legend(template: str, labels: dict[str, str]) -> str:
    return LEGEND_VAR.sub(lambda m: labels.get(m.group(1), ""), template).strip() or "{}"


def render_png(panels: list[dict[str, Any]], prom: PrometheusServer, rate_window: str, seconds: float,
               out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    origin = time.time() - seconds  # one time axis for every panel: seconds since the run started
    cols = 2
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(16, 3.2 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        ax.set_title(panel["title"], fontsize=9)
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        ax.set_ylabel(unit, fontsize=8)
        drawn = 0
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", rate_window)
            for series in prom.query_range(expr, seconds):
                points = [(float(t), float(v)) for t, v in series["values"] if math.isfinite(float(v))]
                if points:
                    ax.plot([t - origin for t, _ in points], [v for _, v in points],
                            label=legend(target["legendFormat"], series["metric"]), linewidth=1)
                    drawn += 1
        if drawn:
            ax.legend(fontsize=6, loc="upper left")
        else:
            ax.text(0.5, 0.5, "no series (no dcgm-exporter / GPU here)", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("seconds since the scorer started", fontsize=7)
        ax.set_xlim(0, seconds)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
