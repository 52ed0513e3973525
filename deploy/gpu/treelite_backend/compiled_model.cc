// See compiled_model.h.

#include "compiled_model.h"

#include <dlfcn.h>

#include <cmath>
#include <cstring>
#include <vector>

namespace {

// tl2cgen's input cell (the generated header's `union Entry`): a feature's value, or
// missing = -1 for an absent one.
union Entry {
  int missing;
  float fvalue;
  int qvalue;
};

// Deterministic check rows: a mix of the magnitudes the scorer's features take (counts,
// ratios, flags, log-scaled sizes, negative deltas) and missing values, so that the check
// goes down both sides of most splits without needing the capture's rows at load.
std::vector<float> CheckRows(uint64_t n, int32_t n_features) {
  std::vector<float> rows(n * n_features);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&state]() {  // splitmix64
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  for (float& v : rows) {
    const uint64_t r = next();
    const double u = static_cast<double>(r >> 11) / 9007199254740992.0;  // [0, 1)
    switch (r % 8) {
      case 0: v = std::nanf(""); break;
      case 1: v = static_cast<float>(r % 3); break;                       // flags
      case 2: v = static_cast<float>(u); break;                           // ratios
      case 3: v = static_cast<float>(u * 20.0 - 2.0); break;              // small values, some negative
      case 4: v = static_cast<float>(std::pow(10.0, u * 6.0 - 1.0)); break;  // counts, sizes
      default: v = static_cast<float>(u * 10.0); break;                   // log-scaled features
    }
  }
  return rows;
}

}  // namespace

CompiledModel::~CompiledModel() {
  if (handle_) dlclose(handle_);
}

std::string CompiledModel::Open(const std::string& path, int32_t n_features, uint64_t outputs_per_row) {
  handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) return "cannot open " + path + ": " + dlerror();
  auto sym = [this](const char* name) { return dlsym(handle_, name); };
  auto num_feature = reinterpret_cast<int32_t (*)()>(sym("get_num_feature"));
  auto num_target = reinterpret_cast<int32_t (*)()>(sym("get_num_target"));
  auto num_class = reinterpret_cast<void (*)(int32_t*)>(sym("get_num_class"));
  auto threshold_type = reinterpret_cast<const char* (*)()>(sym("get_threshold_type"));
  auto leaf_type = reinterpret_cast<const char* (*)()>(sym("get_leaf_output_type"));
  auto predict = reinterpret_cast<void (*)(void*, int, float*)>(sym("predict"));
  if (!num_feature || !num_target || !num_class || !threshold_type || !leaf_type || !predict) {
    return path + " is not a tl2cgen 1.x library (no get_num_feature/get_num_target/get_num_class/predict)";
  }
  if (num_feature() != n_features) {
    return path + " takes " + std::to_string(num_feature()) + " features, the model " + std::to_string(n_features);
  }
  if (std::strcmp(threshold_type(), "float32") != 0 || std::strcmp(leaf_type(), "float32") != 0) {
    return path + " has " + threshold_type() + " thresholds and " + leaf_type() + " leaves; only float32 is read";
  }
  const int32_t targets = num_target();
  if (targets != 1) return path + " has " + std::to_string(targets) + " targets; a classifier has 1";
  int32_t classes = 0;
  num_class(&classes);
  if (static_cast<uint64_t>(classes) != outputs_per_row) {
    return path + " gives " + std::to_string(classes) + " outputs per row, the model " +
           std::to_string(outputs_per_row);
  }
  n_features_ = n_features;
  outputs_ = outputs_per_row;
  predict_ = predict;
  return "";
}

void CompiledModel::Predict(const float* rows, uint64_t n, float* out) const {
  thread_local std::vector<Entry> entries;
  entries.resize(n_features_);
  for (uint64_t r = 0; r < n; ++r) {
    const float* row = rows + r * n_features_;
    for (int32_t j = 0; j < n_features_; ++j) {
      if (std::isnan(row[j])) {
        entries[j].missing = -1;
      } else {
        entries[j].fvalue = row[j];
      }
    }
    float* result = out + r * outputs_;
    for (uint64_t k = 0; k < outputs_; ++k) result[k] = 0.0f;  // predict adds each tree's leaf to it
    predict_(entries.data(), 0, result);
  }
}

std::string CheckAgainstGtil(const Gtil& gtil, const CompiledModel& compiled, uint64_t n, float tolerance) {
  const std::vector<float> rows = CheckRows(n, gtil.n_features);
  std::vector<float> want(n * gtil.outputs_per_row), got(want.size());
  if (std::string err = gtil.Predict(rows.data(), n, want.data(), false); !err.empty()) return "GTIL: " + err;
  compiled.Predict(rows.data(), n, got.data());
  for (uint64_t i = 0; i < want.size(); ++i) {
    if (!(std::fabs(want[i] - got[i]) <= tolerance)) {
      return "check row " + std::to_string(i / gtil.outputs_per_row) + ": GTIL " + std::to_string(want[i]) +
             ", compiled " + std::to_string(got[i]);
    }
  }
  return "";
}
