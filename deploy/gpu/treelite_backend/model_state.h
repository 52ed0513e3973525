// One model version's state: its trees in Treelite's GTIL and, where the version directory
// holds one, compiled (compiled_model.h); the config's parameters; where large requests go
// (forward.h).
#pragma once

#include <stdint.h>

#include <string>

#include "compiled_model.h"
#include "forward.h"
#include "gtil.h"
#include "triton_api.h"

// A version's compiled trees, beside model.tl (deploy/gpu/compiled_model.py builds it).
constexpr const char* kCompiledLibrary = "model_compiled.so";

struct ModelState {
  Gtil gtil;
  CompiledModel compiled;       // loaded(): requests below compiled_rows rows are scored by it
  int64_t compiled_rows = 0;
  int64_t parallel_rows = 8;    // GTIL: from this many rows, its threaded configuration
  ForwardTarget large;
  int64_t large_rows = 1024;
  ~ModelState();
};

// Read the version's model.tl (and model_compiled.so, checked against GTIL) and the
// config's parameters (see treelite_backend.cc).
TRITONSERVER_Error* Load(TRITONBACKEND_Model* model, ModelState* state);

// An error whose message names this backend.
TRITONSERVER_Error* Error(int code, const std::string& msg);
