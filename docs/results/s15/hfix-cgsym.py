import sys
sys.argv = sys.argv
exec(open("docs/results/s15/hfix-cgmiss.py").read().split("small = diff")[0])
def tot(full, base, n):
    ev, _, fns = diff(full, base, n)
    sym = [0.0]*9; un = [0.0]*9; trees=[0.0]*9
    for (fl, fn), v in fns.items():
        tgt = un if fl == "???" and fn != "predict" else trees if fn == "predict" else sym
        for i, x in enumerate(v): tgt[i] += x
    return ev, sym, un, trees
for label, args in (("batch 50", sys.argv[1:4]), ("batch 2048", sys.argv[4:7])):
    ev, sym, un, trees = tot(args[0], args[1], int(args[2]))
    print(label, "symbolised (not the trees):", {e: round(x) for e, x in zip(ev, sym)})
    print(label, "compiled trees (predict):", {e: round(x) for e, x in zip(ev, trees)})
    print(label, "unsymbolised (???):", {e: round(x) for e, x in zip(ev, un)})
