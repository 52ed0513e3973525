"""``scorer eval``: truth + scores + alerts in, report.json and report.html out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from scorer.incidents import Policy

from .incidents import evaluate_incidents
from .join import join
from .report import build_report


def evaluate(
    truth: Path,
    scores: Path | None,
    alerts: Path | None,
    out: Path,
    replay_summary: Path | None = None,
    incidents: Policy | None = Policy(),  # noqa: B008 (frozen dataclass)
) -> dict[str, Any]:
    """Write ``out/report.json`` and ``out/report.html``; return the report.

    The replay's summary.json beside the truth file (or ``replay_summary``) adds throughput
    and the replay-side counts to reconcile against. With alerts and an incident
    ``Policy`` (None: skip), the incident core runs over the alerts (``incidents`` section).
    """
    # matplotlib is an optional extra: import the HTML side only when a report is written.
    from .report_html import render

    summary = replay_summary or truth.parent / "summary.json"
    joined = join(truth, scores, alerts, summary)
    inputs = {
        "truth": str(truth),
        "scores": str(scores) if scores else None,
        "alerts": str(alerts) if alerts else None,
        "replay_summary": str(summary) if summary.is_file() else None,
    }
    report = build_report(joined, inputs)
    if alerts is not None and incidents is not None:
        report["incidents"] = evaluate_incidents(joined.truth, alerts, incidents)
    out.mkdir(parents=True, exist_ok=True)
    # msgspec writes NaN as null: report.json stays strict JSON.
    (out / "report.json").write_bytes(msgspec.json.format(msgspec.json.encode(report), indent=1))
    (out / "report.html").write_text(render(report), encoding="utf-8")
    return report
