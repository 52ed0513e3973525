"""irsum.py OUT.cg LOG: total, the excluded stages (_operator_call inclusive), decide (starmap_next inclusive)."""
import re, subprocess, sys
cg, log = sys.argv[1:3]
m = re.search(r"events (\d+) batches (\d+)", open(log).read()); events, batches = int(m[1]), int(m[2])
ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", cg], capture_output=True, text=True).stdout
total = int(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", ann)[1].replace(",", ""))
def incl(fn):
    for line in ann.splitlines():
        if re.search(rf"[ :]{fn}( |$)", line):
            return int(line.split()[0].replace(",", ""))
    return 0
stages_, decide = incl("_operator_call"), incl("starmap_next")
rest = total - stages_
print(f"{cg}: events {events} batches {batches}")
for name, v in (("total", total), ("decode+rules+features", stages_), ("OURS (total - those)", rest), ("  decide", decide), ("  inference+glue", rest - decide)):
    print(f"{name:24s} {v/events:10,.0f}/event {v/batches:12,.0f}/batch")
