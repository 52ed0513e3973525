#!/usr/bin/env python3
"""Serve the shipped tree ensembles from Triton on a GPU host: nvForest for large requests,
the C++ Treelite backend on the CPU for small ones, under the production model names.

    python deploy/gpu/launch.py serve --repository model_repository --workdir var/triton-gpu \
        [--engines routed,nvforest --max-batch 65536 --gpu-instances 8 --cpu-threads 16]
    python deploy/gpu/launch.py generate --repository model_repository --out var/gpu-repository
    python deploy/gpu/launch.py stop --workdir var/triton-gpu

For each production model ``<name>`` and each engine, one model serves the same versions:

- ``routed``: ``<name>`` itself, the GPU host's production model (what scorers call): the C++
  Treelite backend (deploy/gpu/treelite_backend, config ``triton_config.treelite_cpu_model``)
  scores requests below ``--small-request-rows`` on KIND_CPU, with the version's trees
  compiled here by tl2cgen and the host's C compiler (``--compiled``, default on;
  compiled_model.py), and forwards the others, inside the server, to
  ``<name>_<large engine>`` (``--large-engine``, default nvforest);
- ``nvforest``: ``<name>_nvforest`` on KIND_GPU, deploy/gpu/model.py (python backend) running
  nvForest on the version's Treelite checkpoint ``model.tl`` (``triton_config.nvforest_model``);
- ``treelite-cpp``: ``<name>_treelite-cpp``, the C++ backend alone (the CPU side measured);
- ``onnxruntime`` (``model.onnx``), ``treelite`` and ``nvforest-cpu`` (``model.tl``): model.py
  on KIND_CPU, the comparisons (``treelite`` runs where no GPU is: CI).

Tensors, dynamic batching and version policy come from the production config. The server,
its python backend and start/stop are deploy/local/triton.py's (imported, not copied); only
the repository differs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script (python deploy/gpu/launch.py): the checkout's packages, deploy and scorer.
sys.path.append(str(Path(__file__).resolve().parents[2]))  # appended: never shadows a package
from deploy.gpu import compiled_model, cpp_backend
from deploy.gpu.bench_common import ROUTED, served_name
from deploy.local import triton as local_launcher
from scorer.inference import triton_config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CPP = "treelite-cpp"  # the C++ Treelite backend: the GPU host's small-request model
ENGINES = ("nvforest", "onnxruntime", "treelite", "nvforest-cpu", CPP, ROUTED)
LINKED = ("model.onnx", "model.tl")  # what a version's engines load (forest_scorer.artefact)


def engine_config(production_pbtxt: str, engine: str, *, max_batch: int, gpu_instances: int,
                  cpu_threads: int, queue_delay_us: int | None = None, cpu_instances: int = 2,
                  large_engine: str = "nvforest", small_request_rows: int = triton_config.SMALL_REQUEST_ROWS,
                  cpu_model_threads: int = triton_config.CPU_MODEL_THREADS,
                  cpu_batching: bool = triton_config.CPU_MODEL_BATCHING) -> str:
    """The production config as a python-backend model of ``engine``, named ``<name>_<engine>``."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    production = triton_config.parse(production_pbtxt)
    if engine in (CPP, ROUTED):
        large = served_name(production.name, large_engine) if engine == ROUTED else None
        config = triton_config.treelite_cpu_model(production, library=str(cpp_backend.treelite_library()),
                                                  instances=cpu_instances, threads=cpu_model_threads,
                                                  large_model=large, large_rows=small_request_rows,
                                                  batching=cpu_batching)
        config.name = served_name(production.name, engine)
        config.max_batch_size = max(config.max_batch_size, max_batch)
        return triton_config.to_text(config)
    if engine == "nvforest":
        config = triton_config.nvforest_model(production, gpu_instances=gpu_instances)
    else:  # the CPU comparisons: one CPU instance, as the local shim's
        config = triton_config.python_backend(production)
        config.parameters["scorer_engine"].string_value = engine
    config.name = f"{config.name}_{engine}"
    # Production caps a request at 8192 rows; the benchmark sends up to 65536 in one.
    config.max_batch_size = max(config.max_batch_size, max_batch)
    if queue_delay_us is not None:  # a latency study: how long the batcher waits for company
        config.dynamic_batching.max_queue_delay_microseconds = queue_delay_us
    config.parameters["scorer_root"].string_value = str(ROOT)
    config.parameters["onnx_intra_op_threads"].string_value = str(cpu_threads)
    # The python backend's stub does not inherit PYTHONPATH; model.py adds these itself.
    config.parameters["python_path"].string_value = os.environ.get("PYTHONPATH", "")
    return triton_config.to_text(config)


def generate(src: Path, dst: Path, engines: list[str], *, max_batch: int = 65536, gpu_instances: int = 1,
             cpu_threads: int = 1, compiled: bool = True, compiled_optimize: str = "-O3",
             **options: Any) -> list[str]:
    """Write the engine repository for every model of ``src`` into ``dst``; model names.
    ``compiled``: each version of the C++ backend's models gets its trees compiled by this
    host's compiler (compiled_model.py) with ``compiled_optimize``, which the backend scores
    small requests with.
    ``options``: engine_config's queue_delay_us, cpu_instances, large_engine, small_request_rows,
    cpu_model_threads, cpu_batching."""
    src, dst = src.resolve(), dst.resolve()
    if dst.exists():
        shutil.rmtree(dst)  # generated, never edited: rebuild from scratch
    names: list[str] = []
    for model_dir in sorted(p for p in src.iterdir() if (p / "config.pbtxt").is_file()):
        production = (model_dir / "config.pbtxt").read_text()
        # As the local launcher: a version whose files fail SHA256SUMS (model.tl included) is not served.
        versions = [v for v in model_dir.iterdir()
                    if v.name.isdigit() and (v / "model.onnx").is_file() and local_launcher._verified(v)]
        for engine in engines:
            out = dst / served_name(model_dir.name, engine)
            out.mkdir(parents=True)
            (out / "config.pbtxt").write_text(engine_config(
                production, engine, max_batch=max_batch, gpu_instances=gpu_instances, cpu_threads=cpu_threads,
                **options))
            if engine in (CPP, ROUTED):  # compiled once, copied beside each model's config
                cpp_backend.install(out, cpp_backend.build())
            for version in versions:
                (out / version.name).mkdir()
                if engine not in (CPP, ROUTED):
                    shutil.copy2(HERE / "model.py", out / version.name / "model.py")
                for name in LINKED:
                    if (version / name).is_file():
                        (out / version.name / name).symlink_to(version / name)
                if compiled and engine in (CPP, ROUTED) and (version / "model.tl").is_file():
                    library = compiled_model.build(version / "model.tl", optimize=compiled_optimize)
                    (out / version.name / compiled_model.LIBRARY).symlink_to(library)
            names.append(out.name)
    return names


def serve(src: Path, workdir: Path, engines: list[str], *, grpc_port: int = 8001, http_port: int = 8000,
          metrics_port: int = 8002, timeout_s: float = 300.0, **options: Any) -> int:
    """Generate the repository (``options``: generate's), start tritonserver on it, wait
    until ready; its pid."""
    workdir = workdir.resolve()
    repository = workdir / "gpu-repository"
    generate(src, repository, engines, **options)
    # The local launcher mirrors a production repository as onnxruntime shims; give it an
    # empty one and pass the engine repository as a second --model-repository. It lives in
    # the workdir: a temporary directory per start outlived every server.
    empty = workdir / "empty-repository"
    empty.mkdir(parents=True, exist_ok=True)
    pid: int = local_launcher.serve(
        empty, workdir, grpc_port=grpc_port, http_port=http_port, metrics_port=metrics_port,
        extra_args=(f"--model-repository={repository}",
                    # 65536 rows x 90 features is 24 MB: grow the stub's shm in big steps.
                    "--backend-config=python,shm-growth-byte-size=67108864",
                    "--backend-config=python,stub-timeout-seconds=300",  # CUDA start-up at load
                    # GPU inputs/outputs of the python backend pass through this pool.
                    "--cuda-memory-pool-byte-size=0:1073741824"),
    )
    local_launcher.wait(workdir, timeout_s=timeout_s)
    return pid


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("generate", "serve", "stop"):
        cmd = sub.add_parser(name)
        if name == "generate":
            cmd.add_argument("--out", type=Path, required=True)
        else:
            cmd.add_argument("--workdir", type=Path, default=Path("var/triton-gpu"))
        if name == "stop":
            continue
        cmd.add_argument("--repository", type=Path, default=Path("model_repository"))
        cmd.add_argument("--engines", default=f"{ROUTED},nvforest",
                         help=f"comma-separated, of {', '.join(ENGINES)} (default: {ROUTED},nvforest, a GPU host)")
        cmd.add_argument("--max-batch", type=int, default=65536)
        cmd.add_argument("--gpu-instances", type=int, default=triton_config.GPU_INSTANCES,
                         help=f"KIND_GPU instances of each nvForest model (default {triton_config.GPU_INSTANCES}, "
                              "the GPU host's production count)")
        cmd.add_argument("--cpu-instances", type=int, default=2,
                         help=f"KIND_CPU instances of each {CPP} model (default 2)")
        cmd.add_argument("--cpu-threads", type=int, default=os.cpu_count() or 1,
                         help="intra-op threads of the python-backend CPU engines (default: all cores)")
        cmd.add_argument("--cpu-model-threads", type=int, default=triton_config.CPU_MODEL_THREADS,
                         help=f"Treelite threads per call of the C++ backend ({CPP}, {ROUTED}; default "
                              f"{triton_config.CPU_MODEL_THREADS}; batches under 8 rows use one)")
        cmd.add_argument("--cpu-batching", choices=("on", "off"),
                         default="on" if triton_config.CPU_MODEL_BATCHING else "off",
                         help=f"a dynamic batcher in front of the {CPP} and {ROUTED} models (default: "
                              "off, each request scored alone; docs/gpu-serving.md, run 12)")
        cmd.add_argument("--compiled", choices=("on", "off"), default="on",
                         help=f"compile each version's trees (tl2cgen, this host's C compiler) for the {CPP} and "
                              f"{ROUTED} models to score small requests with (default on; off: Treelite's GTIL; "
                              "docs/gpu-serving.md, run 13)")
        cmd.add_argument("--compiled-optimize", choices=("O3", "O2", "Os"), default="O3",
                         help="the C compiler's -O level for the compiled trees (default O3, tl2cgen's; "
                              "the scorer's in-process engine uses Os)")
        cmd.add_argument("--queue-delay-us", type=int, default=None, help="default: the production config's")
        cmd.add_argument("--large-engine", default="nvforest",
                         help=f"the engine {ROUTED!r} forwards large requests to (default nvforest)")
        cmd.add_argument("--small-request-rows", type=int, default=triton_config.SMALL_REQUEST_ROWS,
                         help=f"rows from which {ROUTED!r} forwards a request (default "
                              f"{triton_config.SMALL_REQUEST_ROWS}, the measured break-even)")
    serve_cmd = sub.choices["serve"]
    for flag, default in (("grpc-port", 8001), ("http-port", 8000), ("metrics-port", 8002)):
        serve_cmd.add_argument(f"--{flag}", type=int, default=default)
    serve_cmd.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    if args.command == "stop":
        print("stopped" if local_launcher.stop(args.workdir) else "not running")
        return
    engines = args.engines.split(",")
    sizes = {"max_batch": args.max_batch, "gpu_instances": args.gpu_instances, "cpu_threads": args.cpu_threads,
             "queue_delay_us": args.queue_delay_us, "cpu_instances": args.cpu_instances,
             "large_engine": args.large_engine, "small_request_rows": args.small_request_rows,
             "cpu_model_threads": args.cpu_model_threads, "cpu_batching": args.cpu_batching == "on",
             "compiled": args.compiled == "on", "compiled_optimize": f"-{args.compiled_optimize}"}
    if args.command == "generate":
        print("generated:", ", ".join(generate(args.repository, args.out, engines, **sizes)))
        return
    started = time.monotonic()
    pid = serve(args.repository, args.workdir, engines, grpc_port=args.grpc_port, http_port=args.http_port,
                metrics_port=args.metrics_port, timeout_s=args.timeout, **sizes)
    print(f"tritonserver pid {pid} ready in {time.monotonic() - started:.2f}s (grpc :{args.grpc_port})")


if __name__ == "__main__":
    main()
