// A Triton C++ backend that scores the shipped tree ensembles on the CPU: the small-request
// path of a GPU host. The python backend costs 0.25-0.65 ms of IPC per execute whatever the
// model does (docs/gpu-serving.md); a backend inside the server process costs the call.
// Two scorers of the version's trees: Treelite's predictor (GTIL) on the checkpoint model.tl,
// and, where the version directory holds model_compiled.so (tl2cgen's C of the same trees,
// built by deploy/gpu/compiled_model.py), that library, checked against GTIL at load and
// refused with the model on a mismatch. The compiled trees take requests below
// `compiled_rows` rows (one row in 1.5-3.6 us against GTIL's 14-32 us in process on the H200
// host, run 13);
// GTIL the rest, and everything when there is no library.
//
// With `large_request_model` set it is also the router of a GPU host: a request of
// `large_request_rows` rows or more (or one whose input is in GPU memory) is forwarded to
// that model (the nvForest GPU model, same version) inside the server, and its scores are
// written straight into this model's response (forward.cc). Clients call one model name.
// Each response names what scored it in its `scored_by` parameter.
//
// Built by deploy/gpu/cpp_backend.py into libtriton_scorer_treelite.so; the model's config
// names `backend: "scorer_treelite"`. libtreelite.so is opened at model load from the
// `treelite_library` parameter (the treelite wheel's treelite/lib/libtreelite.so), so the
// backend links against nothing but the server's own TRITON* symbols (triton_api.h).
// Parameters (string_value):
//   treelite_library     path of libtreelite.so (required)
//   gtil_threads         Treelite's nthread per call (default 1; at most the CPUs the server may use)
//   gtil_parallel_rows   GTIL batches below this many rows run on one thread (default 8: on the
//                        H200 host one row took 37-60 us on one thread, 135-150 us on eight)
//   compiled_rows        requests below this many rows go to the compiled trees (default: all
//                        scored here; 0: never)
//   large_request_model  the model that takes large requests (default: none, all run here)
//   large_request_rows   rows from which a request is forwarded (default 1024)
//
// Tensors: one FP32 input [rows, n_features] (the first input), one FP32 output
// "probabilities" [rows, 2] = (1 - p, p), p the model's sigmoid output, as the ONNX model's.

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "forward.h"
#include "model_state.h"
#include "triton_api.h"

namespace {

uint64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Whether `request` goes to the large-request model: by its rows, or because its input is
// not in host memory (a CUDA shared-memory client), which this CPU model cannot read.
bool Large(const ModelState& state, TRITONBACKEND_Request* request) {
  if (state.large.model.empty()) return false;
  TRITONBACKEND_Input* input = nullptr;
  const int64_t* shape = nullptr;
  uint32_t dims = 0, buffers = 0;
  TRITONSERVER_Error* err = TRITONBACKEND_RequestInputByIndex(request, 0, &input);
  if (!err) err = TRITONBACKEND_InputProperties(input, nullptr, nullptr, &shape, &dims, nullptr, &buffers);
  if (err || dims < 1 || buffers == 0) {
    Ignore(err);
    return false;  // scored here, where ReadRows reports what is wrong with it
  }
  if (shape[0] >= state.large_rows) return true;
  const void* buffer = nullptr;
  uint64_t size = 0;
  int memory = kMemoryCpu;
  int64_t memory_id = 0;
  err = TRITONBACKEND_InputBuffer(input, 0, &buffer, &size, &memory, &memory_id);
  Ignore(err);
  return !err && memory == kMemoryGpu;
}

// The request's rows, gathered into `rows` (appended); the row count.
TRITONSERVER_Error* ReadRows(TRITONBACKEND_Request* request, int32_t n_features, std::vector<float>& rows,
                             uint64_t* count) {
  TRITONBACKEND_Input* input = nullptr;
  if (auto* err = TRITONBACKEND_RequestInputByIndex(request, 0, &input)) return err;
  int datatype = 0;
  const int64_t* shape = nullptr;
  uint32_t dims = 0, buffers = 0;
  uint64_t bytes = 0;
  if (auto* err = TRITONBACKEND_InputProperties(input, nullptr, &datatype, &shape, &dims, &bytes, &buffers)) return err;
  if (datatype != kTypeFp32) return Error(kErrorInvalidArg, "input must be FP32");
  if (dims != 2 || shape[1] != n_features) {
    return Error(kErrorInvalidArg, "input must be [rows, " + std::to_string(n_features) + "]");
  }
  if (bytes != static_cast<uint64_t>(shape[0]) * n_features * sizeof(float)) {
    return Error(kErrorInvalidArg, "input byte size does not match its shape");
  }
  const size_t start = rows.size();
  rows.resize(start + bytes / sizeof(float));
  char* dst = reinterpret_cast<char*>(rows.data() + start);
  for (uint32_t b = 0; b < buffers; ++b) {
    const void* buffer = nullptr;
    uint64_t size = 0;
    int memory = kMemoryCpu;
    int64_t memory_id = 0;
    if (auto* err = TRITONBACKEND_InputBuffer(input, b, &buffer, &size, &memory, &memory_id)) return err;
    if (memory != kMemoryCpu && memory != kMemoryCpuPinned) {
      return Error(kErrorUnsupported, "input in GPU memory: this CPU model reads host memory only");
    }
    std::memcpy(dst, buffer, size);
    dst += size;
  }
  *count = static_cast<uint64_t>(shape[0]);
  return nullptr;
}

TRITONSERVER_Error* WriteScores(TRITONBACKEND_Response* response, const float* p, uint64_t rows, uint64_t per_row) {
  const int64_t shape[2] = {static_cast<int64_t>(rows), 2};
  TRITONBACKEND_Output* output = nullptr;
  if (auto* err = TRITONBACKEND_ResponseOutput(response, &output, "probabilities", kTypeFp32, shape, 2)) return err;
  void* buffer = nullptr;
  int memory = kMemoryCpu;
  int64_t memory_id = 0;
  if (auto* err = TRITONBACKEND_OutputBuffer(output, &buffer, rows * 2 * sizeof(float), &memory, &memory_id)) return err;
  if (memory != kMemoryCpu && memory != kMemoryCpuPinned) return Error(kErrorInternal, "output buffer not in host memory");
  float* out = static_cast<float*>(buffer);
  for (uint64_t r = 0; r < rows; ++r) {
    const float score = p[r * per_row + per_row - 1];  // P(malicious): the last column
    out[2 * r] = 1.0f - score;
    out[2 * r + 1] = score;
  }
  return nullptr;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) TRITONSERVER_Error* TRITONBACKEND_Initialize(TRITONBACKEND_Backend*) {
  uint32_t major = 0, minor = 0;
  if (auto* err = TRITONBACKEND_ApiVersion(&major, &minor)) return err;
  if (major != 1) return Error(kErrorUnsupported, "needs Triton backend API 1.x, server has " + std::to_string(major));
  return nullptr;
}

__attribute__((visibility("default"))) TRITONSERVER_Error* TRITONBACKEND_ModelInitialize(TRITONBACKEND_Model* model) {
  auto* state = new ModelState();
  if (auto* err = Load(model, state)) {
    delete state;
    return err;
  }
  return TRITONBACKEND_ModelSetState(model, state);
}

__attribute__((visibility("default"))) TRITONSERVER_Error* TRITONBACKEND_ModelFinalize(TRITONBACKEND_Model* model) {
  void* state = nullptr;
  if (auto* err = TRITONBACKEND_ModelState(model, &state)) return err;
  delete static_cast<ModelState*>(state);
  return nullptr;
}

// Instances share the model's state: GTIL's predict is reentrant on one model handle.
__attribute__((visibility("default"))) TRITONSERVER_Error* TRITONBACKEND_ModelInstanceInitialize(
    TRITONBACKEND_ModelInstance*) {
  return nullptr;
}

__attribute__((visibility("default"))) TRITONSERVER_Error* TRITONBACKEND_ModelInstanceFinalize(
    TRITONBACKEND_ModelInstance*) {
  return nullptr;
}

// One dynamic batch: every request's rows in one GTIL call (its fixed cost is paid once),
// then one response per request. A request whose input is wrong fails alone.
__attribute__((visibility("default"))) TRITONSERVER_Error* TRITONBACKEND_ModelInstanceExecute(
    TRITONBACKEND_ModelInstance* instance, TRITONBACKEND_Request** requests, uint32_t count) {
  const uint64_t exec_start = NowNs();
  TRITONBACKEND_Model* model = nullptr;
  void* raw = nullptr;
  if (auto* err = TRITONBACKEND_ModelInstanceModel(instance, &model)) return err;
  if (auto* err = TRITONBACKEND_ModelState(model, &raw)) return err;
  const ModelState& state = *static_cast<ModelState*>(raw);

  // Large requests leave for the GPU model first; the rest are scored here in one call.
  std::vector<TRITONBACKEND_Request*> here;
  here.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    if (!Large(state, requests[i])) {
      here.push_back(requests[i]);
      continue;
    }
    TRITONSERVER_Error* err = Forward(state.large, instance, requests[i], exec_start);
    if (!err) continue;
    TRITONBACKEND_Response* response = nullptr;
    TRITONSERVER_Error* made = TRITONBACKEND_ResponseNew(&response, requests[i]);
    if (!made) Ignore(TRITONBACKEND_ResponseSend(response, kResponseCompleteFinal, err));
    Ignore(made);
    Ignore(TRITONBACKEND_ModelInstanceReportStatistics(instance, requests[i], false, exec_start, exec_start,
                                                       NowNs(), NowNs()));
    Ignore(err);
    Ignore(TRITONBACKEND_RequestRelease(requests[i], kRequestReleaseAll));
  }
  requests = here.data();
  count = static_cast<uint32_t>(here.size());
  if (count == 0) return nullptr;

  thread_local std::vector<float> rows, scores;
  rows.clear();
  std::vector<uint64_t> counts(count, 0);
  std::vector<TRITONSERVER_Error*> errors(count, nullptr);
  uint64_t total = 0;
  for (uint32_t i = 0; i < count; ++i) {
    const size_t before = rows.size();
    errors[i] = ReadRows(requests[i], state.gtil.n_features, rows, &counts[i]);
    if (errors[i]) {
      rows.resize(before);
      counts[i] = 0;
    }
    total += counts[i];
  }
  const uint64_t compute_start = NowNs();
  const uint64_t per_row = state.gtil.outputs_per_row;
  scores.resize(total * per_row);
  TRITONSERVER_Error* batch_error = nullptr;
  const bool compiled = state.compiled.loaded() && static_cast<int64_t>(total) < state.compiled_rows;
  if (total > 0 && compiled) {
    state.compiled.Predict(rows.data(), total, scores.data());
  } else if (total > 0) {
    const std::string why =
        state.gtil.Predict(rows.data(), total, scores.data(), static_cast<int64_t>(total) >= state.parallel_rows);
    if (!why.empty()) batch_error = Error(kErrorInternal, why);
  }
  const uint64_t compute_end = NowNs();

  uint64_t offset = 0;
  for (uint32_t i = 0; i < count; ++i) {
    TRITONSERVER_Error* err = errors[i];
    if (!err && batch_error) err = TRITONSERVER_ErrorNew(kErrorInternal, TRITONSERVER_ErrorMessage(batch_error));
    TRITONBACKEND_Response* response = nullptr;
    TRITONSERVER_Error* made = TRITONBACKEND_ResponseNew(&response, requests[i]);
    if (!made && !err) err = WriteScores(response, scores.data() + offset * per_row, counts[i], per_row);
    if (!made && !err) Ignore(TRITONBACKEND_ResponseSetStringParameter(response, kScoredBy, compiled ? "compiled" : "gtil"));
    offset += counts[i];
    if (!made) {
      Ignore(TRITONBACKEND_ResponseSend(response, kResponseCompleteFinal, err));
    } else {
      Ignore(made);
    }
    const uint64_t exec_end = NowNs();
    Ignore(TRITONBACKEND_ModelInstanceReportStatistics(instance, requests[i], err == nullptr, exec_start,
                                                       compute_start, compute_end, exec_end));
    Ignore(err);
    Ignore(TRITONBACKEND_RequestRelease(requests[i], kRequestReleaseAll));
  }
  Ignore(batch_error);
  if (total > 0) {
    Ignore(TRITONBACKEND_ModelInstanceReportBatchStatistics(instance, total, exec_start, compute_start, compute_end,
                                                            NowNs()));
  }
  return nullptr;
}

}  // extern "C"
