"""The report's figures, drawn from report.json's numbers (never from the raw rows), so the
pictures and the JSON cannot disagree. Each figure is a PNG, base64-encoded for embedding.
"""

from __future__ import annotations

import base64
import io
import itertools
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit: reports are built on servers and in CI

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

COLORS = {"malicious": "#c0392b", "benign": "#2e86c1", "unknown": "#999999"}
MAX_CLASSES = 40


def png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _per_kind(kinds: list[str], draw: Callable[[Axes, str], None], height: float = 2.6) -> str:
    fig, axes = plt.subplots(len(kinds), 1, figsize=(9, height * len(kinds)), squeeze=False)
    for ax, kind in zip(axes[:, 0], kinds, strict=True):
        draw(ax, kind)
        ax.set_title(kind, fontsize=10)
    fig.tight_layout()
    return png(fig)


def curves(report: dict[str, Any], which: str) -> str | None:
    """ROC (``roc``) or precision-recall (``pr``) curves, one line per kind."""
    lines = {k: v[which] for k, v in report["curves"].items() if v.get(which)}
    if not lines:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for kind, c in sorted(lines.items()):
        if which == "roc":
            ax.plot(c["fpr"], c["tpr"], label=f"{kind} (AUC {c['auc']:.3f})")
        else:
            ax.step(
                c["recall"],
                c["precision"],
                where="post",
                label=f"{kind} (AP {c['average_precision']:.3f}, base {c['baseline']:.2f})",
            )
    if which == "roc":
        ax.plot([0, 1], [0, 1], color="#bbbbbb", linestyle="--", linewidth=1)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC per kind")
    else:
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall per kind")
    ax.set(xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right" if which == "roc" else "lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return png(fig)


def score_histograms(report: dict[str, Any]) -> str | None:
    kinds = sorted(report["curves"])
    if not kinds:
        return None

    def draw(ax: Axes, kind: str) -> None:
        hist = report["curves"][kind]["score_histogram"]
        edges = [i / 20 for i in range(20)]
        bottom = [0] * 20
        for name in ("benign", "unknown", "malicious"):
            ax.bar(
                edges,
                hist[name],
                width=0.05,
                align="edge",
                bottom=bottom,
                color=COLORS[name],
                label=name,
            )
            bottom = [b + h for b, h in zip(bottom, hist[name], strict=True)]
        ax.set_yscale("symlog")
        ax.set_xlabel("score")
        ax.legend(fontsize=7)

    return _per_kind(kinds, draw)


def classes(report: dict[str, Any]) -> str | None:
    rows = report["classes"][:MAX_CLASSES]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(rows) + 1))
    names = [f"{r['kind']}: {r['label'][:50]}" for r in rows]
    rates = [r["alert_rate"] or 0.0 for r in rows]
    colors = [
        COLORS["unknown" if r["malicious"] is None else "malicious" if r["malicious"] else "benign"]
        for r in rows
    ]
    ax.barh(range(len(rows)), rates, color=colors)
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set(
        xlim=(0, 1),
        xlabel="share alerted (red: detection rate, blue: false alarm rate)",
        title="Alerts per class (label)",
    )
    return png(fig)


def per_hour(report: dict[str, Any]) -> str | None:
    kinds = [k for k, v in sorted(report["alerts_per_hour"].items()) if v["hours"]]
    if not kinds:
        return None

    def draw(ax: Axes, kind: str) -> None:
        h = report["alerts_per_hour"][kind]
        x = range(len(h["hours"]))
        ax.bar(x, h["events"], color="#d5dbdb", label="events")
        ax.bar(x, h["alerts"], color=COLORS["malicious"], label="alerts")
        step = max(1, len(x) // 8)
        ax.set_xticks(list(x)[::step], h["hours"][::step], fontsize=7, rotation=20)
        ax.set_yscale("symlog")
        width = h["bucket_hours"]
        ax.set_ylabel("per hour" if width == 1 else f"per {width} hours")
        ax.legend(fontsize=7)

    return _per_kind(kinds, draw)


def latency(report: dict[str, Any]) -> str | None:
    lat = report["latency_ms"]
    if not lat.get("available") or not lat["alert_histogram"]["counts"]:
        return None
    h = lat["alert_histogram"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    edges = h["edges"]
    widths = [b - a for a, b in itertools.pairwise(edges)]
    ax.bar(edges[:-1], h["counts"], width=widths, align="edge", color="#7d3c98")
    ax.set_xscale("log")
    ax.set(xlabel=lat["axis"], ylabel="alerts", title="End-to-end latency")
    return png(fig)


def incidents(report: dict[str, Any]) -> str | None:
    """Incidents per capture day (benign-only ones apart) and findings per incident."""
    inc = report.get("incidents")
    if not inc or not inc["per_day"]:
        return None
    days = inc["per_day"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5))
    x = range(len(days))
    attack = [d["incidents"] - d["benign_only"] for d in days]
    top.bar(x, attack, color=COLORS["malicious"], label="with an attack finding")
    top.bar(x, [d["benign_only"] for d in days], bottom=attack, color=COLORS["benign"], label="benign-only")
    top.axhline(10, color="#555555", linestyle="--", linewidth=1, label="goal: benign-only <= 10 / day")
    step = max(1, len(days) // 12)
    names = [f"{d['capture'][:12]} {d['day'][5:]}" for d in days]
    top.set_xticks(list(x)[::step], names[::step], fontsize=7, rotation=30, ha="right")
    top.set(ylabel="incidents opened", title="Incidents per day (finding time)")
    top.legend(fontsize=7)
    h = inc["findings_per_incident_histogram"]
    if h["counts"]:
        edges = h["edges"]
        widths = [b - a for a, b in itertools.pairwise(edges)]
        bottom.bar(edges[:-1], h["counts"], width=widths, align="edge", color="#7d3c98")
        bottom.set_xscale("log")
    bottom.set(xlabel="findings per incident", ylabel="incidents",
               title=f"Findings per incident ({inc['alerts_per_incident'] or 0:.1f} alerts per incident overall)")
    fig.tight_layout()
    return png(fig)


FIGURES: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "ROC": lambda r: curves(r, "roc"),
    "Precision-recall": lambda r: curves(r, "pr"),
    "Score distributions": score_histograms,
    "Classes": classes,
    "Alerts per hour": per_hour,
    "Latency": latency,
    "Incidents": incidents,
}
