"""ModelSwitcher with the in-process backend: prepare, install between batches, refuse."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from scorer.events.structs import EventKind
from scorer.features import feature_set
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.inference.repository import publish_version
from scorer.lifecycle.contract import contract_names
from scorer.lifecycle.control import DesiredState
from scorer.lifecycle.loader import RuntimeLoader
from scorer.lifecycle.switcher import ModelSwitcher
from scorer.metrics import LifecycleMetrics, ScorerMetrics
from scorer.pipeline.batch import KindRuntime
from scorer.pipeline.scoring import BatchScorer
from scorer.rules.annotate import RuleStage
from tests.support.lifecycle import KIND, MODEL, Repo, make_repo, synthetic_golden
from tests.support.models import build_tiny_model

SIEM = EventKind.SIEM


class Harness:
    def __init__(self, repo: Repo) -> None:
        backend = OnnxRuntimeBackend(repo.path)
        self.backend = backend
        # The live feature set is the production card's, as build_runtimes chooses it.
        features = feature_set(SIEM, repo.production.card.feature_set)
        self.scorer = BatchScorer({SIEM: KindRuntime.build(SIEM, features, repo.production.card)}, backend)
        backend.load(self.scorer.runtimes[SIEM].model)  # as the first batch would
        self.metrics = ScorerMetrics(CollectorRegistry())
        self.reports: list[tuple[str, tuple[int, str] | None]] = []
        self.loads: list[str] = []
        loader = RuntimeLoader(repo.path, backend, sync_command=[])
        original = loader.runtime

        async def counted(kind: EventKind, name: str, version: str, features: object,
                          rules: RuleStage | None = None) -> KindRuntime:
            self.loads.append(version)
            return await original(kind, name, version, features, rules)  # type: ignore[arg-type]

        loader.runtime = counted  # type: ignore[method-assign]
        self.switcher = ModelSwitcher(self.scorer, loader, self.metrics, LifecycleMetrics(self.metrics.registry),
                                      self.report)
        self.offset = 0

    async def report(self, kind: str, refused: tuple[int, str] | None) -> None:
        self.reports.append((kind, refused))

    async def apply(self, production: str, shadow: str | None = None) -> bool:
        self.offset += 1
        state = DesiredState(kind=KIND, model=MODEL, production=production, shadow=shadow, issued_by="t")
        ok = await self.switcher.prepare(SIEM, self.offset, state)
        await self.switcher.install_ready()
        return ok

    @property
    def serving(self) -> tuple[str, str | None]:
        shadow = self.scorer.shadows.get(SIEM)
        return self.scorer.runtimes[SIEM].model.version, shadow.model.version if shadow else None

    def refusals(self, version: str, reason: str) -> float:
        labels = {"kind": KIND, "model": MODEL, "version": version, "reason": reason}
        return self.metrics.registry.get_sample_value("scorer_model_refusals_total", labels) or 0.0


async def test_shadow_promote_rollback_between_batches(repo: Repo) -> None:
    repo.package()
    h = Harness(repo)
    features = h.scorer.runtimes[SIEM].features
    state = DesiredState(kind=KIND, model=MODEL, production="1", shadow="2")
    assert await h.switcher.prepare(SIEM, 1, state)
    assert h.serving == ("1", None), "nothing changes until no batch is in flight"
    await h.switcher.install_ready()
    assert h.serving == ("1", "2") and h.reports == [("siem", None)]  # type: ignore[comparison-overlap]
    assert h.scorer.shadows[SIEM].features is features, "entity state carries over"
    assert await h.apply("2")
    assert h.serving == ("2", None) and h.loads == ["2"], "promotion reuses the loaded shadow"
    assert await h.apply("1")
    assert h.serving == ("1", None) and h.loads == ["2"], "rollback reuses the retired runtime"
    assert [s.production for s in h.switcher.switches] == ["1", "2", "1"]
    assert h.metrics.registry.get_sample_value(
        "scorer_model_info", {"kind": KIND, "model": MODEL, "version": "1"}) == 1
    assert h.metrics.registry.get_sample_value(
        "scorer_model_info", {"kind": KIND, "model": MODEL, "version": "2"}) is None


async def test_refusals_leave_production_untouched(repo: Repo) -> None:
    tampered = repo.package()
    with (tampered.path / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    tiny = build_tiny_model(MODEL, "3", n_features=len(contract_names(KIND)) - 1)
    publish_version(repo.path, msgspec.structs.replace(tiny.card, kind=KIND, feature_names=list(contract_names(KIND))),
                    tiny.onnx_bytes)
    h = Harness(repo)
    before = h.scorer.runtimes
    for version, reason in (("2", "integrity"), ("3", "contract"), ("9", "missing")):
        assert not await h.apply("1", shadow=version)
        assert h.scorer.runtimes is before and h.serving == ("1", None)
        assert h.refusals(version, reason) == 1
        _, refused = h.reports[-1]
        assert refused is not None and refused[0] == h.offset and refused[1].startswith(reason)
    assert not await h.apply("2")  # the tampered one as production: refused just the same
    assert h.serving == ("1", None) and h.refusals("2", "integrity") == 2


@pytest.mark.parametrize("shadow", [None, "2"])
async def test_unchanged_state_loads_nothing(repo: Repo, shadow: str | None) -> None:
    repo.package()
    h = Harness(repo)
    assert await h.apply("1", shadow)
    assert await h.apply("1", shadow)
    assert h.loads == ([] if shadow is None else ["2"])


@pytest.mark.parametrize("live", ["v1", "v2"])
async def test_a_switch_never_changes_the_feature_set(tmp_path: Path, live: str) -> None:
    other = "v2" if live == "v1" else "v1"
    repo = make_repo(tmp_path, synthetic_golden(features="v2"), features=live)
    same, foreign = repo.package(features=live), repo.package(features=other)
    h = Harness(repo)
    features = h.scorer.runtimes[SIEM].features
    assert not await h.apply("1", shadow=foreign.version)
    assert not await h.apply(foreign.version)
    assert h.serving == ("1", None) and h.refusals(foreign.version, "feature_set") == 2
    _, refused = h.reports[-1]
    assert refused is not None and f"expects feature set {other}" in refused[1] and f"compute {live}" in refused[1]
    assert await h.apply("1", shadow=same.version), "the live feature set's candidates still switch"
    assert await h.apply(same.version)
    assert h.serving == (same.version, None) and h.scorer.runtimes[SIEM].features is features


async def test_displaced_versions_are_unloaded_keeping_production_shadow_and_rollback(repo: Repo) -> None:
    for _ in range(3):
        repo.package()
    h = Harness(repo)

    def loaded() -> list[str]:
        return sorted(ref.version for ref in h.backend.loaded())

    assert await h.apply("1", shadow="2") and await h.apply("2")
    assert await h.apply("2", shadow="3")
    assert loaded() == ["1", "2", "3"], "1 is the rollback target"
    assert await h.apply("3")  # 2 becomes the rollback target; 1 is kept by nothing
    assert loaded() == ["2", "3"]
    assert await h.apply("3", shadow="4") and await h.apply("3")  # a shadow withdrawn
    assert loaded() == ["2", "3"]
    production = h.scorer.runtimes[SIEM]
    assert production.model.version == "3" and h.loads == ["2", "3", "4"]
    assert h.switcher.retirer.pending == {}, "no Triton: nothing left to unload later"
    assert await h.apply("2") and loaded() == ["2", "3"], "rollback: no load, nothing unloaded"
    assert await h.apply("1") and h.loads == ["2", "3", "4", "1"], "a retired version loads again"
    assert loaded() == ["1", "2"]


async def test_a_state_refused_partway_leaves_nothing_loaded(repo: Repo) -> None:
    repo.package()  # version 2: good
    v3 = repo.path / MODEL / "3"
    repo.package()  # version 3, then tampered: its shadow preparation fails after 2 loaded
    (v3 / "model.onnx").write_bytes((v3 / "model.onnx").read_bytes() + b"\0")
    h = Harness(repo)
    assert not await h.apply("2", shadow="3")
    assert h.serving == ("1", None) and h.refusals("3", "integrity") == 1
    assert sorted(ref.version for ref in h.backend.loaded()) == ["1"], "2 was loaded for the refused state"
