"""Per-event cache misses (cachegrind --cache-sim=yes): (full - warm-up only) / N, at two batch sizes,
totals and the functions whose I1/D1 misses per event grow most at the small batch."""
import sys, collections
def load(path):
    ev = None; per = collections.defaultdict(lambda: [0]*9); fl = fn = None; summary = None
    for line in open(path):
        if line.startswith("events:"): ev = line.split()[1:]
        elif line.startswith("fl="): fl = line[3:].strip()
        elif line.startswith("fn="): fn = line[3:].strip()
        elif line.startswith("summary:"): summary = list(map(int, line.split()[1:]))
        elif line[:1].isdigit():
            parts = line.split()
            vals = list(map(int, parts[1:])) + [0]*(len(ev) - len(parts) + 1)
            acc = per[(fl, fn)]
            for i, v in enumerate(vals): acc[i] += v
    return ev, summary, per
def diff(full, base, n):
    ev, sf, pf = load(full); _, sb, pb = load(base)
    tot = [(a - b) / n for a, b in zip(sf, sb)]
    fns = {k: [(a - b) / n for a, b in zip(pf[k], pb.get(k, [0]*9))] for k in pf}
    return ev, tot, fns
small = diff(sys.argv[1], sys.argv[2], int(sys.argv[3])); large = diff(sys.argv[4], sys.argv[5], int(sys.argv[6]))
ev = small[0]
print("per event | " + " | ".join(ev)); 
print("small batch | " + " | ".join(f"{x:,.0f}" for x in small[1]))
print("large batch | " + " | ".join(f"{x:,.0f}" for x in large[1]))
i1, d1r, d1w = ev.index("I1mr"), ev.index("D1mr"), ev.index("D1mw")
for name, idx in (("I1 misses", [i1]), ("D1 misses (read+write)", [d1r, d1w])):
    rows = []
    for k, v in small[2].items():
        s = sum(v[i] for i in idx); l = sum(large[2].get(k, [0]*9)[i] for i in idx)
        rows.append((s - l, s, l, k))
    rows.sort(reverse=True)
    print(f"\n{name} per event, small - large (top 25): small, large, function (file)")
    for d, s, l, (fl, fn) in rows[:25]:
        print(f"{d:8.1f} {s:8.1f} {l:8.1f}  {fn}  ({fl.split('/')[-1]})")
