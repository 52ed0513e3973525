"""Rule packs through the lifecycle switcher, in process: the shipped EDR model on the
in-process backend, the shipped pack 1 in production and a version (``LOWERED``) with one
high rule lowered to low. Shadow, promote, rollback between batches; refusals leave production."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from prometheus_client import CollectorRegistry

from scorer.config import InferenceSettings, RuleSettings, Settings
from scorer.events.structs import EventKind
from scorer.features.edr_v3 import EdrV3Features
from scorer.inference.repository import write_checksums
from scorer.lifecycle.control import DesiredState
from scorer.lifecycle.loader import RuntimeLoader
from scorer.lifecycle.rule_switch import RulePacks
from scorer.lifecycle.rulepacks import control_key
from scorer.lifecycle.shadow import ShadowPublisher
from scorer.lifecycle.switcher import ModelSwitcher
from scorer.metrics import LifecycleMetrics, ScorerMetrics
from scorer.metrics.rulepacks import RulePackMetrics
from scorer.pipeline.outcome import BatchOutcome
from scorer.pipeline.records import InputRecord
from scorer.rules.pack import read_golden
from scorer.service.build import build_scorer
from tests.support.paths import MODEL_REPOSITORY
from tests.support.rulepacks import LOWERED, PACK, RULE, derive, golden_events, shipped_repository, tamper

EDR = EventKind.EDR
KEY = control_key(PACK)
MARKERS = 8  # copies of the rule's golden event in each batch


class Harness:
    def __init__(self, rules_repo: Path, models: Path = MODEL_REPOSITORY) -> None:
        settings = Settings(kinds=(EDR,), inference=InferenceSettings(backend="onnxruntime", model_repository=models),
                            rules=RuleSettings(repository=rules_repo, version="1"))
        self.scorer = build_scorer(settings)
        self.twin = build_scorer(settings)  # never switched: what production publishes without a shadow
        self.metrics = ScorerMetrics(CollectorRegistry())
        self.rm = RulePackMetrics(self.metrics.registry)
        lm = LifecycleMetrics(self.metrics.registry)
        self.packs = RulePacks(self.scorer, rules_repo, self.metrics, self.rm)
        loader = RuntimeLoader(settings.inference.model_repository, self.scorer.backend, sync_command=[])
        self.switcher = ModelSwitcher(self.scorer, loader, self.metrics, lm, self.report, rule_packs=self.packs)
        self.publisher = ShadowPublisher("shadow", lm, self.rm)
        self.reports: list[tuple[str, tuple[int, str] | None]] = []
        self.offset = 0
        pack = rules_repo / PACK / "1"
        # The rule's golden event, and every other golden event: context that must not change.
        marker = golden_events(pack)[0]
        others = [g["event"] for g in read_golden(pack) if RULE not in g["hits"]]
        self.raws = [({**marker, "uid": f"marker-{i}"}) for i in range(MARKERS)]
        self.raws += [{**raw, "uid": f"other-{i}"} for i, raw in enumerate(others)]

    async def report(self, key: str, refused: tuple[int, str] | None) -> None:
        self.reports.append((key, refused))

    async def apply(self, production: str, shadow: str | None = None, previous: str | None = None) -> bool:
        self.offset += 1
        state = DesiredState(kind=KEY, model=PACK, production=production, shadow=shadow, previous=previous,
                             issued_by="t")
        ok = await self.switcher.prepare_rules(KEY, self.offset, state)
        await self.switcher.install_ready()
        return ok

    async def score(self) -> BatchOutcome:
        records = [InputRecord(EDR, json.dumps(raw).encode(), None, "events.edr", 0, i)
                   for i, raw in enumerate(self.raws)]
        self.unswitched = await self.twin.score(records)
        return await self.scorer.score(records)

    def serving(self) -> tuple[str, str | None]:
        rt, shadow = self.scorer.runtimes[EDR], self.scorer.shadows.get(EDR)
        assert rt.rules is not None
        return rt.rules.version, shadow.rules.version if shadow is not None and shadow.rules is not None else None


def findings(outcome: BatchOutcome) -> list[object]:
    """The alerts as published, less the wall-clock times in them."""
    def timeless(value: object) -> object:
        if isinstance(value, dict):
            return {k: timeless(v) for k, v in value.items() if not k.endswith("time")}
        return [timeless(v) for v in value] if isinstance(value, list) else value

    return [timeless(json.loads(a.value)) for a in outcome.alerts]


def alerted(outcome: BatchOutcome) -> set[str]:
    return {json.loads(a.value)["unmapped"]["scorer"]["event_uid"] for a in outcome.alerts}


def markers(uids: set[str]) -> set[str]:
    return {u for u in uids if u.startswith("marker-")}


@pytest.fixture(scope="module")
def rules_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = shipped_repository(tmp_path_factory.mktemp("rules"))
    derive(repo, LOWERED, level="low")
    tamper(derive(repo, "12", level="medium"))
    derive(repo, "13", remove=True)  # the rule's golden event no longer fires it
    derive(repo, "14", remove=True, golden_follows=True)
    return repo


async def test_shadow_promote_rollback_of_a_pack(rules_repo: Path) -> None:
    h = Harness(rules_repo)
    await h.scorer.backend.start()
    first = h.scorer.runtimes[EDR]
    assert first.rules is not None and isinstance(first.features, EdrV3Features)
    before = await h.score()
    assert markers(alerted(before)) == {f"marker-{i}" for i in range(MARKERS)}, "a high rule alerts on its own"

    assert await h.apply("1", shadow=LOWERED)
    assert h.serving() == ("1", LOWERED) and h.reports[-1] == (KEY, None)
    assert h.scorer.runtimes[EDR].model == h.scorer.shadows[EDR].model, "a rule shadow keeps the model"
    shadowed = await h.score()
    assert findings(shadowed) == findings(h.unswitched) and shadowed.alerts, "shadow never changes production"
    assert [(s.uid, s.score) for s in shadowed.scores] == [(s.uid, s.score) for s in h.unswitched.scores]
    (comparison,) = h.publisher(shadowed)
    report = json.loads(comparison.value)
    rules = report["rules"]
    assert rules["production"] == f"{PACK}:1" and rules["shadow"] == f"{PACK}:{LOWERED}"
    assert rules["hits_added"] == {} and rules["hits_removed"] == {}, "a level change fires the same rules"
    assert set(rules["alerts_removed"]) == markers(alerted(before)) and rules["alerts_added"] == []
    # The shadow scores the matrix the model reads under the candidate: the markers' rule
    # columns carry the lowered level, and the shadow's scores are the model's on that matrix
    # (whether the level moves a score is the model's business, not the pack's).
    (batch,) = shadowed.shadows
    assert batch.rules is not None
    names = first.features.names
    rows = [i for i, uid in enumerate(batch.uids) if uid.startswith("marker-")]
    assert len(rows) == MARKERS
    assert (batch.rules.x[rows, names.index("rule_high")] == 0).all(), "the candidate's matrix reads the new level"
    assert (batch.rules.x[rows, names.index("rule_low")] >= 1).all()
    session = ort.InferenceSession(str(MODEL_REPOSITORY / first.model.name / first.model.version / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    expected = session.run(["probabilities"], {"features": batch.rules.x})[0][:, 1]
    np.testing.assert_allclose(batch.shadow_scores, expected, atol=1e-6)
    moved = np.abs(batch.shadow_scores - batch.production_scores) > 1e-6
    assert rules["score_changed"] == int(moved.sum())
    removed = h.metrics.registry.get_sample_value(
        "scorer_rule_shadow_alerts_total", {"pack": PACK, "version": LOWERED, "change": "removed"})
    assert removed == MARKERS
    assert h.metrics.registry.get_sample_value(
        "scorer_shadow_events_total", {"kind": "edr", "model": first.model.name, "version": first.model.version}
    ) is None, "a rule-only shadow is not counted as a model shadow"

    assert await h.apply(LOWERED, previous="1")
    assert h.serving() == (LOWERED, None)
    promoted = h.scorer.runtimes[EDR]
    assert isinstance(promoted.features, EdrV3Features) and isinstance(first.features, EdrV3Features)
    assert promoted.features.base is first.features.base, "per-entity state carries over a pack switch"
    assert markers(alerted(await h.score())) == set(), "the rule no longer alerts on its own"
    assert h.packs.warning is not None and "was trained on rule pack" in h.packs.warning
    assert h.metrics.registry.get_sample_value(
        "scorer_rule_pack_untrained", {"pack": PACK, "version": LOWERED, "model": f"{first.model.name}:1"}) == 1

    assert await h.apply("1", previous=LOWERED)
    assert h.scorer.runtimes[EDR].rules is first.rules, "rollback reuses the loaded pack"
    assert markers(alerted(await h.score())) == markers(alerted(before))
    assert h.packs.warning is None and h.metrics.registry.get_sample_value(
        "scorer_rule_pack_untrained", {"pack": PACK, "version": LOWERED, "model": f"{first.model.name}:1"}) is None
    assert [s.production for s in h.switcher.switches] == ["1", LOWERED, "1"]


@pytest.mark.parametrize(("version", "reason", "says"), [
    ("12", "integrity", "ir.json.gz: sha256 differs"),
    ("13", "golden", f"rule {RULE} did not fire"),
    ("99", "missing", "no rule pack version there"),
])
async def test_refused_packs_leave_production(rules_repo: Path, version: str, reason: str, says: str) -> None:
    h = Harness(rules_repo)
    production = h.scorer.runtimes
    for shadow, prod in ((version, "1"), (None, version)):
        assert not await h.apply(prod, shadow=shadow)
        assert h.scorer.runtimes is production and h.serving() == ("1", None)
        key, refused = h.reports[-1]
        assert key == KEY and refused is not None and refused[1].startswith(reason) and says in refused[1]
    assert h.metrics.registry.get_sample_value(
        "scorer_rule_pack_refusals_total", {"pack": PACK, "version": version, "reason": reason}) == 2


async def test_a_model_shadow_and_a_pack_shadow_compose(rules_repo: Path, tmp_path: Path) -> None:
    """The shadow runtime is the shadow model reading the candidate pack; withdrawing one
    keeps the other, and a model switch keeps the live pack."""
    models = tmp_path / "model_repository"
    shutil.copytree(MODEL_REPOSITORY / "edr_classifier", models / "edr_classifier")
    clone = models / "edr_classifier" / "2"
    shutil.copytree(models / "edr_classifier" / "1", clone)
    card = json.loads((clone / "card.json").read_text())
    (clone / "card.json").write_text(json.dumps({**card, "version": "2"}))
    write_checksums(clone)
    h = Harness(rules_repo, models)
    model = DesiredState(kind="edr", model="edr_classifier", production="1", shadow="2", issued_by="t")
    assert await h.switcher.prepare(EDR, 1, model)
    await h.switcher.install_ready()
    assert await h.apply("1", shadow=LOWERED)
    shadow = h.scorer.shadows[EDR]
    assert shadow.model.version == "2" and shadow.rules is not None and shadow.rules.version == LOWERED
    outcome = await h.score()
    (batch,) = outcome.shadows
    assert batch.shadow.version == "2" and batch.rules is not None and batch.rules.candidate == f"{PACK}:{LOWERED}"

    assert await h.apply("1")  # the pack shadow withdrawn: the model shadow stays, on production's pack
    shadow = h.scorer.shadows[EDR]
    assert shadow.model.version == "2" and shadow.rules is h.scorer.runtimes[EDR].rules
    assert (await h.score()).shadows[0].rules is None
    assert await h.apply(LOWERED, previous="1")  # a pack switch keeps the model and its shadow
    promote = DesiredState(kind="edr", model="edr_classifier", production="2", previous="1", issued_by="t")
    assert await h.switcher.prepare(EDR, 2, promote)
    await h.switcher.install_ready()
    live = h.scorer.runtimes[EDR]
    assert live.model.version == "2" and live.rules is not None and live.rules.version == LOWERED, "keeps the pack"
    assert EDR not in h.scorer.shadows


async def test_a_candidate_without_the_rule_shows_the_hits_it_removes(rules_repo: Path) -> None:
    h = Harness(rules_repo)
    assert await h.apply("1", shadow="14")
    outcome = await h.score()
    (comparison,) = h.publisher(outcome)
    rules = json.loads(comparison.value)["rules"]
    assert rules["hits_removed"] == {RULE: MARKERS} and rules["hits_added"] == {}
    assert set(rules["alerts_removed"]) == {f"marker-{i}" for i in range(MARKERS)} and rules["alerts_added"] == []
    assert h.metrics.registry.get_sample_value(
        "scorer_rule_shadow_hits_total", {"pack": PACK, "version": "14", "change": "removed"}) == MARKERS
