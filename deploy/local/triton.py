#!/usr/bin/env python3
"""Run the real Triton Inference Server locally, serving model_repository/ through a shim.

    python deploy/local/triton.py serve --repository model_repository --workdir var/triton \
        [--grpc-port 8001 --http-port 8000 --metrics-port 8002] [--foreground]
    python deploy/local/triton.py wait|stop --workdir var/triton
    python deploy/local/triton.py sync --repository model_repository --workdir var/triton

``tritonserver`` comes from the nvidia-pytriton wheel: a CPU-only 2.5x build with only the
python backend. So the launcher mirrors the production repository into ``<workdir>/repository``:
same names, tensors, batching, version policy (the config's python-backend variant, see
scorer/inference/triton_config.py), and per version a python-backend ``model.py`` (a copy
of deploy/local/shim_model.py) running the very same ``model.onnx`` in onnxruntime.
Protocol, batching and model files are real; only the backend is a stand-in.

It mirrors only versions whose SHA256SUMS verify (the scorer's own check, so the scorer
package must be importable): ``serve`` loads every mirrored model at start
(``--load-model=*``), before any scorer could verify it, so a tampered or unverified version
must never reach the shim repository. With trusted keys (``--trusted-keys DIR``, default
``$SCORER_SIGNING__TRUSTED_KEYS``) a version must also be signed by one of them
(scorer/supply/signing.py). A version that fails is left out with a line on stderr; a model
left with no version is left out whole.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes.util
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

STATE = "state.json"  # pid and ports of the server started from this workdir
LOG = "tritonserver.log"
PY = f"{sys.version_info.major}.{sys.version_info.minor}"

# The python-backend model of every mirrored version (a real module: linted and type-checked).
SHIM_MODEL = Path(__file__).resolve().with_name("shim_model.py")


def _pytriton_dir() -> Path:
    # find_spec, not import: importing pytriton pulls in its whole client stack.
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("error: nvidia-pytriton is not installed here (pip install nvidia-pytriton)")
    return Path(next(iter(spec.submodule_search_locations)))


def _stub() -> Path:
    return _pytriton_dir() / "tritonserver/python_backend_stubs" / PY / "triton_python_backend_stub"


def check_prerequisites() -> None:
    if ctypes.util.find_library(f"python{PY}") is None:
        sys.exit(
            f"error: libpython{PY}.so not found: the python backend stub links the system "
            f"libpython. On Debian/Ubuntu: apt-get install libpython{PY}"
        )
    if not _stub().is_file():
        sys.exit(f"error: pytriton ships no python backend stub for Python {PY} ({_stub()})")


def _write_if_changed(path: Path, text: str) -> None:
    # Triton decides whether a model changed from file mtimes; don't touch what is equal.
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _verified(version_dir: Path) -> bool:
    """SHA256SUMS of one production version checked (and its signature, when trusted keys
    are configured), or why not on stderr."""
    from scorer.errors import IntegrityError
    from scorer.inference.repository import verify_checksums

    try:
        verify_checksums(version_dir)
    except IntegrityError as exc:
        print(f"triton.py: not serving {version_dir}: {exc}", file=sys.stderr)
        return False
    return True


def sync_repository(src: Path, dst: Path) -> list[str]:
    """Mirror the verified versions of ``src`` (production repository) into ``dst`` (shim
    repository); model names. Run it after publishing a version, then load the model:
    explicit mode re-reads it. ``model.onnx`` is a symlink to the file just verified: the
    directory permissions (deploy/SECURITY.md) keep it from changing afterwards."""
    from scorer.inference import triton_config

    src, dst = src.resolve(), dst.resolve()
    dst.mkdir(parents=True, exist_ok=True)
    models: list[str] = []  # mirrored model names, returned
    shim_model = SHIM_MODEL.read_text()
    for model_dir in sorted(p for p in src.iterdir() if (p / "config.pbtxt").is_file()):
        versions = {
            v.name for v in model_dir.iterdir()
            if v.is_dir() and v.name.isdigit() and (v / "model.onnx").is_file() and _verified(v)
        }
        if not versions:  # nothing Triton may load: no model at all (its stale mirror goes below)
            continue
        out = dst / model_dir.name
        out.mkdir(exist_ok=True)
        shim = triton_config.python_backend(triton_config.read(model_dir / triton_config.CONFIG))
        _write_if_changed(out / triton_config.CONFIG, triton_config.to_text(shim))
        for version in versions:
            vdir = out / version
            vdir.mkdir(exist_ok=True)
            _write_if_changed(vdir / "model.py", shim_model)
            link, target = vdir / "model.onnx", model_dir / version / "model.onnx"
            if not (link.is_symlink() and Path(os.readlink(link)) == target):
                link.unlink(missing_ok=True)
                link.symlink_to(target)  # the bytes just verified, no second copy
        for stale in out.iterdir():
            if stale.is_dir() and stale.name.isdigit() and stale.name not in versions:
                shutil.rmtree(stale)
        models.append(model_dir.name)
    for stale in dst.iterdir():
        if stale.is_dir() and stale.name not in models:
            shutil.rmtree(stale)
    return models


def _prepare_backends(workdir: Path) -> Path:
    """backends/python with the stub for this interpreter, as pytriton lays it out."""
    dist = _pytriton_dir() / "tritonserver" / "backends" / "python"
    backend = workdir / "backends" / "python"
    backend.mkdir(parents=True, exist_ok=True)
    for source in (dist / "libtriton_python.so", dist / "triton_python_backend_utils.py", _stub()):
        target = backend / source.name
        if not target.is_file() or target.stat().st_size != source.stat().st_size:
            shutil.copy2(source, target)  # copies: the backend resolves the stub next to itself
    return backend.parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    libs = str(_pytriton_dir().parent / "nvidia_pytriton.libs")
    env["LD_LIBRARY_PATH"] = ":".join(p for p in (env.get("LD_LIBRARY_PATH"), libs) if p)
    # The stub embeds libpython and derives sys.prefix from the python3 found on PATH:
    # the venv's bin/ must come first or model.py cannot import numpy/onnxruntime.
    env["PATH"] = f"{Path(sys.prefix) / 'bin'}:{env.get('PATH', '')}"
    return env


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):  # our own child (tests): reap it
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (someone else's child) still answers kill(0); treat it as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().split(") ")[-1].startswith("Z"))


def _state(workdir: Path) -> dict[str, Any] | None:
    return json.loads((workdir / STATE).read_text()) if (workdir / STATE).is_file() else None


def serve(repository: Path, workdir: Path, *, grpc_port: int = 8001, http_port: int = 8000,
          metrics_port: int = 8002, host: str = "127.0.0.1", foreground: bool = False,
          log_verbose: int = 0, extra_args: tuple[str, ...] = ()) -> int:
    """Start tritonserver (detached unless ``foreground``); returns its pid. ``extra_args``
    are more tritonserver flags (e.g. ``--grpc-use-ssl=true --grpc-server-cert=...``)."""
    check_prerequisites()
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if (state := _state(workdir)) and _alive(int(state["pid"])):
        sys.exit(f"error: tritonserver already running from {workdir} (pid {state['pid']})")
    sync_repository(repository, shim_repo := workdir / "repository")
    cmd = [
        str(_pytriton_dir() / "tritonserver" / "bin" / "tritonserver"),
        f"--model-repository={shim_repo}",
        "--model-control-mode=explicit", "--load-model=*",  # the scorer loads/unloads later
        f"--backend-directory={_prepare_backends(workdir)}",
        f"--cache-directory={_pytriton_dir() / 'tritonserver' / 'caches'}",
        f"--grpc-address={host}", f"--grpc-port={grpc_port}",
        f"--http-address={host}", f"--http-port={http_port}",
        f"--metrics-address={host}", f"--metrics-port={metrics_port}",
        "--exit-timeout-secs=5", f"--log-verbose={log_verbose}",
        # Unique shm prefix: two servers on one host (dev + tests) must not share regions.
        f"--backend-config=python,shm-region-prefix-name=scorer{secrets.token_hex(4)}",
        "--backend-config=python,shm-default-byte-size=4194304",
        "--backend-config=python,shm-growth-byte-size=1048576",
        *extra_args,
    ]
    ports = {"grpc_port": grpc_port, "http_port": http_port, "metrics_port": metrics_port}
    if foreground:
        (workdir / STATE).write_text(json.dumps({"pid": os.getpid(), "host": host, **ports}))
        os.execve(cmd[0], cmd, _env())  # same pid: signals reach tritonserver directly
    with (workdir / LOG).open("ab") as log:
        # Own session: Ctrl-C in the caller's terminal doesn't reach it; stop() does.
        proc = subprocess.Popen(cmd, env=_env(), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    (workdir / STATE).write_text(json.dumps({"pid": proc.pid, "host": host, **ports}))
    return proc.pid


def stop(workdir: Path, *, timeout_s: float = 15.0) -> bool:
    """SIGINT (graceful: drains in-flight requests, stops stubs), then SIGKILL its group."""
    state = _state(workdir.resolve())
    if state is None or not _alive(pid := int(state["pid"])):
        return False
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)  # its own session: only tritonserver and its stubs
    (workdir.resolve() / STATE).unlink(missing_ok=True)
    return True


def wait(workdir: Path, *, timeout_s: float = 60.0) -> float:
    """Poll HTTP readiness until the server is ready; seconds waited. Exits if it died."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if (state := _state(workdir.resolve())) is not None:
            url = f"http://{state['host']}:{state['http_port']}/v2/health/ready"
            try:
                with urllib.request.urlopen(url, timeout=1):  # non-2xx raises HTTPError
                    return time.monotonic() - start
            except OSError:
                if not _alive(int(state["pid"])):
                    sys.exit(f"error: tritonserver exited; see {workdir / LOG}")
        time.sleep(0.05)
    sys.exit(f"error: tritonserver not ready after {timeout_s:.0f}s; see {workdir / LOG}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "sync", "stop", "wait"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--workdir", type=Path, default=Path("var/triton"))
        if name in ("serve", "sync"):
            cmd.add_argument("--repository", type=Path, default=Path("model_repository"))
            cmd.add_argument("--trusted-keys", type=Path, default=None,
                             help="directory of *.pub keys: serve only versions signed by one of them "
                                  "(default: $SCORER_SIGNING__TRUSTED_KEYS; unset: unsigned versions too)")
        if name in ("serve", "wait"):
            cmd.add_argument("--timeout", type=float, default=60.0)
    serve_cmd = sub.choices["serve"]
    for flag, default in (("grpc-port", 8001), ("http-port", 8000), ("metrics-port", 8002)):
        serve_cmd.add_argument(f"--{flag}", type=int, default=default)
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--log-verbose", type=int, default=0)
    serve_cmd.add_argument("--foreground", action="store_true")
    args = parser.parse_args(argv)
    if getattr(args, "trusted_keys", None) is not None:
        # The same variable the scorer reads: the check in _verified is the scorer's own.
        os.environ["SCORER_SIGNING__TRUSTED_KEYS"] = str(args.trusted_keys.resolve())
    if args.command == "sync":
        print("synced:", ", ".join(sync_repository(args.repository, args.workdir / "repository")))
    elif args.command == "stop":
        print("stopped" if stop(args.workdir) else "not running")
    elif args.command == "wait":
        print(f"ready after {wait(args.workdir, timeout_s=args.timeout):.2f}s")
    else:
        started = time.monotonic()
        options = ("grpc_port", "http_port", "metrics_port", "host", "foreground", "log_verbose")
        pid = serve(args.repository, args.workdir, **{k: getattr(args, k) for k in options})
        wait(args.workdir, timeout_s=args.timeout)
        print(f"tritonserver pid {pid} ready in {time.monotonic() - started:.2f}s "
              f"(grpc {args.host}:{args.grpc_port}, log {args.workdir / LOG})")


if __name__ == "__main__":
    main()
