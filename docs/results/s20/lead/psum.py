# python psum.py PYSPY_RAW [ROOT_FRAME_PREFIX [N_SELF [N_INCLUSIVE]]]: a py-spy raw profile by function, self and inclusive, under the first frame starting with ROOT
import sys,collections
path=sys.argv[1]; root=sys.argv[2] if len(sys.argv)>2 else None
leaf=collections.Counter(); incl=collections.Counter(); tot=0
for line in open(path):
    stack,_,n=line.rstrip().rpartition(' '); n=int(n)
    fr=stack.split(';')
    if root:
        idx=[i for i,f in enumerate(fr) if f.startswith(root)]
        if not idx: continue
        fr=fr[idx[0]:]
    tot+=n
    leaf[fr[-1]]+=n
    seen=set()
    for x in fr:
        k=x.split(':')[0] if True else x
        k=x.rsplit(':',1)[0]+')' if x.endswith(')') else x
        if k in seen: continue
        seen.add(k); incl[k]+=n
print('total',tot)
for f,n in leaf.most_common(int(sys.argv[3]) if len(sys.argv)>3 else 35): print(f'{100*n/tot:5.1f}%', f[:140])
print('---incl')
for f,n in incl.most_common(int(sys.argv[4]) if len(sys.argv)>4 else 50): print(f'{100*n/tot:5.1f}%', f[:140])
