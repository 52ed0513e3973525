"""``python -m models.edr_rule_tuning``: which high/critical Sigma rules alert on their own.

The rule pack's tuning (:mod:`scorer.rules.tuning`) keeps some rules as features and evidence
only. They are chosen here, on the **development half** of the OTRF split groups
(:func:`models.halves.half`'s parity), from the rules' hits on *background*: OTRF events the
capture metadata does not tie to the attack (models/otrf_labels.py; an upper bound on
background, since captures without usable metadata keep their attack events in it). Greedily,
the rule with the most background alerts is demoted until the rules that still alert pass at
most ``--target`` per 1,000 background events (default half the 1-in-1,000 budget, leaving the
model the other half). The held-out half is read once, after the choice, to report what the
choice does there. Captures stream one at a time; no features are computed.

Writes the tuning file ``scorer rules package --tuning`` reads (``--out``), with these numbers
as its header and each rule's evidence as its reason.
"""

from __future__ import annotations

import argparse
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scorer.alerts.decide import RULE_ALERT_LEVELS
from scorer.captures import LabeledEvent, iter_capture
from scorer.events.structs import EndpointEvent
from scorer.rules import RuleEngine
from scorer.rules.tuning import Tuned, write_tuning

from . import otrf_extra, otrf_labels
from .datasets import REPO_ROOT, data_dir
from .edr_rules import CHUNK, pack_dir
from .tables import table

DEFAULT_OUT = REPO_ROOT / "rule_repository" / "sigma_windows" / "tuning.yml"


@dataclass
class Half:
    """Background events of one half of the groups, and the alerting rules' hits on them."""

    events: int = 0
    captures: int = 0
    hits: Counter[str] = field(default_factory=Counter)  # rule id -> background events it fired on
    where: dict[str, Counter[str]] = field(default_factory=dict)  # rule id -> capture -> events

    def rate(self, rules: set[str]) -> float:
        """Background events per 1,000 on which any of ``rules`` fired (an upper bound: an
        event two rules fire on counts twice; they rarely do)."""
        return 1000 * sum(self.hits[r] for r in rules) / max(self.events, 1)


def _captures(root: Path) -> Iterator[tuple[Path, str]]:
    """Every OTRF capture the EDR dataset reads, with its split group (models/edr.py)."""
    for path in sorted(root.glob("otrf-security-datasets/**/*.zip")):
        yield path, f"otrf:{path.stem}"
    for path in otrf_extra.files(root / "otrf-extra"):
        yield path, otrf_extra.CAPTURES[path.stem].group


def background_hits(engine: RuleEngine, alerting: set[str]) -> dict[str, Half]:
    """Per half (``dev``, ``held-out``): background events and the alerting rules' hits."""
    root = data_dir() / "edr"
    meta = root / "otrf-security-datasets" / "_metadata"
    agents, commands = otrf_labels.agents_by_capture(meta), otrf_labels.commands_by_capture(meta)
    halves = {"dev": Half(), "held-out": Half()}
    for path, group in _captures(root):
        events = [i.event for i in iter_capture(path) if isinstance(i, LabeledEvent)
                  and isinstance(i.event, EndpointEvent)]
        if not events:
            continue
        attack = otrf_labels.attack_events(events, agents.get(path.stem, ()), commands.get(path.stem, ()))
        half = halves["dev" if zlib.crc32(group.encode()) % 2 == 0 else "held-out"]
        half.captures += 1
        half.events += int((~attack).sum())
        for start in range(0, len(events), CHUNK):
            result = engine.evaluate(events[start:start + CHUNK])
            for k, fired in enumerate(result.hits):
                if attack[start + k]:
                    continue
                for j in fired:
                    rule = engine.rules[j].id
                    if rule in alerting:
                        half.hits[rule] += 1
                        half.where.setdefault(rule, Counter())[path.stem] += 1
    return halves


def choose(dev: Half, alerting: set[str], target: float) -> list[str]:
    """Rules to demote, noisiest first, until the rest pass at most ``target`` per 1,000."""
    keep, demoted = set(alerting), []
    for rule, _ in dev.hits.most_common():
        if dev.rate(keep) <= target:
            break
        keep.discard(rule)
        demoted.append(rule)
    return demoted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.edr_rule_tuning", description=__doc__)
    parser.add_argument("--pack", type=Path, default=None, help="the pack to tune (default: the training pack)")
    parser.add_argument("--target", type=float, default=0.5, help="per 1,000 dev background events")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    pack = args.pack or pack_dir()
    engine = RuleEngine.load(pack)
    by_id = {r.id: r for r in engine.rules}
    # Every high/critical rule, whatever the pack's own tuning says: the choice starts afresh.
    alerting = {r.id for r in engine.rules if r.level in RULE_ALERT_LEVELS}
    halves = background_hits(engine, alerting)
    dev, held = halves["dev"], halves["held-out"]
    demoted = choose(dev, alerting, args.target)
    kept = alerting - set(demoted)
    rows = [[by_id[r].title, by_id[r].level, dev.hits[r], len(dev.where.get(r, {})), held.hits[r],
             len(held.where.get(r, {}))] for r in demoted]
    summary = table(["half", "captures", "background events", "alerts / 1,000: every high/critical rule",
                     "after the tuning"],
                    [[name, h.captures, h.events, f"{h.rate(alerting):.3f}", f"{h.rate(kept):.3f}"]
                     for name, h in halves.items()])
    print(table(["demoted rule", "level", "dev background alerts", "dev captures", "held-out background alerts",
                 "held-out captures"], rows))
    print()
    print(summary)
    tuned = [Tuned(r, by_id[r].title, _reason(r, dev)) for r in demoted]
    header = (f"Written by `python -m models.edr_rule_tuning --target {args.target:g}` from {pack.name} of "
              f"{pack.parent.name}.\nHigh/critical rules kept as features and evidence only: greedily, the rule "
              f"with the most alerts on\nbackground events of the development half of the OTRF groups, until the "
              f"rest pass at most\n{args.target:g} per 1,000 of them (docs/rules.md, Tuning).\n\n{summary}")
    write_tuning(args.out, tuned, header)
    print(f"\nwrote {args.out}: {len(tuned)} rules alert on nothing alone")
    return 0


def _reason(rule: str, dev: Half) -> str:
    top = ", ".join(f"{c} ({n})" for c, n in dev.where[rule].most_common(3))
    return (f"alerts on {dev.hits[rule]} of {dev.events:,} background events of the development half "
            f"({1000 * dev.hits[rule] / dev.events:.3f} per 1,000) in {len(dev.where[rule])} captures: {top}")


if __name__ == "__main__":
    raise SystemExit(main())
