"""A client connection to Triton that sends feature rows and reads scores back, over one of the
transports the GPU study compares (:class:`Transport`): plain gRPC, gRPC with the request
protobuf built directly (``grpc-raw``), system shared memory (``shm``) and CUDA shared memory
(``cudashm``, ``cudashm-pinned``, ``cudashm-gpu``).

Apart from the benchmark (:mod:`deploy.gpu.client_bench`), which times these from threads,
because a transport is how a caller talks to the server, whatever is measured: the GPU tests
send their requests through it too (tests/support/gpu.py). Each owns its shared-memory regions
and gives them back on :meth:`Transport.close`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from deploy.gpu.bench_common import Matrix

# CUDA shared memory, by where the caller's rows are: pageable host memory (tritonclient's own
# copy), page-locked host memory, or already on the GPU (device-to-device into the region).
CUDA_TRANSPORTS = ("cudashm", "cudashm-pinned", "cudashm-gpu")
UNREGISTER_ATTEMPTS = 500  # 10 ms apart: the server releases a finished request long before


class Transport:
    """One client connection (and, for shm, its own regions): one request in flight."""

    def __init__(self, url: str, model: str, kind: str, max_rows: int, n_features: int, tag: str) -> None:
        import tritonclient.grpc as grpcclient

        self.grpc = grpcclient
        self.client = grpcclient.InferenceServerClient(url)
        self.model, self.kind = model, kind
        self.regions: list[tuple[str, Any]] = []
        if kind == "grpc":
            return
        if kind == "grpc-raw":
            import grpc
            from tritonclient.grpc import service_pb2, service_pb2_grpc

            self.pb = service_pb2
            self.channel = grpc.insecure_channel(url)
            self.stub = service_pb2_grpc.GRPCInferenceServiceStub(self.channel)
            return
        if kind == "shm":
            import tritonclient.utils.shared_memory as shm
        elif kind in CUDA_TRANSPORTS:
            import tritonclient.utils.cuda_shared_memory as shm
        else:
            raise ValueError(f"unknown transport {kind!r}")
        self.shm = shm
        for name, size in ((f"in{tag}", max_rows * n_features * 4), (f"out{tag}", max_rows * 2 * 4)):
            if kind == "shm":
                handle = shm.create_shared_memory_region(name, f"/{name}", size)
                self.client.register_system_shared_memory(name, f"/{name}", size)
            else:
                handle = shm.create_shared_memory_region(name, size, 0)
                self.client.register_cuda_shared_memory(name, shm.get_raw_handle(handle), 0, size)
            self.regions.append((name, handle))
        if kind in ("cudashm-pinned", "cudashm-gpu"):
            self._cupy_views(max_rows, n_features)

    def _cupy_views(self, max_rows: int, n_features: int) -> None:
        """CuPy views of this client's mapping of its regions, and pinned host buffers."""
        import cupy
        import cupyx

        (_, in_handle), (_, out_handle) = self.regions
        self.cp = cupy
        self.in_view = cupy.from_dlpack(self.shm.as_shared_memory_tensor(in_handle, "FP32", [max_rows, n_features]))
        self.out_view = cupy.from_dlpack(self.shm.as_shared_memory_tensor(out_handle, "FP32", [max_rows, 2]))
        self.pinned_in = cupyx.empty_pinned((max_rows, n_features), np.float32)
        self.pinned_out = cupyx.empty_pinned((max_rows, 2), np.float32)
        self.rows_on_gpu: Any = None
        self.staged: Any = None

    def _write_cuda(self, x: Matrix) -> None:
        n = len(x)
        if self.kind == "cudashm-pinned":  # the caller's rows sit in page-locked memory
            if self.staged is not x:  # once per matrix: the bench sends the same rows again
                self.pinned_in[:n] = x
                self.staged = x
            self.in_view[:n].set(self.pinned_in[:n])
        else:  # produced on the GPU: a device-to-device copy into the region
            if self.rows_on_gpu is None or len(self.rows_on_gpu) != n:
                self.rows_on_gpu = self.cp.asarray(x)
            self.in_view[:n] = self.rows_on_gpu
        self.cp.cuda.get_current_stream().synchronize()

    def _read_cuda(self, n: int) -> Any:
        if self.kind == "cudashm-gpu":
            return self.out_view[:n]  # stays on the GPU for a GPU consumer
        return self.out_view[:n].get(out=self.pinned_out[:n])

    def infer(self, x: Matrix) -> Any:  # numpy; CuPy (on the GPU) for cudashm-gpu
        if self.kind == "grpc-raw":  # the protobuf request built directly: gRPC's own floor
            request = self.pb.ModelInferRequest(model_name=self.model, raw_input_contents=[x.tobytes()])
            request.inputs.add(name="features", datatype="FP32", shape=list(x.shape))
            response = self.stub.ModelInfer(request)
            return np.frombuffer(response.raw_output_contents[0], np.float32).reshape(len(x), 2)
        inp = self.grpc.InferInput("features", list(x.shape), "FP32")
        out = self.grpc.InferRequestedOutput("probabilities")
        if self.kind == "grpc":
            inp.set_data_from_numpy(x)
            return np.asarray(self.client.infer(self.model, [inp], outputs=[out]).as_numpy("probabilities"))
        (in_name, in_handle), (out_name, out_handle) = self.regions
        if self.kind in ("cudashm-pinned", "cudashm-gpu"):
            self._write_cuda(x)
        else:
            self.shm.set_shared_memory_region(in_handle, [x])  # cudashm: a pageable host -> GPU copy
        inp.set_shared_memory(in_name, x.nbytes)
        out.set_shared_memory(out_name, len(x) * 8)
        self.client.infer(self.model, [inp], outputs=[out])
        if self.kind in ("cudashm-pinned", "cudashm-gpu"):
            return self._read_cuda(len(x))
        return np.array(self.shm.get_contents_as_numpy(out_handle, np.float32, [len(x), 2]))

    def close(self) -> None:
        if self.kind == "grpc-raw":
            self.channel.close()
        for name, handle in self.regions:
            self._unregister(name)
            self.shm.destroy_shared_memory_region(handle)
        self.client.close()

    def _unregister(self, name: str) -> None:
        """A backend may send its response before it releases the request, so the server can
        still hold the region when the reply arrives; Triton refuses the unregister until the
        release ("currently in use"): ask again until the server lets go of it."""
        from tritonclient.utils import InferenceServerException

        unregister = (self.client.unregister_system_shared_memory if self.kind == "shm"
                      else self.client.unregister_cuda_shared_memory)
        for attempt in range(UNREGISTER_ATTEMPTS):
            try:
                unregister(name)
                return
            except InferenceServerException as exc:
                if "in use" not in str(exc) or attempt == UNREGISTER_ATTEMPTS - 1:
                    raise
                time.sleep(0.01)
