"""``scorer rules validate``: a pack is what it says it is, and still does what it did.

1. every file matches ``SHA256SUMS``, every packed source its recorded sha256;
2. the pack's own sources recompile (pySigma, same pipelines) with no error, to the very
   IR and rule metadata stored in the pack;
3. the golden set: each event fires every rule in its ``must_fire``, and exactly the rules
   recorded in its ``hits``.

Every problem is reported (file and reason), not only the first.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
from pathlib import Path

from scorer.errors import ScorerError
from scorer.events import edr
from scorer.rules.engine import RuleEngine
from scorer.rules.pack import IR, read_golden, read_pack, read_sources, verify
from scorer.rules.tuning import Tuned, apply_tuning


def validate_pack(directory: Path) -> list[str]:
    """Problems found in the pack at ``directory`` (empty: it passes)."""
    problems = verify(directory)
    if problems:
        return problems
    try:
        pack = read_pack(directory)
        sources = read_sources(directory)
    except (ScorerError, ValueError, OSError, TypeError) as exc:
        return [f"{directory}: {exc}"]
    recorded = {r["file"]: r.get("sha256", "") for r in pack.manifest["rules"]}
    for src in sources:
        digest = hashlib.sha256(src.yaml.encode("utf-8")).hexdigest()
        if digest != src.sha256 or recorded.get(src.file) != digest:
            problems.append(f"{src.file}: source sha256 differs from the manifest")
    missing = set(recorded) - {s.file for s in sources}
    problems.extend(f"{f}: in the manifest but not in the packed sources" for f in sorted(missing))
    problems.extend(_recompile(directory, sources))
    problems.extend(golden_problems(directory, RuleEngine(pack.rules, pack.atoms, pack.conditions)))
    return problems


def _recompile(directory: Path, sources: list) -> list[str]:  # type: ignore[type-arg]
    from scorer.rules import compile_rules

    with tempfile.TemporaryDirectory(prefix="scorer-rules-") as tmp:
        root = Path(tmp)
        files = []
        for src in sources:
            path = root / src.file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(src.yaml.encode("utf-8"))
            files.append(path)
        compiled, errors = compile_rules(root, files)
    problems = [f"{e.file}: does not compile: {e.reason}" for e in errors]
    stored = json.loads(gzip.decompress((directory / IR).read_bytes()))
    fresh = json.loads(json.dumps(compiled.ir_json()))
    if not errors and fresh != stored:
        problems.append(f"{IR}: differs from the IR its sources compile to ({_first_difference(stored, fresh)})")
    pack = read_pack(directory)
    # The tuning recorded in the manifest is part of what the pack says it is.
    tuned = [Tuned(**t) for t in pack.manifest.get("tuning", [])]
    compiled.rules, unknown = apply_tuning(compiled.rules, tuned, directory / "pack.json")
    problems.extend(unknown)
    for old, new in zip(pack.rules, compiled.rules, strict=False):
        if old != new:
            problems.append(f"{old.file}: rule metadata differs from its source's")
    return problems


def _first_difference(stored: dict, fresh: dict) -> str:  # type: ignore[type-arg]
    if stored.get("atoms") != fresh.get("atoms"):
        return f"atoms: {len(stored.get('atoms', []))} stored, {len(fresh.get('atoms', []))} compiled"
    for old, new in zip(stored.get("rules", []), fresh.get("rules", []), strict=False):
        if old != new:
            return f"rule {old[0]}"
    return "rule count"


def golden_problems(directory: Path, engine: RuleEngine) -> list[str]:
    """The pack's golden set on ``engine`` (the scorer runs it again before it installs a pack)."""
    problems: list[str] = []
    entries = read_golden(directory)
    if not entries:
        return [f"{directory}: the golden set is empty"]
    events = []
    for i, entry in enumerate(entries):
        try:
            events.append(edr.from_mapping(entry["event"]))
        except ScorerError as exc:
            problems.append(f"golden {entry.get('case', i)}: event does not decode: {exc}")
            return problems
    result = engine.evaluate(events)
    for i, (entry, hits) in enumerate(zip(entries, result.hits, strict=True)):
        fired = sorted(engine.rules[j].id for j in hits)
        case = entry.get("case", str(i))
        if i in result.errors:
            problems.append(f"golden {case}: rule {result.errors[i].rule_id} raised: {result.errors[i].message}")
        for rule_id in entry["must_fire"]:
            if rule_id not in fired:
                problems.append(f"golden {case}: rule {rule_id} did not fire")
        if fired != sorted(entry["hits"]):
            problems.append(f"golden {case}: fired {fired}, recorded {sorted(entry['hits'])}")
    return problems
