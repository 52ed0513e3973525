// See forward.h. The target runs asynchronously: this instance goes on with the next batch
// while the GPU model scores, and Triton's callbacks finish the client's request.

#include "forward.h"

#include <atomic>
#include <chrono>
#include <string>

namespace {

uint64_t Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One forwarded request: done when both the target's response arrived and the target
// released its request (which reads the client's input buffers until then).
struct Forwarded {
  TRITONBACKEND_ModelInstance* instance = nullptr;
  TRITONBACKEND_Request* request = nullptr;    // the client's
  TRITONBACKEND_Response* response = nullptr;  // the client's response, filled by the target
  int64_t rows = 0;
  uint64_t exec_start = 0, compute_start = 0;
  bool sent = false, success = false;
  std::atomic<int> pending{2};
};

void Done(Forwarded* f) {
  if (--f->pending > 0) return;
  if (!f->sent) {  // the target ended without a response
    TRITONSERVER_Error* err = TRITONSERVER_ErrorNew(kErrorInternal, "scorer_treelite: forwarded request got no response");
    Ignore(TRITONBACKEND_ResponseSend(f->response, kResponseCompleteFinal, err));
    Ignore(err);
  }
  const uint64_t end = Now();
  Ignore(TRITONBACKEND_ModelInstanceReportStatistics(f->instance, f->request, f->success, f->exec_start,
                                                     f->compute_start, end, end));
  Ignore(TRITONBACKEND_RequestRelease(f->request, kRequestReleaseAll));
  delete f;
}

TRITONSERVER_Error* Alloc(TRITONSERVER_ResponseAllocator*, const char* name, size_t byte_size, int memory_type,
                          int64_t memory_type_id, void* userp, void** buffer, void** buffer_userp,
                          int* actual_memory_type, int64_t* actual_memory_type_id) {
  auto* f = static_cast<Forwarded*>(userp);
  *buffer = nullptr;
  *buffer_userp = nullptr;
  *actual_memory_type = memory_type;
  *actual_memory_type_id = memory_type_id;
  const int64_t shape[2] = {f->rows, 2};
  TRITONBACKEND_Output* output = nullptr;
  if (auto* err = TRITONBACKEND_ResponseOutput(f->response, &output, name, kTypeFp32, shape, 2)) return err;
  if (byte_size == 0) return nullptr;
  return TRITONBACKEND_OutputBuffer(output, buffer, byte_size, actual_memory_type, actual_memory_type_id);
}

// The buffer belongs to the client's response: nothing to free here.
TRITONSERVER_Error* Release(TRITONSERVER_ResponseAllocator*, void*, void*, size_t, int, int64_t) { return nullptr; }

void Responded(TRITONSERVER_InferenceResponse* response, uint32_t flags, void* userp) {
  auto* f = static_cast<Forwarded*>(userp);
  if (response) {
    TRITONSERVER_Error* err = TRITONSERVER_InferenceResponseError(response);  // owned by the response
    TRITONSERVER_Error* out =
        err ? TRITONSERVER_ErrorNew(TRITONSERVER_ErrorCode(err),
                                    (std::string("forwarded: ") + TRITONSERVER_ErrorMessage(err)).c_str())
            : nullptr;
    f->success = out == nullptr;
    Ignore(TRITONSERVER_InferenceResponseDelete(response));
    Ignore(TRITONBACKEND_ResponseSend(f->response, kResponseCompleteFinal, out));
    Ignore(out);
    f->sent = true;
  }
  if (flags & kResponseCompleteFinal) Done(f);
}

void Released(TRITONSERVER_InferenceRequest* inner, uint32_t flags, void* userp) {
  if (!(flags & kRequestReleaseAll)) return;
  Ignore(TRITONSERVER_InferenceRequestDelete(inner));
  Done(static_cast<Forwarded*>(userp));
}

TRITONSERVER_Error* Build(const ForwardTarget& target, Forwarded* f, TRITONSERVER_InferenceRequest* inner) {
  TRITONBACKEND_Input* input = nullptr;
  if (auto* err = TRITONBACKEND_RequestInputByIndex(f->request, 0, &input)) return err;
  const char* name = nullptr;
  int datatype = 0;
  const int64_t* shape = nullptr;
  uint32_t dims = 0, buffers = 0;
  if (auto* err = TRITONBACKEND_InputProperties(input, &name, &datatype, &shape, &dims, nullptr, &buffers)) return err;
  if (dims < 1) return TRITONSERVER_ErrorNew(kErrorInvalidArg, "scorer_treelite: input has no batch dimension");
  f->rows = shape[0];
  if (auto* err = TRITONSERVER_InferenceRequestAddInput(inner, name, datatype, shape, dims)) return err;
  for (uint32_t b = 0; b < buffers; ++b) {  // the client's buffers, wherever they are: no copy
    const void* base = nullptr;
    uint64_t size = 0;
    int memory = kMemoryCpu;
    int64_t memory_id = 0;
    if (auto* err = TRITONBACKEND_InputBuffer(input, b, &base, &size, &memory, &memory_id)) return err;
    if (auto* err = TRITONSERVER_InferenceRequestAppendInputData(inner, name, base, size, memory, memory_id)) return err;
  }
  if (auto* err = TRITONSERVER_InferenceRequestAddRequestedOutput(inner, "probabilities")) return err;
  if (auto* err = TRITONSERVER_InferenceRequestSetReleaseCallback(inner, Released, f)) return err;
  return TRITONSERVER_InferenceRequestSetResponseCallback(inner, target.allocator, f, Responded, f);
}

}  // namespace

TRITONSERVER_Error* NewForwardAllocator(TRITONSERVER_ResponseAllocator** allocator) {
  return TRITONSERVER_ResponseAllocatorNew(allocator, Alloc, Release, nullptr);
}

TRITONSERVER_Error* Forward(const ForwardTarget& target, TRITONBACKEND_ModelInstance* instance,
                            TRITONBACKEND_Request* request, uint64_t exec_start_ns) {
  auto* f = new Forwarded();
  f->instance = instance;
  f->request = request;
  f->exec_start = exec_start_ns;
  f->compute_start = Now();
  if (auto* err = TRITONBACKEND_ResponseNew(&f->response, request)) {
    delete f;
    return err;
  }
  Ignore(TRITONBACKEND_ResponseSetStringParameter(f->response, kScoredBy, target.model.c_str()));
  TRITONSERVER_InferenceRequest* inner = nullptr;
  TRITONSERVER_Error* err = TRITONSERVER_InferenceRequestNew(&inner, target.server, target.model.c_str(), target.version);
  if (!err) err = Build(target, f, inner);
  if (!err) err = TRITONSERVER_ServerInferAsync(target.server, inner, nullptr);
  if (err) {  // nothing was sent: no callback will run
    if (inner) Ignore(TRITONSERVER_InferenceRequestDelete(inner));
    Ignore(TRITONBACKEND_ResponseDelete(f->response));
    delete f;
  }
  return err;
}
