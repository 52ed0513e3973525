"""Instructions of a batch's score outside decode, rules and features (inference, decide, the glue
of BatchScorer), on the realistic stream's batches after a warm-up: callgrind collects inside one
functools.reduce over the batches; decode, apply_rules and compute_features each run inside
_operator.call (excluded by its inclusive cost), decide inside itertools.starmap (its share).
serve_io is replaced by a coroutine that returns at once (the loop has nothing else to run), so score()
never suspends and is driven in line."""
import argparse, asyncio, functools, operator, os, sys
from itertools import starmap
os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "vectorized")
os.environ.setdefault("SCORER_DATA_DIR", "/work/shared/data")
from scorer.bench import stages
from scorer.bench.realistic import add_stream_arguments
from scorer.config import Settings
from scorer.service.build import build_scorer
from scorer.service.gctune import tune_gc
import scorer.pipeline.scoring as sc

p = argparse.ArgumentParser(); add_stream_arguments(p); p.add_argument("--batch", type=int, default=50)
p.add_argument("--events", type=int, default=3000); p.add_argument("--warm", type=int, default=16000)
args = p.parse_args(["--stream", "realistic"] + sys.argv[1:])
call = operator.call
for name in ("decode", "apply_rules", "compute_features"):
    orig = getattr(sc, name)
    setattr(sc, name, (lambda f: lambda *a: call(f, *a))(orig))
async def _no_turn(max_turns=0):  # the pipeline's serve_io when nothing else is ready (the lead's turns.py)
    return None
sc.serve_io = _no_turn
orig_decide = sc.decide
sc.decide = lambda *a: next(starmap(orig_decide, (a,)))

def drive(coro):
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("score() suspended")

async def main():
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))
    recs = stages._records(args.warm + args.events, args)
    await stages.measure(scorer, [recs[:args.warm]], 512)
    tune_gc()
    rest = recs[args.warm:]
    chunks = [rest[i:i + args.batch] for i in range(0, len(rest), args.batch)]
    kept = []
    if os.environ.get("PROFILE"):
        import cProfile, pstats
        pr = cProfile.Profile(); pr.enable()
    functools.reduce(lambda _, c: kept.append(drive(scorer.score(c))), chunks, None)
    if os.environ.get("PROFILE"):
        pr.disable(); pstats.Stats(pr).sort_stats(os.environ["PROFILE"]).print_stats(45)
    print("events", len(rest), "batches", len(chunks), "alerts", sum(len(o.alerts) for o in kept))
asyncio.run(main())
