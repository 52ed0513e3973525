"""The rule pack's tree compiles at start-up: how long, and one compile() per tree vs one per pack.
    .venv/bin/python docs/results/s21/lead/rulecompile.py   (from the repo root)"""
import time
import scorer.rules.bitsets as b
sources: list[str] = []
real = b._compile
def rec(tree, source):
    sources.append(source)
    return real(tree, source)
b._compile = rec
from scorer.rules.annotate import RuleStage
from pathlib import Path
t = time.process_time(); stage = RuleStage.load(Path("rule_repository"), "sigma_windows", None); load = time.process_time() - t
print(f"RuleStage.load: {load:.2f} s CPU, {len(sources)} trees compiled")
t = time.process_time()
for s in sources:
    compile(s, "<rule condition>", "exec")
each = time.process_time() - t
# one module: each tree's source inside a factory function (its constants become closure cells)
parts = []
for i, s in enumerate(sources):
    parts.append(f"def _mk{i}():\n" + "".join("    " + line + "\n" for line in s.splitlines()) + "    return f\n")
big = "".join(parts)
t = time.process_time(); code = compile(big, "<rule conditions>", "exec"); one = time.process_time() - t
space = {"_or_of": None}
t = time.process_time(); exec(code, space); fs = [space[f"_mk{i}"]() for i in range(len(sources))]; mk = time.process_time() - t
print(f"compile() per tree: {each:.3f} s ({each / len(sources) * 1e6:.0f} us a tree); one compile() for all: {one:.3f} s + {mk:.3f} s to make them")
