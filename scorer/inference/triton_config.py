"""Triton model configs (``config.pbtxt``), always as Triton's own ``ModelConfig`` protobuf.

tritonclient's ``model_config_pb2`` is the one definition of a model config here: every
config is built or parsed into a ``ModelConfig`` message, changed field by field, and
printed by protobuf (:func:`to_text`). Nothing edits config text, so a field Triton added
in a later release, or one an operator set by hand, survives a rewrite. Only the production
and CPU configs written with a new model are printed one line per field
(:func:`to_compact_text`), the layout of Triton's documentation and of the shipped files.

The variants of one model (see docs/models.md for why no TensorRT):

- production, ``config.pbtxt``: the native onnxruntime backend on two GPU instances,
  dynamic batching, the two latest versions;
- CPU, ``configs/cpu.pbtxt`` (``tritonserver --model-config-name=cpu``): one CPU instance;
- the python backend (:func:`python_backend`), for servers without the onnxruntime
  backend: the local shim (deploy/local/triton.py) and the GPU engines (deploy/gpu/);
- pinned (:func:`pin_versions`): a ``specific`` version policy instead of ``latest``;
- nvForest on a GPU host (:func:`nvforest_model`): what runs the tree ensembles on a GPU,
  beside :func:`treelite_cpu_model` for requests too small to gain from it.
  The production config's onnxruntime backend runs a ``TreeEnsembleClassifier`` graph on
  the CPU even on ``KIND_GPU`` instances; on a GPU host ``deploy/gpu/launch.py`` serves
  each version's Treelite checkpoint (``model.tl``) with nvForest in a python-backend model
  rendered from the production config here (docs/gpu-serving.md). TensorRT is for neural
  models and has no tree-ensemble layer: it is not an option for these.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from google.protobuf import text_format
from google.protobuf.descriptor import FieldDescriptor
from tritonclient.grpc import model_config_pb2 as mc

from scorer.inference.base import INPUT_NAME, OUTPUT_NAME

CONFIG = "config.pbtxt"
CPU_CONFIG = "configs/cpu.pbtxt"
DEFAULT_MAX_BATCH = 8192
ModelConfig = mc.ModelConfig

# Which engine serves the shipped models (ONNX TreeEnsembleClassifier) per host kind: the
# production config.pbtxt (onnxruntime) on a CPU host; on a GPU host nvforest_model() for
# requests of SMALL_REQUEST_ROWS rows and more, treelite_cpu_model() below that, the latter
# under the production name, forwarding large requests to the former.
GPU_ENGINE = "nvforest"
CPU_BACKEND = "scorer_treelite"  # deploy/gpu/cpp_backend.BACKEND
# GPU instances a GPU host runs per model: 8 python-backend instances pass 100M rows/s at
# 65,536-row requests on an H200 where 2 reach 75-79M (docs/gpu-serving.md, section 3).
GPU_INSTANCES = 8
# Below this many rows a request is scored on the CPU by the C++ Treelite backend with
# CPU_MODEL_THREADS threads: its measured break-even against the nvForest model in the same
# server on the H200 host was ~256 rows for netflow and siem, 128-256 for edr (docs/gpu-serving.md).
SMALL_REQUEST_ROWS = 256
CPU_MODEL_THREADS = 8
# No dynamic batcher in front of the small-request model: on the H200 host (run 12 of
# docs/gpu-serving.md) it added a thread hand-off to every one-row request and merged
# concurrent ones into batches that take GTIL's 8-thread path (147-311 µs a call against
# 28-45 alone). Without it: queue 13-29 µs instead of 27-50 at one in flight, more one-row
# requests/s at 4 in flight (+1-41%), and at 16 p99 0.66-0.89 ms instead of 0.94-9.0 ms
# (netflow: 3x the rate).
CPU_MODEL_BATCHING = False


def onnx_model(name: str, n_features: int, *, device: Literal["gpu", "cpu"],
               max_batch: int = DEFAULT_MAX_BATCH) -> Any:
    """The config of a shipped classifier on the native onnxruntime backend.

    Each graph is one ai.onnx.ml TreeEnsembleClassifier node: TensorRT cannot parse it and
    ORT's CUDA EP has no kernel for it, so ORT runs the whole graph on its CPU EP whatever
    an accelerator list says. Asking for TensorRT FP16 would only cost an engine attempt at
    load, and promise a precision change that would blur cut-offs like 0.9999 if it applied.
    """
    config = mc.ModelConfig(name=name, backend="onnxruntime", max_batch_size=max_batch)
    config.input.add(name=INPUT_NAME, data_type=mc.TYPE_FP32, dims=[n_features])
    config.output.add(name=OUTPUT_NAME, data_type=mc.TYPE_FP32, dims=[2])
    config.dynamic_batching.max_queue_delay_microseconds = 200
    set_instances(config, device, 2 if device == "gpu" else 1)
    config.version_policy.latest.num_versions = 2
    return config


def production_config(name: str, n_features: int, *, max_batch: int = DEFAULT_MAX_BATCH) -> str:
    return to_compact_text(onnx_model(name, n_features, device="gpu", max_batch=max_batch))


def cpu_config(name: str, n_features: int, *, max_batch: int = DEFAULT_MAX_BATCH) -> str:
    return to_compact_text(onnx_model(name, n_features, device="cpu", max_batch=max_batch))


def write_onnx_configs(model_dir: Path, name: str, n_features: int) -> None:
    """The production and CPU configs of a model (every version of it shares them)."""
    (model_dir / CONFIG).write_text(production_config(name, n_features))
    (model_dir / CPU_CONFIG).parent.mkdir(exist_ok=True)
    (model_dir / CPU_CONFIG).write_text(cpu_config(name, n_features))


def set_instances(config: Any, device: Literal["gpu", "cpu"], count: int, *, gpus: Iterable[int] = ()) -> None:
    """Replace the config's instance groups with ``count`` instances on ``device``."""
    del config.instance_group[:]
    kind = mc.ModelInstanceGroup.KIND_GPU if device == "gpu" else mc.ModelInstanceGroup.KIND_CPU
    config.instance_group.add(kind=kind, count=count, gpus=list(gpus))


def python_backend(config: Any) -> Any:
    """A copy of ``config`` served by a python-backend ``model.py`` on one CPU instance:
    tensors, batching and version policy kept, backend-specific fields dropped."""
    out = mc.ModelConfig()
    out.CopyFrom(config)
    out.backend = "python"
    out.platform = ""
    out.default_model_filename = ""
    out.ClearField("optimization")  # TensorRT / GPU accelerators mean nothing to it
    set_instances(out, "cpu", 1)
    if "onnx_intra_op_threads" not in out.parameters:  # read by the shims: one thread each
        out.parameters["onnx_intra_op_threads"].string_value = "1"
    return out


def nvforest_model(config: Any, *, gpu_instances: int = GPU_INSTANCES, gpus: Iterable[int] = (0,)) -> Any:
    """``config`` as the GPU host serves it: the python-backend copy on ``gpu_instances``
    GPU instances running nvForest, with inputs left on the GPU when the client put them
    there (CUDA shared memory) instead of being staged through host memory."""
    out = python_backend(config)
    set_instances(out, "gpu", gpu_instances, gpus=gpus)
    out.parameters["scorer_engine"].string_value = GPU_ENGINE
    out.parameters["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value = "no"
    return out


def treelite_cpu_model(config: Any, *, library: str, instances: int = 2, threads: int = CPU_MODEL_THREADS,
                       large_model: str | None = None, large_rows: int = SMALL_REQUEST_ROWS,
                       batching: bool = CPU_MODEL_BATCHING) -> Any:
    """``config`` as the GPU host's small-request model: the C++ Treelite backend
    (deploy/gpu/treelite_backend) on ``instances`` CPU instances, scoring the version's
    ``model.tl`` with ``threads`` threads per call; ``library`` is libtreelite.so's path.

    With ``large_model`` (the nvForest model's name) it is the GPU host's router under the
    production name: requests of ``large_rows`` rows or more, and inputs in GPU memory, are
    forwarded inside the server to the same version of ``large_model``, the rest scored on
    the CPU. Without ``batching`` (CPU_MODEL_BATCHING, the default) the config has no
    ``dynamic_batching`` block: each request goes from the gRPC thread straight to an instance
    and is scored alone; with it, a batcher without queue delay merges what is already queued.
    The GPU model keeps its own batching."""
    out = mc.ModelConfig()
    out.CopyFrom(config)
    out.backend = CPU_BACKEND
    out.platform = ""
    out.default_model_filename = ""
    out.ClearField("optimization")
    set_instances(out, "cpu", instances)
    if batching:
        out.dynamic_batching.max_queue_delay_microseconds = 0
    else:
        out.ClearField("dynamic_batching")
    out.parameters["treelite_library"].string_value = library
    out.parameters["gtil_threads"].string_value = str(threads)
    if large_model:
        out.parameters["large_request_model"].string_value = large_model
        out.parameters["large_request_rows"].string_value = str(large_rows)
    return out


def parse(text: str) -> Any:
    return text_format.Parse(text, mc.ModelConfig())


def to_text(config: Any) -> str:
    return str(text_format.MessageToString(config))


def read(path: Path) -> Any:
    return parse(path.read_text())


def config_files(model_dir: Path) -> list[Path]:
    """The model's config files that exist: production, then CPU."""
    return [p for p in (model_dir / CONFIG, model_dir / CPU_CONFIG) if p.is_file()]


def pin_versions(model_dir: Path, versions: Iterable[int]) -> list[Path]:
    """Make every config of the model name exactly ``versions`` (a ``specific`` policy);
    the files rewritten. Nothing is written for an empty ``versions``."""
    wanted = sorted(set(versions))
    if not wanted:
        return []
    paths = config_files(model_dir)
    for path in paths:
        config = read(path)
        config.version_policy.specific.versions[:] = wanted
        path.write_text(to_text(config))
    return paths


def input_width(model_dir: Path) -> int | None:
    """The input width the model's production config declares (None: no config yet)."""
    path = model_dir / CONFIG
    if not path.is_file():
        return None
    dims = [list(i.dims) for i in read(path).input if i.name == INPUT_NAME]
    return int(dims[0][-1]) if dims and dims[0] else None


# -- one line per field ---------------------------------------------------------------------
# In the order Triton's documentation writes them: declaration order, with the version
# policy after the instance groups; nested messages inline, ``name: { ... }``; repeated
# fields as lists, ``name [{ ... }]``. The shipped config.pbtxt files are exactly this.

_ORDER = [f.name for f in mc.ModelConfig.DESCRIPTOR.fields if f.name != "version_policy"]
_ORDER.insert(_ORDER.index("instance_group") + 1, "version_policy")
_FIELD_RANK = {name: i for i, name in enumerate(_ORDER)}
_COLON_AT_TOP = {"version_policy"}  # Triton's docs write it so; other top-level messages go without


def to_compact_text(config: Any) -> str:
    fields = sorted(config.ListFields(), key=lambda fv: _FIELD_RANK[fv[0].name])
    return "".join(f"{_field(fd, value, top=True)}\n" for fd, value in fields)


def _field(fd: FieldDescriptor, value: Any, *, top: bool = False) -> str:
    if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        key_fd, value_fd = fd.message_type.fields_by_name["key"], fd.message_type.fields_by_name["value"]
        entries = [f"{{ key: {_scalar(key_fd, k)}, {_field(value_fd, value[k])} }}" for k in sorted(value)]
        return f"{fd.name} [{', '.join(entries)}]"
    if fd.is_repeated:
        if fd.message_type is not None:
            return f"{fd.name} [{', '.join(_message(m) for m in value)}]"
        return f"{fd.name}: [ {', '.join(_scalar(fd, v) for v in value)} ]"
    if fd.message_type is not None:
        colon = "" if top and fd.name not in _COLON_AT_TOP else ":"
        return f"{fd.name}{colon} {_message(value)}"
    return f"{fd.name}: {_scalar(fd, value)}"


def _message(message: Any) -> str:
    inner = ", ".join(_field(fd, v) for fd, v in sorted(message.ListFields(), key=lambda fv: fv[0].index))
    return f"{{ {inner} }}" if inner else "{ }"


def _scalar(fd: FieldDescriptor, value: Any) -> str:
    out = io.StringIO()  # protobuf's own printing: escapes, enum names, float forms
    text_format.PrintFieldValue(fd, value, out, as_one_line=True)
    return out.getvalue()
