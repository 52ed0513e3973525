"""A py-spy raw profile by function: self and inclusive shares.  python3 spysum.py PROFILE [TOP_SELF] [TOP_CUM]"""
import sys, collections
self_c=collections.Counter(); cum=collections.Counter(); tot=0
for line in open(sys.argv[1]):
    line=line.rstrip()
    if not line: continue
    stack,_,n=line.rpartition(' '); n=int(n)
    frames=stack.split(';')
    # drop idle (select/epoll wait)
    tot+=n
    self_c[frames[-1]]+=n
    for f in set(frames): cum[f]+=n
print('total',tot)
print('--- self'); [print(f"{v*100/tot:5.1f}% {k}") for k,v in self_c.most_common(int(sys.argv[2]) if len(sys.argv)>2 else 30)]
print('--- cum'); [print(f"{v*100/tot:5.1f}% {k}") for k,v in cum.most_common(int(sys.argv[3]) if len(sys.argv)>3 else 50)]
