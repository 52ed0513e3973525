"""report.html in a real headless Chromium (Debian's chromium package): the report of a real
replay and eval must load without a console or script error and with every plot decoded.

The report itself has no script. The test loads a copy with a small probe script added
that records error events and marks every image the browser could not decode
(``naturalWidth == 0``) on ``<body>``; ``--dump-dom`` returns the DOM after the load event,
and ``--enable-logging=stderr`` shows any console message (a page without script writes
none). A page with a broken image and a failing script shows that the check can fail.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from replay.cli import items
from replay.eval.evaluate import evaluate
from replay.player import Pacing
from replay.sinks import replay_embedded
from scorer.config import InferenceSettings, Settings
from scorer.demo import bundled_capture
from tests.support.paths import MODEL_REPOSITORY

pytest.importorskip("matplotlib", reason="the report needs the 'replay' extra (matplotlib)")
Image = pytest.importorskip("PIL.Image")

PROBE = """<script>
window.__errors = [];
addEventListener("error", (e) => __errors.push(
  e.message || "failed to load " + String(e.target.src || e.target.href || "?").slice(0, 60)
), true);
addEventListener("load", () => {
  const images = [...document.images];
  document.body.dataset.images = images.length;
  document.body.dataset.broken = JSON.stringify(
    images.filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.alt));
  document.body.dataset.errors = JSON.stringify(__errors);
});
</script>"""
WINDOW = (1200, 2000)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium not installed (deploy/local/system-deps.sh installs it)")
    return found


def open_in_chromium(page: Path, shot: Path) -> tuple[int, list[str]]:
    """Load ``page`` (with PROBE) and screenshot it to ``shot``: (images shown, problems)."""
    probed = page.with_name(f"probed-{page.name}")
    probed.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1),
                      encoding="utf-8")
    proc = subprocess.run(
        [
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={shot.parent / 'chromium-profile'}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}", "--enable-logging=stderr", "--v=0",
            f"--screenshot={shot}", "--dump-dom", probed.resolve().as_uri(),
        ],
        check=True, capture_output=True, text=True, timeout=120,
    )
    body = re.search(r"<body([^>]*)>", proc.stdout)
    assert body is not None, f"no DOM dumped:\n{proc.stderr[-2000:]}"
    marks = {k: json.loads(_unescape(v)) for k, v in re.findall(r'data-(\w+)="([^"]*)"',
                                                                body.group(1))}
    assert {"images", "broken", "errors"} <= marks.keys(), "the probe did not run"
    problems = [f"image not decoded: {alt}" for alt in marks["broken"]]
    problems += [f"page error: {e}" for e in marks["errors"]]
    problems += [f"console: {line}" for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return int(marks["images"]), problems


def _unescape(attr: str) -> str:
    return attr.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace(
        "&amp;", "&")


def test_the_check_fails_on_a_broken_image_and_a_script_error(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text('<!doctype html><html><head></head><body><img alt="bad plot" '
                    'src="data:image/png;base64,AAAA"><script>notDefined()</script></body></html>')
    images, problems = open_in_chromium(page, tmp_path / "broken.png")
    assert images == 1
    assert "image not decoded: bad plot" in problems
    assert any("notDefined is not defined" in p for p in problems if p.startswith("page error"))
    assert any("notDefined" in p for p in problems if p.startswith("console"))


async def test_report_of_a_real_replay_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium()
    settings = Settings(
        inference=InferenceSettings(backend="onnxruntime", model_repository=MODEL_REPOSITORY)
    )
    out = tmp_path / "replay"
    summary = await replay_embedded(
        settings, items([bundled_capture()], settings), Pacing(fast=True), out, limit=1000
    )
    assert summary.events == 1000 and len(summary.by_kind) == 3
    evaluate(out / "truth.jsonl", out / "scores.jsonl", out / "alerts.jsonl", tmp_path / "report")
    page = tmp_path / "report" / "report.html"
    shot = tmp_path / "report.png"
    images, problems = open_in_chromium(page, shot)
    print(f"screenshot of the report: {shot}")
    assert problems == []
    # every figure of an embedded replay (it has no Kafka latency to plot), incidents included
    assert images == page.read_text().count("<img ") == 6
    with Image.open(shot) as img:
        pixels = np.asarray(img.convert("L"))
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    assert (pixels < 200).mean() > 0.01, "the screenshot is blank"
