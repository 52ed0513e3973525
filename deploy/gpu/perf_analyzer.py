"""perf_analyzer (Triton's C++ load generator) over the models of deploy/gpu/launch.py.

    python -m deploy.gpu.perf_analyzer --perf-analyzer /path/perf_analyzer \
        --models netflow_classifier --engines nvforest --shared-memory none,system,cuda \
        --concurrency 1,4,16 --batches 1,64,1024,8192,65536 --out perf.json

deploy.gpu.client_bench measures through the Python tritonclient, the scorer's own client
path; at small batches and many requests in flight that client's own CPU time (one Python
thread per request in flight, one GIL) can be what limits. perf_analyzer sends the same
requests from C++, so the gap between the two is the Python client's share. Its inputs are
random (it has no feature file); the traversal walks every row to full depth whatever the
values, so its cost does not depend on them. The binary ships in the tritonclient 2.51
manylinux wheel (tritonclient/.../bin/perf_analyzer); it needs libb64 and libcudart 12 on
the library path (the pytriton wheel's nvidia_pytriton.libs has both, under hashed names).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from deploy.gpu.bench_common import machine_info

# perf_analyzer's CSV columns (µs, rows/s) -> this report's names.
COLUMNS = {"Inferences/Second": "rows_per_s", "p50 latency": "p50_us", "p99 latency": "p99_us",
           "Client Send": "client_send_us", "Network+Server Send/Recv": "network_us",
           "Server Queue": "server_queue_us", "Server Compute Input": "server_compute_input_us",
           "Server Compute Infer": "server_compute_infer_us",
           "Server Compute Output": "server_compute_output_us", "Client Recv": "client_recv_us"}


def parse_csv(text: str) -> dict[str, float]:
    """The last row of perf_analyzer's ``-f`` CSV, renamed by COLUMNS."""
    row = list(csv.DictReader(text.splitlines()))[-1]
    return {ours: float(row[theirs]) for theirs, ours in COLUMNS.items() if row.get(theirs, "") != ""}


def perf_point(binary: Path, url: str, model: str, batch: int, concurrency: int, shm: str,
               interval_ms: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "perf.csv"
        cmd = [str(binary), "-m", model, "-u", url, "-i", "grpc", "-b", str(batch),
               "--concurrency-range", f"{concurrency}:{concurrency}",
               "--measurement-interval", str(interval_ms), "--max-trials", "4",
               "--stability-percentage", "100",  # loose: a point, not a search
               "--shared-memory", shm,
               # its default output region (100 KB) is too small for 65536 x 2 floats
               "--output-shared-memory-size", str(max(batch * 8, 1 << 16)), "-f", str(report)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        if done.returncode != 0 or not report.is_file():
            return {"error": (done.stdout + done.stderr)[-600:]}
        return parse_csv(report.read_text())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--perf-analyzer", type=Path, required=True)
    p.add_argument("--url", default="127.0.0.1:8001")
    p.add_argument("--models", default="netflow_classifier")
    p.add_argument("--engines", default="nvforest")
    p.add_argument("--shared-memory", default="none", help="none,system,cuda")
    p.add_argument("--concurrency", default="1")
    p.add_argument("--batches", default="1,64,1024,8192,65536")
    p.add_argument("--interval-ms", type=int, default=1000)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for model in args.models.split(","):
        for engine in args.engines.split(","):
            for shm in args.shared_memory.split(","):
                for conc in map(int, args.concurrency.split(",")):
                    for batch in map(int, args.batches.split(",")):
                        row: dict[str, Any] = {"model": model, "engine": engine, "shared_memory": shm,
                                               "in_flight": conc, "batch": batch}
                        row.update(perf_point(args.perf_analyzer, args.url, f"{model}_{engine}", batch, conc,
                                              shm, args.interval_ms))
                        rows.append(row)
                        print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"info": machine_info(), "perf_analyzer": rows}, indent=1))


if __name__ == "__main__":
    main()
