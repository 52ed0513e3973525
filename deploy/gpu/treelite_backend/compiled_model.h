// A version's trees compiled to machine code: tl2cgen turns model.tl into C, the host's
// compiler into a shared library (deploy/gpu/compiled_model.py), opened here at model load.
// One row is a chain of compares and adds with no interpreter around it, where GTIL walks
// its node arrays and sets up each call (docs/gpu-serving.md, run 13). Free of Triton: the
// backend scores with it, and predict_bench.cc times it.
#pragma once

#include <stdint.h>

#include <string>

#include "gtil.h"

class CompiledModel {
 public:
  CompiledModel() = default;
  CompiledModel(const CompiledModel&) = delete;
  CompiledModel& operator=(const CompiledModel&) = delete;
  ~CompiledModel();

  // Open the library at `path` for a model of `n_features` inputs and `outputs_per_row`
  // outputs; "" on success, else why it cannot stand in for that model.
  std::string Open(const std::string& path, int32_t n_features, uint64_t outputs_per_row);
  bool loaded() const { return predict_ != nullptr; }
  // Scores of `n` rows (n_features floats each; NaN is a missing value) into `out`, laid
  // out as GTIL's (n * outputs_per_row). Reentrant.
  void Predict(const float* rows, uint64_t n, float* out) const;

 private:
  void* handle_ = nullptr;
  void (*predict_)(void* entries, int pred_margin, float* result) = nullptr;
  int32_t n_features_ = 0;
  uint64_t outputs_ = 0;
};

// Whether `compiled` gives GTIL's scores (within `tolerance`) on `n` rows drawn to reach both
// sides of the trees' splits, missing values among them: "" if so, else the first row that
// differs. A library built from another model, or by a compiler that miscompiled it, fails here.
std::string CheckAgainstGtil(const Gtil& gtil, const CompiledModel& compiled, uint64_t n, float tolerance);
