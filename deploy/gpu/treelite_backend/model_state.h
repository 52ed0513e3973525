// One model version's state: its Treelite model loaded through libtreelite.so's C API, the
// GTIL configuration, and where large requests go (forward.h).
#pragma once

#include <stdint.h>

#include <string>

#include "forward.h"
#include "triton_api.h"

// Treelite's C API (treelite/c_api.h, 4.x), resolved from libtreelite.so at load.
struct Treelite {
  int (*deserialize)(const char*, void**);
  int (*free_model)(void*);
  int (*num_feature)(void*, int32_t*);
  int (*parse_config)(const char*, void**);
  int (*delete_config)(void*);
  int (*output_shape)(void*, uint64_t, void*, const uint64_t**, uint64_t*);
  int (*predict)(void*, const void*, const char*, uint64_t, void*, void*);
  const char* (*last_error)();
};

struct ModelState {
  void* library = nullptr;
  Treelite api{};
  void* model = nullptr;
  void* config = nullptr;         // GTIL with gtil_threads threads
  void* config_serial = nullptr;  // GTIL with one thread: below parallel_rows a thread pool costs more
  int64_t parallel_rows = 8;
  int32_t n_features = 0;
  uint64_t outputs_per_row = 0;
  ForwardTarget large;
  int64_t large_rows = 1024;
  ~ModelState();
};

// Read the version's model.tl and the config's parameters (see treelite_backend.cc).
TRITONSERVER_Error* Load(TRITONBACKEND_Model* model, ModelState* state);

// An error whose message names this backend.
TRITONSERVER_Error* Error(int code, const std::string& msg);
