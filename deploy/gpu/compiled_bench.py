"""GTIL against the tl2cgen-compiled trees in one process, on the capture's real rows: what a
small request costs each of the C++ backend's two scorers (docs/gpu-serving.md, run 13).

    python -m deploy.gpu.compiled_bench --features feats.npz --out compiled.json \
        [--models netflow_classifier,... --batches 1,4,16,64 --calls 20000 --threads 8]

Per model: compiles the version's ``model.tl`` (compiled_model.build) and predict_bench.cc
(with the backend's own gtil.cc and compiled_model.cc), checks both scorers' scores of every
row against ONNX Runtime (max |diff|, alert decisions at the version's threshold), then times
one-thread GTIL, GTIL with ``--threads``, and the library, interleaved call by call.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from deploy.gpu import compiled_model, cpp_backend
from deploy.gpu.bench_common import machine_info, tile

ROOT = Path(__file__).resolve().parents[2]
BACKEND = cpp_backend.SOURCES
MODELS = ("netflow_classifier", "edr_classifier", "siem_classifier")


def build_harness(out: Path) -> Path:
    compiler = os.environ.get("CXX", "c++")
    binary = out / "predict_bench"
    subprocess.run([compiler, "-O2", "-std=c++17", f"-I{BACKEND}", "-o", str(binary),
                    str(Path(__file__).with_name("predict_bench.cc")), str(BACKEND / "gtil.cc"),
                    str(BACKEND / "compiled_model.cc"), "-ldl"], check=True)
    return binary


def bench_model(harness: Path, version: Path, x: np.ndarray[Any, Any], work: Path, *, batches: list[int],
                calls: int, threads: int) -> dict[str, Any]:
    import onnxruntime as ort

    library = compiled_model.build(version / "model.tl")
    if len(x) < max(batches):  # the harness slices batches from the rows it is given
        x = tile(x, max(batches))
    rows = work / f"{version.parent.name}.f32"
    np.ascontiguousarray(x, np.float32).tofile(rows)
    out = work / f"{version.parent.name}.scores"
    run = subprocess.run([str(harness), str(cpp_backend.treelite_library()), str(version / "model.tl"), str(library),
                          str(rows), str(len(x)), str(out), str(threads), str(calls), *map(str, batches)],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"predict_bench failed on {version}: {run.stderr.strip()}")
    both = np.fromfile(out, np.float32).reshape(2, len(x), -1)[..., -1]  # P(malicious): the last output
    threshold = float(json.loads((version / "card.json").read_text())["threshold"])
    session = ort.InferenceSession(str(version / "model.onnx"), providers=["CPUExecutionProvider"])
    want = session.run(["probabilities"], {"features": np.ascontiguousarray(x, np.float32)})[0][:, 1]
    checks = {name: vars(compiled_model.agreement(got, want, threshold))
              for name, got in zip(("gtil", "compiled"), both, strict=True)}
    return {"rows": len(x), "threshold": threshold, "vs_onnxruntime": checks,
            "timings": [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--repository", type=Path, default=ROOT / "model_repository")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default="1,4,16,64")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=8, help="GTIL's threads on its parallel path (the backend's 8)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    feats = np.load(args.features)
    report: dict[str, Any] = {"machine": machine_info(), "load": os.getloadavg(),
                              "tl2cgen": compiled_model.tl2cgen_version(), "models": {}}
    with tempfile.TemporaryDirectory(prefix="compiled-bench-") as tmp:
        harness = build_harness(Path(tmp))
        for model in args.models.split(","):
            found = bench_model(harness, args.repository / model / "1", feats[model], Path(tmp),
                                batches=[int(b) for b in args.batches.split(",")], calls=args.calls,
                                threads=args.threads)
            report["models"][model] = found
            for t in found["timings"]:
                print(model[:7], f"batch {t['batch']:>3}", *(f"{k} p50 {t[k]['p50_ns'] / 1e3:6.2f} p99 "
                      f"{t[k]['p99_ns'] / 1e3:6.2f} us" for k in ("gtil_1_thread", "gtil_threads", "compiled")),
                      sep="  ", flush=True)
            print(model[:7], "vs ONNX Runtime:", found["vs_onnxruntime"], flush=True)
    report["load_after"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
