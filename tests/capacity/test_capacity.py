"""``scorer capacity``: sized from the committed benchmark JSON, minimal for the headroom
asked, honest where nothing was measured, and refusing what no deployment can meet."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest

from scorer.capacity import Measured, PlanError, Prices, load_measured, plan
from tests.support.paths import ROOT

RESULTS = ROOT / "docs/results"
DOC = ROOT / "docs/production.md"


@pytest.fixture(scope="module")
def measured() -> Measured:
    return load_measured(RESULTS)


def test_rates_come_from_the_committed_json(measured: Measured) -> None:
    runs = [r for r in json.loads((RESULTS / "bench-all.json").read_text())["results"]
            if r["runner"] == "scorer-triton" and r["throughput_eps"] > 0]
    assert measured.scorer_eps.value in {r["throughput_eps"] for r in runs}
    assert measured.gpu_rows["l40s"] is None
    assert measured.gpu_rows["h200"] is not None and "gpu_nvforest_h200.json" in measured.gpu_rows["h200"].source


@pytest.mark.parametrize("eps", [1.0, 1e5, 3.3e5, 1e6])
@pytest.mark.parametrize("utilisation", [0.5, 0.6, 1.0])
def test_scorer_processes_are_the_fewest_that_keep_the_headroom(
    measured: Measured, eps: float, utilisation: float,
) -> None:
    p = plan(measured, eps, 0.01, utilisation=utilisation)
    scorers = p.roles[0]
    per = measured.scorer_eps.value * utilisation
    assert scorers.processes * per >= eps
    assert scorers.processes == 1 or (scorers.processes - 1) * per < eps
    assert p.partitions_per_topic >= scorers.processes  # KEDA never has a replica without a partition
    assert p.gpus is not None and p.gpu_busy is not None and p.gpu_busy <= utilisation


def test_an_unmeasured_gpu_is_said_so_and_left_out_of_the_cost(measured: Measured) -> None:
    p = plan(measured, 1e6, 0.01, gpu="l40s")
    assert p.gpus is None and not any("GPU" in k for k in p.monthly)
    assert any("NOT MEASURED for l40s" in n for n in p.notes)
    given = plan(measured, 1e6, 0.01, gpu="l40s", gpu_rows_per_s=2e6)
    assert given.gpus == math.ceil(1e6 / (2e6 * 0.6)) + 1
    assert any("--gpu-rows-per-second" in n for n in given.notes)


def test_prices_override_changes_only_what_it_names(measured: Measured) -> None:
    base = plan(measured, 1e5, 0.01)
    dear = plan(measured, 1e5, 0.01, prices=Prices.override({"gpu_hour_h200": 2 * Prices().gpu_hour_h200}))
    assert dear.monthly["GPUs (h200)"] == pytest.approx(2 * base.monthly["GPUs (h200)"])
    assert dear.monthly["cpu and memory"] == base.monthly["cpu and memory"]
    with pytest.raises(PlanError, match="unknown price keys"):
        Prices.override({"gpu_hour_a100": 1.0})
    with pytest.raises(PlanError, match=">= 0"):
        Prices.override({"core_hour": -1})


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"events_per_s": 0.0}, "finite number > 0"),
    ({"events_per_s": float("nan")}, "finite number > 0"),
    ({"events_per_s": float("inf")}, "finite number > 0"),
    ({"alert_rate": 1.5}, "between 0 and 1"),
    ({"alert_rate": -0.1}, "between 0 and 1"),
    ({"utilisation": 0.0}, r"in \(0, 1\]"),
    ({"growth": 0.5}, ">= 1"),
    ({"events_per_s": 1e12}, "split the stream across Kafka clusters"),
])
def test_impossible_inputs_are_refused_with_a_reason(measured: Measured, kwargs: dict[str, float], reason: str) -> None:
    args = {"events_per_s": 1e6, "alert_rate": 0.01} | kwargs
    rest = {k: v for k, v in args.items() if k not in ("events_per_s", "alert_rate")}
    with pytest.raises(PlanError, match=reason):
        plan(measured, args["events_per_s"], args["alert_rate"], **rest)  # type: ignore[arg-type]


def test_the_cli_refuses_with_exit_2_and_the_reason() -> None:
    out = subprocess.run([sys.executable, "-m", "scorer.cli", "capacity", "--events-per-second", "-1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "finite number > 0" in out.stderr


def doc_examples() -> list[tuple[str, str]]:
    """(command, output) of every ```console block of docs/production.md running scorer capacity."""
    blocks = re.findall(r"```console\n\$ (scorer capacity[^\n]*)\n(.*?)```", DOC.read_text(), re.S)
    return [(str(cmd), str(out)) for cmd, out in blocks]


def test_the_docs_worked_examples_reproduce_from_the_committed_json() -> None:
    examples = doc_examples()
    assert len(examples) >= 2, "docs/production.md lost its worked examples"
    for cmd, expected in examples:
        out = subprocess.run([sys.executable, "-m", "scorer.cli", *cmd.split()[1:]], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        # A new file in docs/results can change the plan: paste the command's new output into the doc.
        assert out.stdout == expected, f"{cmd}: output differs from docs/production.md"
