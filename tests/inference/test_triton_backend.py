"""TritonBackend against the real tritonserver (pytriton's build, python-backend shim).

The server is sync and module-scoped; every async object (gRPC channels) is made inside
its test, so it lives on that test's event loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from scorer.errors import BackendUnavailable, ModelError
from scorer.inference.base import InferenceBackend, ModelRef
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.inference.triton import TritonBackend
from tests.inference.conftest import N_FEATURES
from tests.support.models import TinyModel, build_tiny_model, publish_tiny_model, synthetic_data
from tests.support.triton import TritonServer

TINY = ModelRef("tiny", "1")


async def _until(predicate: Callable[[], Awaitable[bool]], timeout_s: float = 15.0) -> None:
    """Poll an async predicate: model unload and channel reconnect are asynchronous."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout_s}s")


async def test_scores_equal_onnxruntime(
    server: TritonServer, repository: tuple[Path, TinyModel]
) -> None:
    repo, tiny = repository
    features, _ = synthetic_data(10_000, N_FEATURES, seed=11)  # > max_batch_size 8192
    local = OnnxRuntimeBackend(repo, [TINY])
    await local.start()
    expected = await local.infer(TINY, features)
    np.testing.assert_allclose(expected, tiny.expected(features), atol=1e-6)
    for max_batch in (None, 1_000):  # server's 8192 -> 2 requests; 1,000 -> 10 concurrent
        triton = TritonBackend(server.grpc_url, max_batch=max_batch)
        assert isinstance(triton, InferenceBackend)
        await triton.start()
        assert await triton.ready(TINY)
        scores = await triton.infer(TINY, features)
        assert scores.dtype == np.float32 and scores.shape == (10_000,)
        np.testing.assert_allclose(scores, expected, atol=1e-6, rtol=0)
        latest = await triton.infer(ModelRef("tiny"), features[:5])
        np.testing.assert_allclose(latest, expected[:5], atol=1e-6, rtol=0)
        await triton.close()


async def test_unload_then_load(server: TritonServer) -> None:
    triton = TritonBackend(server.grpc_url, [TINY])
    await triton.start()
    await triton.unload_model("tiny")
    assert not await triton.ready(TINY)
    await triton.load_model("tiny")
    assert await triton.ready(TINY)
    assert (await triton.model_versions("tiny")) == {"1": "READY"}
    await triton.close()


async def test_version_rollout_and_retire(
    server: TritonServer, repository: tuple[Path, TinyModel]
) -> None:
    repo, _ = repository
    triton = TritonBackend(server.grpc_url, [TINY])
    await triton.start()
    v2 = build_tiny_model("rollout", "2", n_features=N_FEATURES, seed=2)
    publish_tiny_model(repo, v2)
    server.sync()  # the launcher mirrors the new version into the shim repository
    await triton.load_model("rollout", "2")
    assert await triton.model_versions("rollout") == {"1": "READY", "2": "READY"}
    features, _ = synthetic_data(100, N_FEATURES, seed=4)
    scores = await triton.infer(ModelRef("rollout", "2"), features)
    np.testing.assert_allclose(scores, v2.expected(features), atol=1e-6)
    await triton.unload_model("rollout", "1")  # retire the old version, keep serving v2
    assert not await triton.ready(ModelRef("rollout", "1"))
    assert await triton.ready(ModelRef("rollout", "2"))
    with pytest.raises(ModelError):
        await triton.load_model("rollout", "9")
    await triton.close()


async def test_server_down_then_back(server: TritonServer) -> None:
    triton = TritonBackend(server.grpc_url, [TINY], timeout_s=2.0)
    await triton.start()
    features = np.zeros((4, N_FEATURES), np.float32)
    await triton.infer(TINY, features)
    os.kill(server.pid, signal.SIGSTOP)  # a hung server: only the deadline can answer
    try:
        started = time.monotonic()
        hung = TritonBackend(server.grpc_url, timeout_s=0.3)
        with pytest.raises(BackendUnavailable):
            await hung.start()
        await hung.close()
        print(f"\nBackendUnavailable after {time.monotonic() - started:.2f}s (hung server, 0.3s)")
    finally:
        os.kill(server.pid, signal.SIGCONT)
    server.stop()
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        await triton.infer(TINY, features)
    elapsed = time.monotonic() - started
    print(f"\nBackendUnavailable after {elapsed * 1000:.1f} ms with the server stopped")
    assert elapsed < 10  # bounded by timeout_s, not by gRPC's default reconnect backoff
    assert not await triton.ready(TINY)
    fresh = TritonBackend(server.grpc_url, [TINY])
    with pytest.raises(BackendUnavailable):
        await fresh.start()
    server.restart()
    await _until(lambda: triton.ready(TINY))
    assert (await triton.infer(TINY, features)).shape == (4,)
    await triton.close()
    await fresh.close()


async def test_latency_report(server: TritonServer, repository: tuple[Path, TinyModel]) -> None:
    """Prints latencies; asserts nothing about time (budgets live in benchmarks)."""
    repo, _ = repository
    local = OnnxRuntimeBackend(repo, [TINY])
    triton = TritonBackend(server.grpc_url, [TINY])
    await local.start()
    await triton.start()
    await _until(lambda: triton.ready(TINY))
    backends: list[InferenceBackend] = [local, triton]
    for batch in (1, 1024):
        features, _ = synthetic_data(batch, N_FEATURES, seed=batch)
        for backend in backends:
            runs = 300 if batch == 1 else 100
            for _ in range(20):
                await backend.infer(TINY, features)
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                await backend.infer(TINY, features)
                times.append(time.perf_counter() - t0)
            p50, p99 = np.percentile(times, [50, 99]) * 1e6
            print(f"\n{backend.name:12s} batch {batch:5d}: p50 {p50:8.1f} us  p99 {p99:8.1f} us")
    await triton.close()


async def test_small_calls_are_scored_in_process_while_triton_is_up(
    server: TritonServer, repository: tuple[Path, TinyModel]
) -> None:
    import tritonclient.grpc as grpcclient

    from scorer.inference.failover import FailoverBackend

    def served() -> int:  # Triton's own count of successful requests for tiny
        stats = grpcclient.InferenceServerClient(server.grpc_url).get_inference_statistics("tiny", as_json=True)
        return sum(int(m["inference_stats"]["success"].get("count", 0)) for m in stats["model_stats"])

    repo, tiny = repository
    features, _ = synthetic_data(64, N_FEATURES, seed=5)
    backend = FailoverBackend(TritonBackend(server.grpc_url), OnnxRuntimeBackend(repo, [TINY]), local_below_rows=16)
    await backend.start()
    try:
        before = served()
        small, small_by = await backend.infer_with_source(TINY, features[:15])
        large, large_by = await backend.infer_with_source(TINY, features)
        assert (small_by, large_by) == ("onnxruntime", "triton")

        async def large_counted() -> bool:
            return served() > before

        # Triton counts a request when it releases it, which may come after the client has the
        # response; once the large call is counted, a small one sent before it would be too.
        await _until(large_counted)
        assert served() == before + 1  # Triton never saw the small call
        np.testing.assert_allclose(small, tiny.expected(features[:15]), atol=1e-6, rtol=0)
        np.testing.assert_allclose(large, tiny.expected(features), atol=1e-6, rtol=0)
    finally:
        await backend.close()


def test_small_calls_in_process_need_the_fallback_mode() -> None:
    from scorer.config import Settings
    from scorer.errors import ConfigError
    from scorer.service.build import build_backend

    inference = Settings().inference.model_copy(update={"on_triton_outage": "pause", "in_process_below_rows": 16})
    with pytest.raises(ConfigError, match="on_triton_outage=fallback"):
        build_backend(Settings(inference=inference), {})
