"""perf_analyzer (Triton's C++ load generator) over the models of deploy/gpu/launch.py.

    python -m deploy.gpu.perf_analyzer prepare --source tritonclient-2.51.0-py3-none-manylinux1_x86_64.whl \
        --libs .venv/lib/python3.11/site-packages/nvidia_pytriton.libs --out var/pa
    python -m deploy.gpu.perf_analyzer run --perf-analyzer var/pa/perf_analyzer \
        --models netflow_classifier --engines routed,nvforest --shared-memory none,system,cuda \
        --concurrency 1,4,16 --batches 1,64,1024,8192,65536 [--features feats.npz] --out perf.json

deploy.gpu.client_bench measures through the Python tritonclient, the scorer's own client
path; at small batches and many requests in flight that client's own CPU time (one Python
thread per request in flight, one GIL) can be what limits. perf_analyzer sends the same
requests from C++, so the gap between the two is the Python client's share.

The binary ships in the tritonclient 2.51 manylinux wheel (``pip download --no-deps
--only-binary=:all: --platform manylinux1_x86_64 --python-version 3.12 tritonclient==2.51.0``;
later wheels no longer carry it). It links libb64 and libcudart 12, which the nvidia-pytriton
wheel's ``nvidia_pytriton.libs`` holds under hashed names: ``prepare`` copies the binary (from
the wheel, or a binary taken out of it earlier) and the two libraries, under the names the
binary asks for, into one folder (``lib/`` beside the binary), which ``run`` puts on the
library path.

Inputs: with ``--features`` (client_bench's ``.npz`` of real feature rows) batch-1 requests
cycle through the model's first ``--feature-rows`` rows, as client_bench's do; larger batches,
and every batch without it, use perf_analyzer's random inputs (one random tensor reused).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from deploy.gpu.bench_common import machine_info, served_name
from scorer.inference.base import INPUT_NAME

# perf_analyzer's CSV columns (µs, rows/s) -> this report's names.
COLUMNS = {
    "Inferences/Second": "rows_per_s",
    "p50 latency": "p50_us",
    "p90 latency": "p90_us",
    "p95 latency": "p95_us",
    "p99 latency": "p99_us",
    "Client Send": "client_send_us",
    "Network+Server Send/Recv": "network_us",
    "Server Queue": "server_queue_us",
    "Server Compute Input": "server_compute_input_us",
    "Server Compute Infer": "server_compute_infer_us",
    "Server Compute Output": "server_compute_output_us",
    "Client Recv": "client_recv_us",
}
# The libraries the 2.51 binary links that a bare host lacks: its soname -> the file name's
# start in nvidia_pytriton.libs (auditwheel appends a hash and the full version).
LIBRARIES = {"libb64.so.0d": "libb64-", "libcudart.so.12": "libcudart-"}


def parse_csv(text: str) -> dict[str, float]:
    """The last row of perf_analyzer's ``-f`` CSV, renamed by COLUMNS."""
    row = list(csv.DictReader(text.splitlines()))[-1]
    return {ours: float(row[theirs]) for theirs, ours in COLUMNS.items() if row.get(theirs, "") != ""}


def prepare(source: Path, libs: Path, out: Path) -> Path:
    """perf_analyzer (from the tritonclient wheel ``source``, or ``source`` itself) into ``out``,
    its two libraries into ``out/lib``."""
    out.mkdir(parents=True, exist_ok=True)
    binary = out / "perf_analyzer"
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as zf:
            member = next((n for n in zf.namelist() if n.endswith("/bin/perf_analyzer")), None)
            if member is None:
                raise SystemExit(f"{source}: no bin/perf_analyzer in this wheel (tritonclient 2.51 carries it)")
            binary.write_bytes(zf.read(member))
    elif source.resolve() != binary.resolve():
        shutil.copyfile(source, binary)
    binary.chmod(0o755)
    (out / "lib").mkdir(exist_ok=True)
    for soname, prefix in LIBRARIES.items():
        found = sorted(libs.glob(f"{prefix}*"))
        if not found:
            raise SystemExit(f"{libs}: no {prefix}* (the nvidia-pytriton wheel's nvidia_pytriton.libs has it)")
        shutil.copyfile(found[0], out / "lib" / soname)
    return binary


def input_data(features: Path, model: str, rows: int, folder: Path) -> Path:
    """perf_analyzer's ``--input-data`` JSON: one batch-1 request per real feature row."""
    with np.load(features) as z:
        x = np.asarray(z[model], dtype=np.float32)[:rows]
    path = folder / f"{model}.json"
    path.write_text(json.dumps({"data": [{INPUT_NAME: [float(v) for v in row]} for row in x]}))
    return path


def perf_point(
    binary: Path,
    url: str,
    model: str,
    batch: int,
    concurrency: int,
    shm: str,
    interval_ms: int,
    data: Path | None = None,
) -> dict[str, Any]:
    env = dict(os.environ)
    lib = binary.resolve().parent / "lib"
    if lib.is_dir():
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(lib), env.get("LD_LIBRARY_PATH", "")) if p)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "perf.csv"
        cmd = [
            str(binary),
            "-m",
            model,
            "-u",
            url,
            "-i",
            "grpc",
            "-b",
            str(batch),
            "--concurrency-range",
            f"{concurrency}:{concurrency}",
            "--measurement-interval",
            str(interval_ms),
            "--max-trials",
            "4",
            "--stability-percentage",
            "1000",  # a point, not a search: a noisy host must still give one, not an error
            "--shared-memory",
            shm,
            # its default output region (100 KB) is too small for 65536 x 2 floats
            "--output-shared-memory-size",
            str(max(batch * 8, 1 << 16)),
            "-f",
            str(report),
        ]
        if data is not None:
            cmd += ["--input-data", str(data)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
        if done.returncode != 0 or not report.is_file():
            return {"error": (done.stdout + done.stderr)[-600:]}
        return parse_csv(report.read_text())


def run(args: argparse.Namespace) -> None:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            data = input_data(args.features, model, args.feature_rows, Path(tmp)) if args.features else None
            for engine in args.engines.split(","):
                for shm in args.shared_memory.split(","):
                    for conc in map(int, args.concurrency.split(",")):
                        for batch in map(int, args.batches.split(",")):
                            real = data is not None and batch == 1
                            row: dict[str, Any] = {
                                "model": model,
                                "engine": engine,
                                "shared_memory": shm,
                                "in_flight": conc,
                                "batch": batch,
                                "inputs": "real rows" if real else "random",
                            }
                            row.update(
                                perf_point(
                                    args.perf_analyzer,
                                    args.url,
                                    served_name(model, engine),
                                    batch,
                                    conc,
                                    shm,
                                    args.interval_ms,
                                    data if real else None,
                                )
                            )
                            rows.append(row)
                            print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"info": machine_info(), "perf_analyzer": rows}, indent=1))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="the binary and its libraries from the wheels")
    prep.add_argument("--source", type=Path, required=True, help="the tritonclient 2.51 manylinux wheel, or its binary")
    prep.add_argument("--libs", type=Path, required=True, help="the nvidia-pytriton wheel's nvidia_pytriton.libs")
    prep.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("run", help="measure")
    r.add_argument("--perf-analyzer", type=Path, required=True)
    r.add_argument("--url", default="127.0.0.1:8001")
    r.add_argument("--models", default="netflow_classifier")
    r.add_argument("--engines", default="nvforest", help="launch.py's engines; routed: the production name")
    r.add_argument("--shared-memory", default="none", help="none,system,cuda")
    r.add_argument("--concurrency", default="1")
    r.add_argument("--batches", default="1,64,1024,8192,65536")
    r.add_argument("--interval-ms", type=int, default=1000, help="perf_analyzer's measurement window")
    r.add_argument("--features", type=Path, default=None, help="real rows (.npz) for batch-1 requests")
    r.add_argument("--feature-rows", type=int, default=512, help="rows of --features cycled through")
    r.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.command == "prepare":
        print(prepare(args.source, args.libs, args.out))
    else:
        run(args)


if __name__ == "__main__":
    main()
