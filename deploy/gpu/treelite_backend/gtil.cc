// See gtil.h.

#include "gtil.h"

#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>

namespace {

// Treelite rejects an nthread above OpenMP's limit (the CPUs this process may run on, or
// OMP_NUM_THREADS), and it would do so on every parallel call: on a host with fewer cores
// than asked for the model loaded and then failed those requests.
int UsableThreads(int wanted) {
  cpu_set_t set;
  int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
  if (const char* omp = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(omp);
    if (n > 0) cpus = std::min(cpus, n);
  }
  return std::max(1, std::min(wanted, cpus));
}

std::string Config(const Treelite& api, int threads, void** config) {
  const std::string json = "{\"predict_type\": \"default\", \"nthread\": " + std::to_string(threads) + "}";
  return api.parse_config(json.c_str(), config) == 0 ? "" : api.last_error();
}

}  // namespace

Gtil::~Gtil() {
  if (config) api.delete_config(config);
  if (config_serial) api.delete_config(config_serial);
  if (model) api.free_model(model);
  // libtreelite stays loaded: other models of the process share it.
}

std::string Gtil::Open(const std::string& library, const std::string& path, int threads) {
  void* lib = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) return "cannot open " + library + ": " + dlerror();
  auto sym = [lib](const char* name) { return dlsym(lib, name); };
  api.deserialize = reinterpret_cast<int (*)(const char*, void**)>(sym("TreeliteDeserializeModelFromFile"));
  api.free_model = reinterpret_cast<int (*)(void*)>(sym("TreeliteFreeModel"));
  api.num_feature = reinterpret_cast<int (*)(void*, int32_t*)>(sym("TreeliteQueryNumFeature"));
  api.parse_config = reinterpret_cast<int (*)(const char*, void**)>(sym("TreeliteGTILParseConfig"));
  api.delete_config = reinterpret_cast<int (*)(void*)>(sym("TreeliteGTILDeleteConfig"));
  api.output_shape =
      reinterpret_cast<int (*)(void*, uint64_t, void*, const uint64_t**, uint64_t*)>(sym("TreeliteGTILGetOutputShape"));
  api.predict = reinterpret_cast<int (*)(void*, const void*, const char*, uint64_t, void*, void*)>(sym("TreeliteGTILPredict"));
  api.last_error = reinterpret_cast<const char* (*)()>(sym("TreeliteGetLastError"));
  if (!api.deserialize || !api.free_model || !api.num_feature || !api.parse_config || !api.delete_config ||
      !api.output_shape || !api.predict || !api.last_error) {
    api = Treelite{};
    return library + " lacks Treelite 4's C API";
  }
  if (api.deserialize(path.c_str(), &model) != 0) return path + ": " + api.last_error();
  if (api.num_feature(model, &n_features) != 0) return api.last_error();
  if (threads < 1) return "GTIL threads must be a positive integer, not " + std::to_string(threads);
  std::string err = Config(api, UsableThreads(threads), &config);
  if (err.empty()) err = Config(api, 1, &config_serial);
  if (!err.empty()) return err;
  const uint64_t* shape = nullptr;
  uint64_t ndim = 0;
  if (api.output_shape(model, 1, config, &shape, &ndim) != 0) return api.last_error();
  outputs_per_row = 1;
  for (uint64_t i = 1; i < ndim; ++i) outputs_per_row *= shape[i];
  if (outputs_per_row != 1 && outputs_per_row != 2) {
    return "a binary classifier gives 1 or 2 outputs per row, this model " + std::to_string(outputs_per_row);
  }
  return "";
}

std::string Gtil::Predict(const float* rows, uint64_t n, float* out, bool parallel) const {
  if (api.predict(model, rows, "float32", n, out, parallel ? config : config_serial) != 0) return api.last_error();
  return "";
}
