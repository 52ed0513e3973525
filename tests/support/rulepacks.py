"""Rule repositories for the rule-pack lifecycle tests: the shipped pack as version 1, and
versions derived from it the way a detection engineer would change a pack (a rule's level
changed, a rule removed), written by the pack writer itself (checksums, golden set, sources).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

from scorer.inference.repository import list_versions
from scorer.rules.model import CompiledRules, RuleSource
from scorer.rules.pack import LICENSE, read_golden, read_pack, read_sources, write_pack
from tests.support.paths import RULE_REPOSITORY

PACK = "sigma_windows"
# "Removal Of AMSI Provider Registry Keys" (high, by frack113): its one golden event fires it
# and no other high or critical rule, and the shipped EDR model scores that event far under
# its threshold, so the event alerts through this rule alone.
RULE = "41d1058a-aea7-4952-9293-29eaaf516465"


# Versions the tests derive, above the shipped ones.
LOWERED = "11"  # pack 1 with RULE lowered from high to low


def shipped_repository(root: Path) -> Path:
    """A rule repository holding a copy of every shipped version of the pack (so the one the
    EDR model's card names is there to compare with), the tests deriving theirs from 1."""
    repo = root / "rule_repository"
    for version in list_versions(RULE_REPOSITORY, PACK):
        assert int(version) < int(LOWERED), "the tests' versions must stay above the shipped ones"
        shutil.copytree(RULE_REPOSITORY / PACK / version, repo / PACK / version)
    return repo


def derive(repo: Path, version: str, *, rule_id: str = RULE, level: str | None = None, remove: bool = False,
           golden_follows: bool = False, source: str = "1") -> Path:
    """Pack ``version`` from ``source``: ``rule_id``'s level set to ``level`` (in its YAML
    too, so ``scorer rules validate`` recompiles it to the same metadata), or the rule removed
    and its golden events left as they were (a pack its own golden set refuses), or, with
    ``golden_follows``, no longer expected to fire it (a pack that passes)."""
    src = repo / PACK / source
    pack = read_pack(src)
    sources = {s.file: s for s in read_sources(src)}
    rules, conditions = [], []
    for meta, cond in zip(pack.rules, pack.conditions, strict=True):
        if meta.id == rule_id:
            if remove:
                del sources[meta.file]
                continue
            if level is not None:
                old = sources[meta.file]
                text = old.yaml.replace(f"\nlevel: {meta.level}\n", f"\nlevel: {level}\n")
                assert text != old.yaml, f"{meta.file}: no level line"
                sources[meta.file] = RuleSource(old.file, hashlib.sha256(text.encode()).hexdigest(), text)
                meta = dataclasses.replace(meta, level=level)
        rules.append(meta)
        conditions.append(cond)
    assert len(rules) == len(pack.rules) - (1 if remove else 0), f"{rule_id} not in {src}"
    licence = (src / LICENSE).read_text().split("\n---\n\n", 1)[1]
    out = repo / PACK / version
    compiled = CompiledRules(rules, pack.atoms, conditions, [sources[r.file] for r in rules if r.file in sources])
    golden = read_golden(src)
    if golden_follows:
        golden = [{**g, "hits": [h for h in g["hits"] if h != rule_id],
                   "must_fire": [h for h in g["must_fire"] if h != rule_id]} for g in golden]
    write_pack(out, compiled, pack.skipped, name=PACK, version=version,
               source_commit=str(pack.manifest.get("source_commit", "")), license_text=licence, golden=golden)
    return out


def golden_events(pack_dir: Path, rule_id: str = RULE) -> list[dict[str, object]]:
    """The raw golden events that must fire ``rule_id``."""
    return [g["event"] for g in read_golden(pack_dir) if rule_id in g["must_fire"]]


def tamper(pack_dir: Path) -> None:
    """One byte appended to the IR: its SHA256SUMS line no longer matches."""
    with (pack_dir / "ir.json.gz").open("ab") as fh:
        fh.write(b"\0")


def manifest(pack_dir: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((pack_dir / "pack.json").read_text())
    return data
