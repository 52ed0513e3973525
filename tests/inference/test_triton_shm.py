"""SharedMemoryTritonBackend against the real tritonserver (pytriton's build): the same scores
as plain gRPC, several requests in flight on their own regions, oversize requests over gRPC,
regions released on close, and registrations restored after a server restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from scorer.config import Settings
from scorer.inference.base import ModelRef
from scorer.inference.failover import FailoverBackend
from scorer.inference.triton import TritonBackend
from scorer.inference.triton_shm import SharedMemoryTritonBackend
from scorer.service.build import build_backend
from tests.inference.conftest import N_FEATURES
from tests.support.models import TinyModel, synthetic_data
from tests.support.triton import TritonServer

TINY = ModelRef("tiny", "1")


async def _registered(server: TritonServer) -> list[str]:
    probe = TritonBackend(server.grpc_url)
    await probe.start()
    status = await probe._rpc().get_system_shared_memory_status(as_json=True)
    await probe.close()
    return sorted(status.get("regions", {}))


async def test_scores_equal_plain_grpc_with_requests_in_flight(
    server: TritonServer, repository: tuple[Path, TinyModel],
) -> None:
    _, tiny = repository
    features, _ = synthetic_data(3_000, N_FEATURES, seed=5)
    backend = SharedMemoryTritonBackend(server.grpc_url, [TINY], max_batch=250, max_in_flight=3)
    await backend.start()
    try:
        # 12 requests of 250 rows at once, on at most 3 region pairs, reused in turn.
        scores = await backend.infer(TINY, features)
        np.testing.assert_allclose(scores, tiny.expected(features), atol=1e-6, rtol=0)
        assert backend.shm_requests == 12 and len(backend._pairs) == 3
        assert len(await _registered(server)) == 6  # in and out per pair
        both = await asyncio.gather(backend.infer(TINY, features[:7]), backend.infer(TINY, features[7:20]))
        np.testing.assert_allclose(np.concatenate(both), tiny.expected(features[:20]), atol=1e-6, rtol=0)
    finally:
        await backend.close()
    assert await _registered(server) == []


async def test_request_larger_than_a_region_goes_over_grpc(
    server: TritonServer, repository: tuple[Path, TinyModel],
) -> None:
    _, tiny = repository
    features, _ = synthetic_data(200, N_FEATURES, seed=6)
    backend = SharedMemoryTritonBackend(server.grpc_url, [TINY], region_bytes=100 * N_FEATURES * 4)
    await backend.start()
    try:
        np.testing.assert_allclose(await backend.infer(TINY, features), tiny.expected(features), atol=1e-6, rtol=0)
        assert backend.shm_requests == 0
        np.testing.assert_allclose(await backend.infer(TINY, features[:100]), tiny.expected(features[:100]),
                                   atol=1e-6, rtol=0)
        assert backend.shm_requests == 1
    finally:
        await backend.close()


async def test_registrations_come_back_after_a_restart(
    server: TritonServer, repository: tuple[Path, TinyModel],
) -> None:
    _, tiny = repository
    features, _ = synthetic_data(50, N_FEATURES, seed=7)
    backend = SharedMemoryTritonBackend(server.grpc_url, [TINY], timeout_s=10.0)
    await backend.start()
    try:
        await backend.infer(TINY, features)
        await asyncio.to_thread(server.restart)
        for _ in range(100):  # the channel reconnects on its own; wait for the model
            if await backend.ready(TINY):
                break
            await asyncio.sleep(0.1)
        np.testing.assert_allclose(await backend.infer(TINY, features), tiny.expected(features), atol=1e-6, rtol=0)
        assert backend.shm_requests == 2 and len(await _registered(server)) == 2
    finally:
        await backend.close()


def test_the_setting_chooses_the_backend() -> None:
    plain = build_backend(Settings(), {})
    inference = Settings().inference.model_copy(update={"triton_shared_memory": True, "triton_max_in_flight": 4})
    shared = build_backend(Settings(inference=inference), {})
    assert isinstance(plain, FailoverBackend) and isinstance(shared, FailoverBackend)
    assert type(plain.primary) is TritonBackend
    assert isinstance(shared.primary, SharedMemoryTritonBackend) and shared.primary._max_in_flight == 4
