import gzip, json, re, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind
import msgspec
path = bundled_capture()
tok_re = re.compile(rb'"[^"]+":\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)')
n_rec = n_tok = n_slow = 0
with gzip.open(path, "rb") as f:
    for line in f:
        doc = json.loads(line)
        if doc.get("kind") not in ("netflow", None) and "extra" not in json.dumps(doc)[:0]:
            pass
        raw = json.dumps(doc.get("event", doc)).encode()
        m = re.search(rb'"extra":\s*(\{[^{}]*\})', raw)
        if not m:
            continue
        n_rec += 1
        for t in tok_re.findall(m.group(1)):
            n_tok += 1
            digits = re.sub(rb"[-.]|[eE].*", b"", t).lstrip(b"0").rstrip(b"0")
            if len(digits) > 15:
                n_slow += 1
print(f"flows with statistics: {n_rec}, numbers {n_tok} ({n_tok/max(n_rec,1):.1f} a flow), over 15 digits {n_slow} ({n_slow/max(n_rec,1):.1f} a flow)")
