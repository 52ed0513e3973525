import sys, collections, re
def agg(path, line_level=False):
    incl = collections.Counter(); selfc = collections.Counter()
    for line in open(path):
        stack, _, n = line.rstrip().rpartition(" ")
        n = int(n); frames = stack.split(";")
        if not any("_score_batch" in f for f in frames): continue
        # keep only the measure loop (prof.py line of loop) - exclude warm-up by requiring 'run (/tmp/hfix/prof.py' called from module line >= 30
        mod = [f for f in frames if f.startswith("<module> (prof.py")]
        if not mod or int(mod[0].rsplit(":",1)[1][:-1]) < 30: continue
        seen=set()
        for f in frames:
            k = f if line_level else re.sub(r":\d+\)$", ")", f)
            if k not in seen: incl[k]+=n; seen.add(k)
        selfc[frames[-1]] += n
    return incl, selfc
a, sa = agg(sys.argv[1]); b, sb = agg(sys.argv[2])
ta = max(a.values()); tb = max(b.values())
cpa, cpb = float(sys.argv[3]), float(sys.argv[4])
rows = []
for k in set(a)|set(b):
    ua = a[k]/ta*cpa; ub = b[k]/tb*cpb
    rows.append((ua-ub, ua, ub, k))
rows.sort(reverse=True)
print("fixed_us_per_batch50  us/ev@50 us/ev@2048")
for d, ua, ub, k in rows[:45]:
    print(f"{d*50:7.1f} {ua:6.2f} {ub:6.2f} {k.replace('/work/main/','')}")
print("=== self lines")
rows=[]
for k in set(sa)|set(sb):
    ua = sa[k]/ta*cpa; ub = sb[k]/tb*cpb
    rows.append((ua-ub, ua, ub, k))
rows.sort(reverse=True)
for d, ua, ub, k in rows[:40]:
    print(f"{d*50:7.1f} {ua:6.2f} {ub:6.2f} {k.replace('/work/main/','')}")
