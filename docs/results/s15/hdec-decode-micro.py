"""EDR/SIEM decode targets, timed in process (best of 30 runs, the service's GC settings):
today's struct; the struct with ``fields`` left raw (the cost of the fields dict); one msgspec
call per batch (records joined into a JSON array). Records: the realistic stream's (stages_ab's
pickle of (kind, key, value), 16,000 + 30,000 events)."""
import pickle
import sys
import time

import msgspec

from scorer.events.structs import EndpointEvent, SiemAlert
from scorer.service.gctune import tune_gc

items = pickle.loads(open(sys.argv[1], "rb").read())


class RawFields(EndpointEvent, frozen=True, kw_only=True, omit_defaults=True):
    fields: msgspec.Raw = msgspec.Raw(b"{}")


class NoGc(EndpointEvent, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    pass


def best(f, n=30):
    out = 1e9
    for _ in range(n):
        t0 = time.perf_counter()
        r = f()
        out = min(out, time.perf_counter() - t0)
        del r
    return out


tune_gc()
for kind, struct in (("edr", EndpointEvent), ("siem", SiemAlert)):
    values = [v for k, _, v in items if k == kind]
    one, joined = msgspec.json.Decoder(struct), msgspec.json.Decoder(list[struct])
    for n in (17, 683, 2048):
        vv = values[:n]
        row = {"map": best(lambda: list(map(one.decode, vv))),
               "joined": best(lambda: joined.decode(b"[" + b",".join(vv) + b"]"))}
        if kind == "edr":
            raw, nogc = msgspec.json.Decoder(RawFields), msgspec.json.Decoder(NoGc)
            row["fields raw"] = best(lambda: list(map(raw.decode, vv)))
            row["gc=False"] = best(lambda: list(map(nogc.decode, vv)))
        print(kind, n, "  ".join(f"{k} {v / n * 1e6:.3f} us/event" for k, v in row.items()))
