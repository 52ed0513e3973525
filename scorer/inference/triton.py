"""Triton Inference Server backend over asyncio gRPC (tritonclient.grpc.aio).

All of tritonclient stays behind :class:`TritonBackend`: callers see numpy arrays and the
scorer's own errors. gRPC status codes that mean "the server is not there right now"
(UNAVAILABLE, DEADLINE_EXCEEDED, ...; and, when scoring, NOT_FOUND: the model or version
is not loaded yet) become :class:`BackendUnavailable` (retriable: the pipeline falls back
to in-process ONNX Runtime, or holds the batch and retries); every other server error on
the scoring path becomes :class:`InferenceError`, and on the model-control path
:class:`ModelError`.

Model control assumes ``--model-control-mode=explicit``. Triton loads a model with the
version policy of its config; to serve one given version, :meth:`TritonBackend.load_model`
reloads the model with the served config and a ``specific`` version policy (the versions
already served plus the new one), so a rollout never drops the version in use.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Mapping
from pathlib import Path
from ssl import create_default_context
from typing import Any, TypeVar

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from scorer.errors import BackendUnavailable, InferenceError, ModelError, ScorerError
from scorer.inference.base import INPUT_NAME, OUTPUT_NAME, FloatMatrix, FloatVector, InferenceBackend, ModelRef
from scorer.tls import handshake_refusal

T = TypeVar("T")

# Codes after which the same request may succeed later, against a (re)started server.
_UNAVAILABLE_CODES = frozenset(
    {"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED", "StatusCode.CANCELLED"}
)
# Scoring also waits out NOT_FOUND, "unknown model/version": a restarted Triton loads its
# config's versions, and the lifecycle's reconcile loads the one in use back (model control
# keeps NOT_FOUND an error: there it means a version the repository does not have).
_SCORING_UNAVAILABLE_CODES = _UNAVAILABLE_CODES | {"StatusCode.NOT_FOUND"}
_MAX_MESSAGE = 2**31 - 1  # tritonclient's own default: large batches are one message


class TritonBackend(InferenceBackend):
    """The InferenceBackend protocol against a Triton server's gRPC endpoint."""

    name = "triton"

    def __init__(
        self,
        url: str = "127.0.0.1:8001",
        models: list[ModelRef] | None = None,
        *,
        timeout_s: float = 2.0,
        load_timeout_s: float = 120.0,
        max_batch: int | None = None,
        ssl: bool = False,
        root_certificates: str | None = None,
        private_key: str | None = None,
        certificate_chain: str | None = None,
        headers: Mapping[str, str] | None = None,
        max_reconnect_backoff_ms: int = 1000,
    ) -> None:
        """``models``, if given, must be ready for :meth:`start` to succeed.
        ``timeout_s`` bounds every scoring and health call (a dead server fails fast);
        ``load_timeout_s`` bounds model loads, which start a backend process per instance.
        ``max_batch`` caps rows per request below the model's ``max_batch_size``: larger
        inputs are split into concurrent requests, which Triton's dynamic batcher
        may regroup. TLS options pass through to tritonclient (file paths)."""
        self.url = url
        self._models = list(models or [])
        self._timeout_s = timeout_s
        self._load_timeout_s = load_timeout_s
        self._max_batch = max_batch
        self._ssl = {
            "ssl": ssl,
            "root_certificates": root_certificates,
            "private_key": private_key,
            "certificate_chain": certificate_chain,
        }
        self._headers = dict(headers) if headers else None
        self._backoff_ms = max_reconnect_backoff_ms
        self._client: Any = None
        self._batch_limits: dict[str, int] = {}

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._client is None:
            # Created here, not in __init__: a grpc.aio channel belongs to the running loop.
            self._client = grpcclient.InferenceServerClient(
                self.url, channel_args=self._channel_args(), **self._ssl
            )
        try:
            live = await self._call(self._rpc().is_server_live(**self._opts()))
        except BackendUnavailable as exc:
            reason = await self._tls_refusal()
            if reason is None:
                raise
            raise BackendUnavailable(f"{exc}; {reason}") from None
        if not live:
            raise BackendUnavailable(f"triton at {self.url} is not live")
        # Server readiness is strict in Triton: one failed load of any model makes it
        # "not ready" for good. So when we know which models we need, ask about those.
        for model in self._models:
            if not await self.ready(model):
                raise BackendUnavailable(f"triton at {self.url}: {model.name!r} not ready")
        if not self._models and not await self._call(self._rpc().is_server_ready(**self._opts())):
            raise BackendUnavailable(f"triton at {self.url} is up but not ready")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def _tls_refusal(self) -> str | None:
        """Why Triton refuses this client's TLS, or None: gRPC reports a refused client
        certificate as "Socket closed" (scorer/tls.py)."""
        host, _, port = self.url.rpartition(":")
        if not self._ssl["ssl"] or not port.isdigit():
            return None
        root, key, chain = (self._ssl[k] for k in ("root_certificates", "private_key", "certificate_chain"))
        context = create_default_context(cafile=str(root) if root else None)
        if chain:
            context.load_cert_chain(str(chain), str(key) if key else None)
        context.set_alpn_protocols(["h2"])  # without it a gRPC server hangs up on anyone
        return await handshake_refusal(
            host.strip("[]"), int(port), context, client_certificate=Path(str(chain)) if chain else None
        )

    def _channel_args(self) -> list[tuple[str, int]]:
        keepalive = grpcclient.KeepAliveOptions()
        return [
            ("grpc.max_send_message_length", _MAX_MESSAGE),
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
            ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
            # gRPC's default reconnect backoff grows to 120 s: after a Triton restart the
            # channel would keep failing long after the server is back. Cap it.
            ("grpc.initial_reconnect_backoff_ms", min(100, self._backoff_ms)),
            ("grpc.min_reconnect_backoff_ms", min(100, self._backoff_ms)),
            ("grpc.max_reconnect_backoff_ms", self._backoff_ms),
        ]

    # -- scoring -----------------------------------------------------------------------

    async def ready(self, model: ModelRef) -> bool:
        try:
            return bool(
                await self._call(
                    self._rpc().is_model_ready(model.name, model.version, **self._opts())
                )
            )
        except ScorerError:
            return False

    async def infer(self, model: ModelRef, features: FloatMatrix) -> FloatVector:
        matrix = np.ascontiguousarray(features, dtype=np.float32)
        if matrix.ndim != 2:
            raise InferenceError(f"features must be [batch, n_features], got {matrix.shape}")
        rows = matrix.shape[0]
        if rows == 0:
            return np.empty(0, dtype=np.float32)
        step = await self._batch_limit(model.name)
        if rows <= step:
            return await self._infer_one(model, matrix)
        parts = await asyncio.gather(
            *(self._infer_one(model, matrix[i : i + step]) for i in range(0, rows, step))
        )
        return np.concatenate(parts)

    async def _infer_one(self, model: ModelRef, matrix: FloatMatrix) -> FloatVector:
        tensor = grpcclient.InferInput(INPUT_NAME, list(matrix.shape), "FP32")
        tensor.set_data_from_numpy(matrix)
        result = await self._call(
            self._rpc().infer(
                model.name,
                [tensor],
                model_version=model.version,
                outputs=[grpcclient.InferRequestedOutput(OUTPUT_NAME)],
                **self._opts(),
            ),
            unavailable=_SCORING_UNAVAILABLE_CODES,
        )
        probabilities = result.as_numpy(OUTPUT_NAME)
        if probabilities is None or probabilities.shape != (matrix.shape[0], 2):
            shape = None if probabilities is None else probabilities.shape
            raise InferenceError(f"{model.name}: {OUTPUT_NAME} has shape {shape}")
        return np.ascontiguousarray(probabilities[:, 1], dtype=np.float32)

    async def _batch_limit(self, name: str) -> int:
        """Rows per request: the model's max_batch_size (cached), capped by max_batch."""
        if name not in self._batch_limits:
            config = await self._config(name, unavailable=_SCORING_UNAVAILABLE_CODES)
            limit = int(config.get("max_batch_size", 0)) or 2**31 - 1
            self._batch_limits[name] = min(limit, self._max_batch or limit)
        return self._batch_limits[name]

    # -- model control (explicit mode) -------------------------------------------------

    async def model_versions(self, name: str) -> dict[str, str]:
        """Version -> state ("READY", "UNAVAILABLE", "LOADING", ...) known to the server."""
        index = await self._call(
            self._rpc().get_model_repository_index(as_json=True, **self._opts())
        )
        found = {
            str(m.get("version", "")): str(m.get("state", ""))
            for m in index.get("models", [])
            if m.get("name") == name and m.get("version")
        }
        return dict(sorted(found.items(), key=lambda kv: int(kv[0])))

    async def load_model(self, name: str, version: str = "") -> None:
        """Load ``name`` (its config's version policy), or make sure ``version`` is served.

        Re-reads the repository: after publishing and syncing a version, this picks it up.
        Raises ModelError when the server cannot load it.
        """
        self._batch_limits.pop(name, None)
        served = await self._ready_versions(name)
        if not version or not served:
            await self._control(self._rpc().load_model(name, **self._control_opts()), name)
            served = await self._ready_versions(name)
        if version and version not in served:
            await self._load_specific(name, served | {version})
            if version not in await self._ready_versions(name):
                raise ModelError(f"triton could not load {name!r} version {version!r}")

    async def unload_model(self, name: str, version: str = "") -> None:
        """Unload the whole model, or stop serving one version and keep the others."""
        self._batch_limits.pop(name, None)
        remaining = (await self._ready_versions(name)) - {version} if version else set()
        if remaining:
            await self._load_specific(name, remaining)
        else:
            await self._control(self._rpc().unload_model(name, **self._control_opts()), name)

    async def _load_specific(self, name: str, versions: set[str]) -> None:
        config = await self._config(name)
        config["version_policy"] = {"specific": {"versions": sorted(int(v) for v in versions)}}
        load = self._rpc().load_model(name, config=json.dumps(config), **self._control_opts())
        await self._control(load, name)

    async def _ready_versions(self, name: str) -> set[str]:
        return {v for v, state in (await self.model_versions(name)).items() if state == "READY"}

    async def _config(self, name: str, *, unavailable: frozenset[str] = _UNAVAILABLE_CODES) -> dict[str, Any]:
        response = await self._call(
            self._rpc().get_model_config(name, as_json=True, **self._opts()), unavailable=unavailable
        )
        config: dict[str, Any] = response["config"]
        return config

    async def _control(self, call: Awaitable[T], name: str) -> T:
        try:
            return await self._call(call)
        except BackendUnavailable:
            raise
        except InferenceError as exc:
            raise ModelError(f"{name}: {exc}") from exc

    # -- plumbing ----------------------------------------------------------------------

    def _rpc(self) -> Any:
        if self._client is None:
            raise BackendUnavailable("TritonBackend used before start() or after close()")
        return self._client

    def _opts(self) -> dict[str, Any]:
        return {"headers": self._headers, "client_timeout": self._timeout_s}

    def _control_opts(self) -> dict[str, Any]:
        return {"headers": self._headers, "client_timeout": self._load_timeout_s}

    async def _call(self, call: Awaitable[T], *, unavailable: frozenset[str] = _UNAVAILABLE_CODES) -> T:
        """Await a tritonclient call, translating its exceptions into the scorer's: the
        ``unavailable`` status codes into :class:`BackendUnavailable` (retriable)."""
        try:
            return await call
        except InferenceServerException as exc:
            status = str(exc.status() or "")
            message = f"triton {self.url}: {exc.message()} ({status or 'client error'})"
            if status in unavailable:
                raise BackendUnavailable(message) from None
            raise InferenceError(message) from None
