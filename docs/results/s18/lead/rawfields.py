"""How much of an EDR record's decode is its ``fields`` dict: msgspec's decode of the realistic
stream's EDR records into EndpointEvent as shipped, against the same struct with ``fields`` kept
as msgspec.Raw (its bytes, not decoded). Best of 5 passes over 20,000 records, CPU time.

    python docs/results/s18/lead/rawfields.py   (SCORER_DATA_DIR: the shared data)
"""
import argparse
import time
import typing

import msgspec

from scorer.bench.loadgen import payloads, templates
from scorer.bench.realistic import add_stream_arguments, stream_templates
from scorer.demo import bundled_capture
from scorer.events.structs import EndpointEvent, EventKind

parser = argparse.ArgumentParser()
add_stream_arguments(parser)
tpl = stream_templates(parser.parse_args(["--stream", "realistic"]), templates(bundled_capture(), tuple(EventKind)))
values = [v for k, _, v in payloads(tpl, 60000) if k == EventKind.EDR]
hints = typing.get_type_hints(EndpointEvent)
spec: list[typing.Any] = []
for f in msgspec.inspect.type_info(EndpointEvent).fields:
    if f.name == "fields":
        spec.append((f.encode_name, msgspec.Raw, msgspec.Raw(b"{}")))
    elif f.default is not msgspec.NODEFAULT:
        spec.append((f.encode_name, hints[f.name], f.default))
    elif f.default_factory is not msgspec.NODEFAULT:
        spec.append((f.encode_name, hints[f.name], f.default_factory()))
    else:
        spec.append((f.encode_name, hints[f.name]))
config = EndpointEvent.__struct_config__
Lazy = msgspec.defstruct("Lazy", spec, kw_only=True, frozen=True, tag=config.tag, tag_field=config.tag_field)
blob = b"[" + b",".join(values) + b"]"
print(f"{len(values)} EDR records, {len(blob) / len(values):.0f} bytes each")
for name, dec in (("fields decoded (shipped)", msgspec.json.Decoder(list[EndpointEvent])),
                  ("fields kept raw", msgspec.json.Decoder(list[Lazy]))) * 2:
    best = 1e9
    for _ in range(5):
        t = time.process_time()
        dec.decode(blob)
        best = min(best, time.process_time() - t)
    print(f"{name}: {best / len(values) * 1e6:.2f} us/record")
