// Treelite's own predictor (GTIL) on one model, through libtreelite.so's C API opened at run
// time. Free of Triton: the backend scores with it, and predict_bench.cc times it.
#pragma once

#include <stdint.h>

#include <string>

// Treelite's C API (treelite/c_api.h, 4.x), resolved from libtreelite.so.
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

struct Gtil {
  Treelite api{};
  void* model = nullptr;
  void* config = nullptr;         // `threads` threads
  void* config_serial = nullptr;  // one thread: for a few rows a thread pool costs more than it saves
  int32_t n_features = 0;
  uint64_t outputs_per_row = 0;   // 1 or 2 (a binary classifier); P(malicious) is the last
  ~Gtil();

  // Open `library`, read the checkpoint `path`; "" on success, else why not.
  std::string Open(const std::string& library, const std::string& path, int threads);
  // Scores of `n` rows of n_features floats into `out` (n * outputs_per_row); "" or the error.
  std::string Predict(const float* rows, uint64_t n, float* out, bool parallel) const;
};
