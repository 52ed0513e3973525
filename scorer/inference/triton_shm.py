"""TritonBackend over system shared memory, for a Triton on the same host (issue 15, item 4).

Plain gRPC copies every request's features into a protobuf message and the server copies
them out again; for a 1,400-row EDR batch that is 1.3 MB each way per request. With
``SCORER_INFERENCE__TRITON_SHARED_MEMORY=true`` the scorer writes the rows into a POSIX
shared-memory region it registered with the server, and reads the scores from another: the
gRPC message carries only the region names. It only works when scorer and Triton share a
host (and ``/dev/shm``); it is a setting, off by default.

Each request in flight holds its own pair of regions (input, output), taken from a pool
that grows to ``max_in_flight`` pairs; more concurrent requests wait for a pair, so the
scorer keeps that many requests in flight (the pipeline scores kinds concurrently, and
``infer`` splits a batch larger than the model's ``max_batch_size`` into concurrent
requests). A request larger than a region goes over plain gRPC. A restarted Triton has
forgotten the registrations: the request that finds out registers the pool again and
retries once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import tritonclient.grpc.aio as grpcclient
import tritonclient.utils.shared_memory as shm

from scorer.errors import InferenceError
from scorer.inference.base import INPUT_NAME, OUTPUT_NAME, FloatMatrix, FloatVector, ModelRef
from scorer.inference.triton import _SCORING_UNAVAILABLE_CODES, TritonBackend

DEFAULT_REGION_BYTES = 16 << 20  # 8,192 rows x 226 EDR features x 4 bytes = 7.4 MB, twice over


@dataclass
class _Pair:
    name: str  # region names: <name>_in, <name>_out; keys /<name>_in, /<name>_out
    inp: Any
    out: Any


class SharedMemoryTritonBackend(TritonBackend):
    name = "triton"  # the same server and models: alerts name the backend as plain gRPC does

    def __init__(self, url: str = "127.0.0.1:8001", models: list[ModelRef] | None = None, *,
                 region_bytes: int = DEFAULT_REGION_BYTES, max_in_flight: int = 8, **kwargs: Any) -> None:
        super().__init__(url, models, **kwargs)
        if region_bytes < 8 or max_in_flight < 1:
            raise ValueError("region_bytes must hold one score row and max_in_flight be >= 1")
        self._region_bytes = region_bytes
        self._max_in_flight = max_in_flight
        self._prefix = f"scorer_{os.getpid()}_{id(self):x}"
        self._pairs: list[_Pair] = []
        self._free: asyncio.Queue[_Pair] | None = None
        self._lock: asyncio.Lock | None = None
        self.shm_requests = 0  # requests that went through shared memory (tests, metrics)

    async def close(self) -> None:
        pairs, self._pairs, self._free = self._pairs, [], None
        if self._client is not None:
            for pair in pairs:
                for suffix in ("_in", "_out"):
                    with contextlib.suppress(Exception):  # the server may be gone; the regions go anyway
                        await self._client.unregister_system_shared_memory(pair.name + suffix, **self._opts())
        for pair in pairs:
            shm.destroy_shared_memory_region(pair.inp)
            shm.destroy_shared_memory_region(pair.out)
        await super().close()

    async def _infer_one(self, model: ModelRef, matrix: FloatMatrix) -> FloatVector:
        if matrix.nbytes > self._region_bytes or matrix.shape[0] * 8 > self._region_bytes:
            return await super()._infer_one(model, matrix)  # larger than a region: plain gRPC
        pair = await self._take()
        try:
            try:
                return await self._shm_infer(model, matrix, pair)
            except InferenceError as exc:
                if "shared memory" not in str(exc).lower():
                    raise
                await self._register_all()  # a restarted server forgot the regions
                return await self._shm_infer(model, matrix, pair)
        finally:
            assert self._free is not None
            self._free.put_nowait(pair)

    async def _shm_infer(self, model: ModelRef, matrix: FloatMatrix, pair: _Pair) -> FloatVector:
        rows = matrix.shape[0]
        shm.set_shared_memory_region(pair.inp, [matrix])
        tensor = grpcclient.InferInput(INPUT_NAME, list(matrix.shape), "FP32")
        tensor.set_shared_memory(pair.name + "_in", matrix.nbytes)
        output = grpcclient.InferRequestedOutput(OUTPUT_NAME)
        output.set_shared_memory(pair.name + "_out", rows * 8)
        await self._call(
            self._rpc().infer(model.name, [tensor], model_version=model.version, outputs=[output],
                              **self._opts()),
            unavailable=_SCORING_UNAVAILABLE_CODES,
        )
        probabilities = shm.get_contents_as_numpy(pair.out, np.float32, [rows, 2])
        self.shm_requests += 1
        return np.ascontiguousarray(probabilities[:, 1], dtype=np.float32)  # a copy: the region is reused

    async def _take(self) -> _Pair:
        if self._free is None:
            self._free, self._lock = asyncio.Queue(), asyncio.Lock()
        assert self._lock is not None
        if self._free.empty() and len(self._pairs) < self._max_in_flight:
            async with self._lock:
                if len(self._pairs) < self._max_in_flight:
                    pair = self._create(len(self._pairs))
                    self._pairs.append(pair)
                    await self._register(pair)
                    return pair
        return await self._free.get()

    def _create(self, index: int) -> _Pair:
        name = f"{self._prefix}_{index}"
        inp = shm.create_shared_memory_region(name + "_in", f"/{name}_in", self._region_bytes)
        out = shm.create_shared_memory_region(name + "_out", f"/{name}_out", self._region_bytes)
        return _Pair(name, inp, out)

    async def _register(self, pair: _Pair) -> None:
        for suffix in ("_in", "_out"):
            await self._call(self._rpc().register_system_shared_memory(
                pair.name + suffix, f"/{pair.name}{suffix}", self._region_bytes, **self._opts()))

    async def _register_all(self) -> None:
        assert self._lock is not None
        async with self._lock:
            for pair in self._pairs:
                for suffix in ("_in", "_out"):
                    # One that survived (not a restart after all) is registered already.
                    with contextlib.suppress(Exception):
                        await self._rpc().unregister_system_shared_memory(pair.name + suffix, **self._opts())
                await self._register(pair)
