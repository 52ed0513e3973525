"""A SOC-like stream for the pipe benchmark: benign background with 1% attack events.

The bundled capture (:func:`scorer.bench.loadgen.templates`) is attack-heavy: a third of
its events are attacks and about 30% raise an alert, so decide and OCSF are a quarter of
the scorer's time on it. A SOC's stream is mostly background. This one cycles benign
events read from the shared data (``../shared/data``) and puts one attack event from the
bundled capture at every ``1 / attack_share``-th place, per kind, so both costs can be
given side by side:

- netflow: CIC-IDS2017 ``BENIGN`` flows (CICFlowMeter rows with their ~80 statistics, the
  same form as the capture's flows);
- siem: AIT-ADS alerts that are no part of an attack (``event_label`` "-": Wazuh,
  Suricata and AMiner false positives, the bulk of any SIEM feed);
- edr: the ordinary host activity of an OTRF LSASS campaign log (a full Windows host log
  around one attack; the first events of the log, before the attack). OTRF labels whole
  captures, not events, so "benign" here means "host background", as in the capture.

Kinds keep the bundled capture's mix (about a third each), so per-event costs compare.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator
from pathlib import Path

from scorer.captures import iter_capture
from scorer.captures.base import LabeledEvent, is_malicious
from scorer.config import data_dir
from scorer.events.structs import Event, EventKind

Template = tuple[EventKind, Event]

# Where each kind's background comes from, under the shared data folder.
BACKGROUND: dict[EventKind, tuple[str, ...]] = {
    EventKind.NETFLOW: ("netflow/cic-ids2017-improved/BENIGN_2500.csv",),
    EventKind.SIEM: tuple(f"siem/ait-ads/{name}_alerts.csv.gz"
                          for name in ("fox", "harrison", "santos", "shaw", "wardbeck", "wheeler")),
    EventKind.EDR: ("edr/otrf-extra/LSASS_campaign_01",),
}


def background(root: Path, kind: EventKind, limit: int) -> list[Event]:
    """Up to ``limit`` benign events of ``kind`` from the shared data (see :data:`BACKGROUND`),
    spread over its files."""
    files = BACKGROUND[kind]
    per_file = -(-limit // len(files))
    out: list[Event] = []
    for name in files:
        path = root / name
        if not path.exists():
            raise FileNotFoundError(f"{path}: the realistic stream reads its background from the shared data")
        out.extend(itertools.islice(_benign(iter_capture(path)), per_file))
    if not out:
        raise ValueError(f"no benign {kind.value} events under {root}")
    return out[:limit]


def _benign(items: Iterator[object]) -> Iterator[Event]:
    for item in items:
        # Per-event truth where the source has one (CIC, AIT-ADS); host background otherwise.
        if isinstance(item, LabeledEvent) and is_malicious(item.event.label) is not True:
            yield item.event


def realistic_templates(
    capture: list[Template], root: Path, attack_share: float = 0.01, per_kind: int = 5000,
) -> list[Template]:
    """Templates cycling benign background, with ``attack_share`` of them attack events of the
    capture (its events of a known malicious label), interleaved evenly, per kind."""
    if not 0 < attack_share < 1:
        raise ValueError(f"attack share must be in (0, 1), got {attack_share}")
    kinds = list(dict.fromkeys(kind for kind, _ in capture))
    streams: list[list[Template]] = []
    for kind in kinds:
        attacks = [ev for k, ev in capture if k is kind and is_malicious(ev.label)]
        benign = background(root, kind, per_kind)
        streams.append([(kind, ev) for ev in _mix(benign, attacks, attack_share)])
    # Round-robin over the kinds: every stretch of the stream holds all of them.
    longest = max(len(s) for s in streams)
    return [s[i % len(s)] for i in range(longest) for s in streams]


def _mix(benign: list[Event], attacks: list[Event], share: float) -> list[Event]:
    """``benign`` with one of ``attacks`` (cycled) every ``round(1 / share)``-th event."""
    if not attacks:
        return benign
    every = round(1 / share)
    out: list[Event] = []
    attack = itertools.cycle(attacks)
    for i, ev in enumerate(benign, start=1):
        out.append(ev)
        if i % (every - 1) == 0:
            out.append(next(attack))
    return out


def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stream", choices=("capture", "realistic"), default="capture",
                        help="events to send: the bundled attack-heavy capture (default: capture), or "
                             "benign background from the shared data with --attack-share attack events")
    parser.add_argument("--attack-share", type=float, default=0.01,
                        help="share of attack events in the realistic stream (default: 0.01)")
    parser.add_argument("--data-dir", type=Path, default=data_dir(),
                        help="the shared data folder the realistic stream reads "
                             "(default: $SCORER_DATA_DIR or ../shared/data)")


def stream_templates(args: argparse.Namespace, capture: list[Template]) -> list[Template]:
    """The templates ``--stream`` asks for (the capture's, or the realistic stream's)."""
    if args.stream == "realistic":
        return realistic_templates(capture, args.data_dir, args.attack_share)
    return capture
