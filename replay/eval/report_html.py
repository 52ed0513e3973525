"""report.html: one self-contained page (inline CSS, figures as base64 PNG, no script, no
network), rendered from the same dict as report.json."""

from __future__ import annotations

import html
from typing import Any

from . import plots

MAX_ROWS = 300  # per table; report.json has them all

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}
td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}
th{background:#f4f6f6}td:first-child,th:first-child{text-align:left}
.note{color:#555;font-size:13px}.na{color:#999}img{max-width:100%;display:block;margin:1em 0}
"""


def _cell(v: Any) -> str:
    if v is None:
        return '<td class="na">n/a</td>'
    if isinstance(v, float):
        return f"<td>{v:.4g}</td>"
    if isinstance(v, dict):
        v = ", ".join(f"{k}={x}" for k, x in v.items()) or "-"
    return f"<td>{html.escape(str(v))}</td>"


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return '<p class="na">none</p>'
    cols = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(_cell(r.get(c)) for c in cols) + "</tr>" for r in rows[:MAX_ROWS]
    )
    more = (
        f'<p class="note">{len(rows) - MAX_ROWS} more rows in report.json</p>'
        if len(rows) > MAX_ROWS
        else ""
    )
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def pairs(d: dict[str, Any]) -> str:
    return table([{"": k, "value": v} for k, v in d.items()], ["", "value"])


def _figure(title: str, b64: str | None) -> str:
    if b64 is None:
        return f'<p class="na">{html.escape(title)}: n/a (nothing to plot)</p>'
    return f'<img alt="{html.escape(title)}" src="data:image/png;base64,{b64}">'


def render(report: dict[str, Any]) -> str:
    esc = html.escape
    overall = [{"kind": k} | v for k, v in report["overall"].items()]
    lat = report["latency_ms"]
    figures = {name: draw(report) for name, draw in plots.FIGURES.items()}
    curves = [
        {
            "kind": k,
            "ROC AUC": (v["roc"] or {}).get("auc"),
            "average precision": (v["pr"] or {}).get("average_precision"),
            "scored with truth": v["scored_with_truth"],
        }
        for k, v in report["curves"].items()
    ]
    labels = report["capture_labels"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>scorer evaluation</title><style>{CSS}</style></head><body>",
        "<h1>scorer evaluation</h1>",
        f"<p class='note'>generated {esc(report['generated'])}; decisions from "
        f"{esc(report['decisions_from'])}; inputs: {esc(str(report['inputs']))}</p>",
        "<h2>Reconciliation</h2>",
        pairs(report["reconciliation"]),
        "<h2>Detection (events with known truth)</h2>",
        table(
            overall,
            [
                "kind",
                "events",
                "malicious",
                "benign",
                "prevalence",
                "tp",
                "fp",
                "fn",
                "tn",
                "precision",
                "recall",
                "f1",
                "false_positive_rate",
            ],
        ),
        "<h2>Curves</h2>",
        table(curves),
        _figure("ROC", figures["ROC"]),
        _figure("Precision-recall", figures["Precision-recall"]),
        _figure("Score distributions", figures["Score distributions"]),
        "<h2>Per class (label)</h2>",
        _figure("Classes", figures["Classes"]),
        table(report["classes"]),
        "<h2>Per capture</h2>",
        table(report["captures"]),
        "<h2>Weakly labelled captures</h2>",
        f"<p>attack captures with at least one alert: {labels['detected']} of "
        f"{labels['attack_captures']} (share {labels['share_detected']})</p>",
        table(labels["by_label"]),
        "<h2>Unknown ground truth (not counted as benign)</h2>",
        pairs(report["unknown_truth"]),
        "<h2>Alerts per hour (capture time)</h2>",
        _figure("Alerts per hour", figures["Alerts per hour"]),
        "<h2>End-to-end latency</h2>",
        pairs({k: v for k, v in lat.items() if k != "alert_histogram"}),
        _figure("Latency", figures["Latency"]) if lat.get("available") else "",
        *_incidents(report, figures["Incidents"]),
        "<h2>Throughput</h2>",
        pairs(report["throughput"]),
        "<h2>Notes</h2><ul>",
        *(f"<li>{esc(n)}</li>" for n in report["notes"]),
        "</ul>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _incidents(report: dict[str, Any], figure: str | None) -> list[str]:
    inc = report.get("incidents")
    if inc is None:
        return []
    head = {k: v for k, v in inc.items() if not isinstance(v, list) and k != "findings_per_incident_histogram"}
    return [
        "<h2>Incidents (the incident core over these alerts)</h2>",
        "<p class='note'>Each capture correlated on its own in finding-time order; the truth "
        "is joined afterwards, by event uid. A phase is a malicious label; it lands when one "
        "of its alerts is in an incident. Create delay: the Create of the first incident "
        "holding a phase's alert minus the phase's first event (event time; negative: the "
        "incident was open before the phase began).</p>",
        pairs(head),
        _figure("Incidents", figure),
        "<h3>Per capture (goals: alerts per incident, every alerted phase lands, benign-only per day)</h3>",
        table(inc["captures"]),
        "<h3>Attack phases</h3>",
        table(inc["phases"]),
        "<h3>Per day</h3>",
        table(inc["per_day"]),
    ]
