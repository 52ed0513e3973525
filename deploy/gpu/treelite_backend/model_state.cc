// See model_state.h.

#include "model_state.h"

#include <sys/stat.h>

#include <string>

namespace {

// Rows the compiled trees are checked on at load, and how far their scores may be from GTIL's
// (float32 sums of the same leaves; only their order may differ).
constexpr uint64_t kCheckRows = 512;
constexpr float kCheckTolerance = 1e-5f;
// Requests below this many rows go to the compiled trees (one thread): in process on the
// H200 host one compiled thread beat GTIL's eight at every size the router keeps, 1-255 rows
// (run 13).
constexpr int64_t kDefaultCompiledRows = 1 << 30;

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

// The version's compiled trees, where its directory holds them: refused, and the model
// with them, unless they give GTIL's scores (a library of another model, or miscompiled).
TRITONSERVER_Error* LoadCompiled(const std::string& json, const std::string& path, ModelState* state) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return nullptr;  // none: GTIL scores every request
  const std::string rows = Parameter(json, "compiled_rows");
  state->compiled_rows = rows.empty() ? kDefaultCompiledRows : std::stoll(rows);
  if (state->compiled_rows <= 0) return nullptr;
  std::string err = state->compiled.Open(path, state->gtil.n_features, state->gtil.outputs_per_row);
  if (err.empty()) err = CheckAgainstGtil(state->gtil, state->compiled, kCheckRows, kCheckTolerance);
  if (!err.empty()) return Error(kErrorInvalidArg, "compiled trees refused: " + err);
  return nullptr;
}

}  // namespace

TRITONSERVER_Error* Error(int code, const std::string& msg) {
  return TRITONSERVER_ErrorNew(code, ("scorer_treelite: " + msg).c_str());
}

ModelState::~ModelState() {
  if (large.allocator) Ignore(TRITONSERVER_ResponseAllocatorDelete(large.allocator));
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
  const std::string threads = Parameter(json, "gtil_threads");
  const int wanted = threads.empty() ? 1 : std::atoi(threads.c_str());
  const std::string dir = std::string(location) + "/" + std::to_string(version) + "/";
  if (std::string why = state->gtil.Open(library, dir + "model.tl", wanted); !why.empty()) {
    return Error(kErrorInvalidArg, why);
  }
  const std::string parallel = Parameter(json, "gtil_parallel_rows");
  if (!parallel.empty()) state->parallel_rows = std::stoll(parallel);
  if (auto* refused = LoadCompiled(json, dir + kCompiledLibrary, state)) return refused;
  state->large.model = Parameter(json, "large_request_model");
  if (state->large.model.empty()) return nullptr;
  const std::string rows = Parameter(json, "large_request_rows");
  if (!rows.empty()) state->large_rows = std::stoll(rows);
  state->large.version = static_cast<int64_t>(version);  // the same version of the GPU model
  if (auto* err = TRITONBACKEND_ModelServer(model, &state->large.server)) return err;
  return NewForwardAllocator(&state->large.allocator);
}

