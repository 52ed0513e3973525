// The small-request scorers of the C++ backend timed in one process, call by call, on the
// same rows: Treelite's GTIL (one thread, and the backend's thread count) against the
// tl2cgen-compiled library, through the backend's own code (treelite_backend/gtil.cc,
// compiled_model.cc). Driven by deploy/gpu/compiled_bench.py, which builds it:
//
//   c++ -O2 -std=c++17 -Ideploy/gpu/treelite_backend -o predict_bench deploy/gpu/predict_bench.cc
//       deploy/gpu/treelite_backend/gtil.cc deploy/gpu/treelite_backend/compiled_model.cc -ldl
//   predict_bench LIBTREELITE MODEL.tl COMPILED.so ROWS.f32 N_ROWS SCORES_OUT.f32 THREADS CALLS BATCH...
//
// ROWS.f32: N_ROWS x n_features float32 (the capture's rows). SCORES_OUT.f32: GTIL's then the
// compiled library's scores of every row (2 x N_ROWS x outputs per row), for the driver to
// check against ONNX Runtime. Prints one JSON line per batch size (ns per call).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "compiled_model.h"
#include "gtil.h"

namespace {

uint64_t Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<float> Read(const char* path, size_t count) {
  std::vector<float> v(count);
  FILE* f = std::fopen(path, "rb");
  if (!f || std::fread(v.data(), sizeof(float), count, f) != count) {
    std::fprintf(stderr, "cannot read %zu floats from %s\n", count, path);
    std::exit(2);
  }
  std::fclose(f);
  return v;
}

void Fail(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  std::exit(1);
}

std::string Summary(const char* name, std::vector<uint64_t>& ns) {
  std::sort(ns.begin(), ns.end());
  double sum = 0;
  for (uint64_t t : ns) sum += static_cast<double>(t);
  char buf[160];
  std::snprintf(buf, sizeof buf, "\"%s\": {\"p50_ns\": %llu, \"p99_ns\": %llu, \"mean_ns\": %.0f}", name,
                static_cast<unsigned long long>(ns[ns.size() / 2]),
                static_cast<unsigned long long>(ns[ns.size() * 99 / 100]), sum / ns.size());
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 10) Fail("usage: predict_bench LIBTREELITE MODEL.tl COMPILED.so ROWS.f32 N_ROWS OUT.f32 THREADS CALLS BATCH...");
  Gtil gtil;
  if (std::string err = gtil.Open(argv[1], argv[2], std::atoi(argv[7])); !err.empty()) Fail(err);
  CompiledModel compiled;
  if (std::string err = compiled.Open(argv[3], gtil.n_features, gtil.outputs_per_row); !err.empty()) Fail(err);
  const uint64_t n_rows = std::strtoull(argv[5], nullptr, 10);
  const std::vector<float> rows = Read(argv[4], n_rows * gtil.n_features);
  const uint64_t per = gtil.outputs_per_row;

  std::vector<float> scores(2 * n_rows * per);
  if (std::string err = gtil.Predict(rows.data(), n_rows, scores.data(), false); !err.empty()) Fail(err);
  compiled.Predict(rows.data(), n_rows, scores.data() + n_rows * per);
  FILE* out = std::fopen(argv[6], "wb");
  if (!out || std::fwrite(scores.data(), sizeof(float), scores.size(), out) != scores.size()) Fail("cannot write scores");
  std::fclose(out);

  const int calls = std::atoi(argv[8]);
  std::vector<float> result(4096 * per);
  for (int a = 9; a < argc; ++a) {
    const uint64_t batch = std::strtoull(argv[a], nullptr, 10);
    if (batch == 0 || batch > n_rows || batch > 4096) Fail("batch must be 1..min(N_ROWS, 4096)");
    std::vector<uint64_t> serial, threaded, native;
    for (int i = -calls / 10; i < calls; ++i) {  // the first tenth warms caches and thread pools
      const float* x = rows.data() + (static_cast<uint64_t>(i + calls) * batch % (n_rows - batch + 1)) * gtil.n_features;
      const uint64_t t0 = Now();
      if (!gtil.Predict(x, batch, result.data(), false).empty()) Fail("GTIL failed");
      const uint64_t t1 = Now();
      if (!gtil.Predict(x, batch, result.data(), true).empty()) Fail("GTIL failed");
      const uint64_t t2 = Now();
      compiled.Predict(x, batch, result.data());
      const uint64_t t3 = Now();
      if (i < 0) continue;
      serial.push_back(t1 - t0);
      threaded.push_back(t2 - t1);
      native.push_back(t3 - t2);
    }
    std::printf("{\"batch\": %llu, \"calls\": %d, %s, %s, %s}\n", static_cast<unsigned long long>(batch), calls,
                Summary("gtil_1_thread", serial).c_str(), Summary("gtil_threads", threaded).c_str(),
                Summary("compiled", native).c_str());
  }
  return 0;
}
