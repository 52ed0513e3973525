"""Per-function instructions of the stages child (cachegrind: a run scoring --events after the warm-up, less one
scoring none; cg_annotate OUT/diff-BATCH.out lists them).
    SCORER_DATA_DIR=../shared/data .venv/bin/python docs/results/s21/lead/cgfun.py --stream realistic --batch 2048"""
import argparse, os, pickle, subprocess, sys
from pathlib import Path
from scorer.bench import stages_ab as sab
from scorer.bench.realistic import add_stream_arguments, stream_templates
from scorer.bench.loadgen import templates, payloads  # noqa
p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=2048)
p.add_argument("--events", type=int, default=6144)
p.add_argument("--warm", type=int, default=16000)
p.add_argument("--out", default="/tmp/s21/cgf")
p.add_argument("--tree", default="/work/main")
add_stream_arguments(p)
a = p.parse_args()
out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
rec = out / "records.pickle"
if not rec.exists():
    from scorer.demo import bundled_capture
    from scorer.events.structs import EventKind
    tpl = stream_templates(a, templates(bundled_capture(), tuple(EventKind)))
    items = [(k.value, key, v) for k, key, v in payloads(tpl, a.warm + a.events)]
    rec.write_bytes(pickle.dumps(items))
env = {**os.environ, "PYTHONPATH": a.tree, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
env.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "vectorized")
for n in (a.events, 0):
    f = out / f"cg-{a.batch}-{n}.out"
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={f}", sys.executable, "-P",
           str(Path(a.tree) / "scorer/bench/stages_ab.py"), "--child", str(rec), "--warm", str(a.warm), "--batch", str(a.batch),
           "--measure", str(n), "--no-check"]
    subprocess.run(cmd, env=env, cwd=a.tree, check=True, capture_output=True)
d = out / f"diff-{a.batch}.out"
subprocess.run(["cg_diff", str(out / f"cg-{a.batch}-0.out"), str(out / f"cg-{a.batch}-{a.events}.out")], stdout=open(d, "w"), check=True)
print(d)
