"""Summarise a py-spy raw profile: share of samples per function, inclusive and self.

    SCORER_BENCH_PROFILE=/tmp/prof scorer bench --events 100000 --runners scorer-onnxruntime
    python -m scorer.bench.profile_summary /tmp/prof/scorer-onnxruntime-drain.txt \\
        --within "ScoringLoop.run"

``SCORER_BENCH_PROFILE`` makes the bench start each runner under ``py-spy record -f raw``
(its own timings are then not the benchmark's). ``--within`` keeps only the stacks that
pass through a frame (e.g. the scoring loop, leaving start-up out).
"""

from __future__ import annotations

import argparse
import gzip
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def summarise(path: Path, within: str | None = None) -> tuple[int, Counter[str], Counter[str]]:
    """(samples, inclusive samples per function, self samples per function)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    # Raw profiles are kept gzipped in docs/results (0.4-0.9 MB of text each).
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        if within and not any(within in f for f in frames):
            continue
        n = int(count)
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    return total, inclusive, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--within", help="only stacks through a frame containing this text")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    total, inclusive, own = summarise(args.profile, args.within)
    print(f"{total} samples")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n| {title} % | function (file) |\n|---:|---|")
        for frame, n in counter.most_common(args.top):
            print(f"| {100 * n / max(total, 1):.1f} | `{frame}` |")


if __name__ == "__main__":
    main()
