"""decode and decide of the captured realistic batches, each in one functools.reduce (callgrind toggles on it).
The batches decoded are kept (freed after), as the pipeline frees them after decide, not inside decode."""
import functools, os, sys
exec(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "hot.py")).read().split("from scorer.pipeline.decode import decode")[0])
from scorer.pipeline.decode import decode
from scorer.pipeline.decide import decide
kept = []
functools.reduce(lambda _, c: kept.append(decode(*c)), captured_dec, None)
out = []
functools.reduce(lambda _, c: out.append(decide(*c)), captured_decide, None)
print("events", args.events, "batches", len(captured_dec))
