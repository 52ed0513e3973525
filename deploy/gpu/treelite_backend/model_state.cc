// See model_state.h.

#include "model_state.h"

#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>

namespace {

// Treelite rejects an nthread above OpenMP's limit (the CPUs this process may run on, or
// OMP_NUM_THREADS), and it would do so on every call of parallel_rows rows or more: on a
// host with fewer cores than gtil_threads the model loaded and then failed those requests.
int UsableThreads(int wanted) {
  cpu_set_t set;
  int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
  if (const char* omp = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(omp);
    if (n > 0) cpus = std::min(cpus, n);
  }
  return std::max(1, std::min(wanted, cpus));
}

// A config parameter's string_value from the model config JSON (flat search: the
// parameters map is the only place these keys occur).
std::string Parameter(const std::string& json, const std::string& key) {
  const std::string anchor = "\"" + key + "\"";
  size_t at = json.find(anchor);
  if (at == std::string::npos) return "";
  at = json.find("\"string_value\"", at);
  if (at == std::string::npos) return "";
  size_t start = json.find('"', json.find(':', at) + 1);
  size_t end = json.find('"', start + 1);
  if (start == std::string::npos || end == std::string::npos) return "";
  return json.substr(start + 1, end - start - 1);
}

}  // namespace

TRITONSERVER_Error* Error(int code, const std::string& msg) {
  return TRITONSERVER_ErrorNew(code, ("scorer_treelite: " + msg).c_str());
}

ModelState::~ModelState() {
  if (config) api.delete_config(config);
  if (config_serial) api.delete_config(config_serial);
  if (model) api.free_model(model);
  if (large.allocator) Ignore(TRITONSERVER_ResponseAllocatorDelete(large.allocator));
  // libtreelite stays loaded: other models of the server share it.
}

TRITONSERVER_Error* Load(TRITONBACKEND_Model* model, ModelState* state) {
  int artifact = 0;
  const char* location = nullptr;
  uint64_t version = 0;
  if (auto* err = TRITONBACKEND_ModelRepository(model, &artifact, &location)) return err;
  if (artifact != kArtifactFilesystem) return Error(kErrorUnsupported, "model files must be on a filesystem");
  if (auto* err = TRITONBACKEND_ModelVersion(model, &version)) return err;
  TRITONSERVER_Message* message = nullptr;
  if (auto* err = TRITONBACKEND_ModelConfig(model, 1, &message)) return err;
  const char* base = nullptr;
  size_t size = 0;
  TRITONSERVER_Error* err = TRITONSERVER_MessageSerializeToJson(message, &base, &size);
  std::string json = err ? "" : std::string(base, size);
  TRITONSERVER_MessageDelete(message);
  if (err) return err;

  const std::string library = Parameter(json, "treelite_library");
  if (library.empty()) return Error(kErrorInvalidArg, "parameter treelite_library (path of libtreelite.so) is required");
  state->library = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!state->library) return Error(kErrorInvalidArg, std::string("cannot open ") + library + ": " + dlerror());
  void* lib = state->library;
  auto sym = [lib](const char* name) { return dlsym(lib, name); };
  state->api.deserialize = reinterpret_cast<int (*)(const char*, void**)>(sym("TreeliteDeserializeModelFromFile"));
  state->api.free_model = reinterpret_cast<int (*)(void*)>(sym("TreeliteFreeModel"));
  state->api.num_feature = reinterpret_cast<int (*)(void*, int32_t*)>(sym("TreeliteQueryNumFeature"));
  state->api.parse_config = reinterpret_cast<int (*)(const char*, void**)>(sym("TreeliteGTILParseConfig"));
  state->api.delete_config = reinterpret_cast<int (*)(void*)>(sym("TreeliteGTILDeleteConfig"));
  state->api.output_shape =
      reinterpret_cast<int (*)(void*, uint64_t, void*, const uint64_t**, uint64_t*)>(sym("TreeliteGTILGetOutputShape"));
  state->api.predict =
      reinterpret_cast<int (*)(void*, const void*, const char*, uint64_t, void*, void*)>(sym("TreeliteGTILPredict"));
  state->api.last_error = reinterpret_cast<const char* (*)()>(sym("TreeliteGetLastError"));
  const Treelite& api = state->api;
  if (!api.deserialize || !api.free_model || !api.num_feature || !api.parse_config || !api.delete_config ||
      !api.output_shape || !api.predict || !api.last_error) {
    return Error(kErrorInvalidArg, library + " lacks Treelite 4's C API");
  }

  const std::string path = std::string(location) + "/" + std::to_string(version) + "/model.tl";
  if (api.deserialize(path.c_str(), &state->model) != 0) return Error(kErrorInvalidArg, path + ": " + api.last_error());
  if (api.num_feature(state->model, &state->n_features) != 0) return Error(kErrorInternal, api.last_error());
  const std::string threads = Parameter(json, "gtil_threads");
  const int wanted = threads.empty() ? 1 : std::atoi(threads.c_str());
  if (wanted < 1) return Error(kErrorInvalidArg, "gtil_threads must be a positive integer, not '" + threads + "'");
  const std::string gtil =
      "{\"predict_type\": \"default\", \"nthread\": " + std::to_string(UsableThreads(wanted)) + "}";
  if (api.parse_config(gtil.c_str(), &state->config) != 0) return Error(kErrorInvalidArg, api.last_error());
  const std::string serial = "{\"predict_type\": \"default\", \"nthread\": 1}";
  if (api.parse_config(serial.c_str(), &state->config_serial) != 0) return Error(kErrorInternal, api.last_error());
  const std::string parallel = Parameter(json, "gtil_parallel_rows");
  if (!parallel.empty()) state->parallel_rows = std::stoll(parallel);
  const uint64_t* shape = nullptr;
  uint64_t ndim = 0;
  if (api.output_shape(state->model, 1, state->config, &shape, &ndim) != 0) return Error(kErrorInternal, api.last_error());
  state->outputs_per_row = 1;
  for (uint64_t i = 1; i < ndim; ++i) state->outputs_per_row *= shape[i];
  if (state->outputs_per_row != 1 && state->outputs_per_row != 2) {
    return Error(kErrorUnsupported, "a binary classifier gives 1 or 2 outputs per row, this model " +
                                        std::to_string(state->outputs_per_row));
  }
  state->large.model = Parameter(json, "large_request_model");
  if (state->large.model.empty()) return nullptr;
  const std::string rows = Parameter(json, "large_request_rows");
  if (!rows.empty()) state->large_rows = std::stoll(rows);
  state->large.version = static_cast<int64_t>(version);  // the same version of the GPU model
  if (auto* err = TRITONBACKEND_ModelServer(model, &state->large.server)) return err;
  return NewForwardAllocator(&state->large.allocator);
}

