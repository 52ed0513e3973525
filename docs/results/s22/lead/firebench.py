"""`_rules.fire` alone, on the calls a real run makes: record them, then time one tree's build against another's.
    record: SCORER_DATA_DIR=../shared/data python firebench.py record OUT.pkl B NB   (STREAM=capture: the bundled capture)
    time:   PYTHONPATH=<tree> python firebench.py time OUT.pkl REPEAT   (the tree's scorer/native/_rules and bitsets)"""
import os, pickle, sys, time, zlib

os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "vectorized")


def record(out: str, b: int, nb: int) -> None:
    import argparse, asyncio
    from pathlib import Path
    from scorer.bench.stages import _records
    from scorer.config import Settings
    from scorer.service.build import build_scorer
    from scorer.rules.engine import RuleEngine
    args = argparse.Namespace(stream=os.environ.get("STREAM", "realistic"), attack_share=0.01,
                              data_dir=Path(os.environ.get("SCORER_DATA_DIR", "../shared/data")))
    recs = _records(16000 + b * nb, args)
    calls, engines = [], []
    real = RuleEngine._fire

    def rec(self, candidates, ls_masks, get, n=None):
        if measuring:
            if not engines:
                engines.append(self)
            calls.append((set(candidates), list(ls_masks), dict(get.__self__), n))
        return real(self, candidates, ls_masks, get, *(() if n is None else (n,)))
    RuleEngine._fire = rec
    measuring = False

    async def main():
        nonlocal measuring
        scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))
        for i in range(0, 16000, 512):
            await scorer.score(recs[i:i + 512])
        measuring = True
        for i in range(16000, len(recs), b):
            await scorer.score(recs[i:i + b])
    asyncio.run(main())
    e = engines[0]
    with open(out, "wb") as fh:
        pickle.dump({"trees": [det for _, _, det in e.variants], "rule_of": e.rule_of, "ls_of": e.ls_of,
                     "calls": calls, "events": len(recs) - 16000}, fh)
    print(f"{len(calls)} fire calls recorded over {len(recs) - 16000} events")


def timed(path: str, repeat: int) -> None:
    import scorer.native
    from scorer.rules.bitsets import compile_tree, flat_tree
    _rules = scorer.native.module("_rules")
    with open(path, "rb") as fh:
        d = pickle.load(fh)
    used = {vi for c, *_ in d["calls"] for vi in c}
    code = [compile_tree(t) if i in used else None for i, t in enumerate(d["trees"])]
    flat = [flat_tree(t) for t in d["trees"]]
    calls = d["calls"]
    # the batch's rows: recorded by a tree that passes them, else the widest mask's (the same words)
    calls = [(c, m, a, n[0] if n and n[0] is not None else max([x.bit_length() for x in (*m, *a.values())] + [1]))
             for c, m, a, *n in calls]
    try:  # a tree before fire() took the batch's rows
        _rules.fire(set(), [], [], [], [], {}.get, [], 1)
        fire = lambda c, m, a, n: _rules.fire(c, d["rule_of"], d["ls_of"], code, m, a.get, flat, n)
    except TypeError:
        fire = lambda c, m, a, n: _rules.fire(c, d["rule_of"], d["ls_of"], code, m, a.get, flat)
    want = [fire(*call) for call in calls]
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for call in calls:
            fire(*call)
        best = min(best, time.perf_counter() - t)
    print(f"{_rules.__file__.split('/scorer/')[0]}: {best / d['events'] * 1e9:.1f} ns an event, "
          f"{best / len(calls) * 1e6:.1f} us a call ({len(calls)} calls); results digest {zlib.crc32(repr(sorted(sorted(w.items()) for w in want)).encode()):08x}")


if __name__ == "__main__":
    if sys.argv[1] == "record":
        record(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        timed(sys.argv[2], int(sys.argv[3]))
