"""deploy/gpu's model repository on a real tritonserver, for the GPU-serving tests.

    with gpu_repository_server(workdir, ["treelite-cpp", "treelite"], max_batch=4096) as url:
        ...  # url: the server's gRPC address

The launcher (deploy/gpu/launch.py) exits on a failed start; this turns that into a test
failure that shows the end of the server's log, and always stops the server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from deploy.gpu import launch as deploy_gpu
from deploy.gpu import transports
from deploy.local import triton as local_triton
from tests.support import markers
from tests.support.kafka import free_ports
from tests.support.paths import MODEL_REPOSITORY


@contextlib.contextmanager
def gpu_repository_server(workdir: Path, engines: list[str], *, repository: Path = MODEL_REPOSITORY,
                          timeout_s: float = 120.0, **sizes: Any) -> Iterator[str]:
    """Serve ``repository``'s models once per engine from ``workdir``; yields the gRPC url.
    ``sizes``: deploy_gpu.serve's max_batch, gpu_instances, cpu_threads, queue_delay_us."""
    markers.require("triton", "the GPU model repository's tritonserver started")
    grpc_port, http_port, metrics_port = free_ports(3)
    try:
        deploy_gpu.serve(repository, workdir, engines, grpc_port=grpc_port, http_port=http_port,
                         metrics_port=metrics_port, timeout_s=timeout_s, **sizes)
    except SystemExit as exc:
        log = workdir / "tritonserver.log"
        pytest.fail(f"tritonserver failed: {exc}\n{log.read_text()[-3000:] if log.is_file() else ''}")
    try:
        yield f"127.0.0.1:{grpc_port}"
    finally:
        local_triton.stop(workdir)


def infer_once(url: str, model: str, transport: str, x: npt.NDArray[np.float32], tag: str) -> Any:
    """One request of ``x``'s rows to ``model`` through the bench's client transport (gRPC,
    system or CUDA shared memory), its regions released afterwards: numpy scores, CuPy for
    the cudashm-gpu transport."""
    t = transports.Transport(url, model, transport, len(x), x.shape[1], tag)
    try:
        return t.infer(x)
    finally:
        t.close()
