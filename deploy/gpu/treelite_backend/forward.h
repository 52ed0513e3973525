// Forwarding a request to another model of the same server (the GPU model), answered as
// this model's response: the small-request CPU model becomes the one name clients call.
#pragma once

#include <string>

#include "triton_api.h"

// The response parameter that names what scored a request: "compiled" or "gtil" (this
// backend's scorers), or the model it was forwarded to. Clients and tests read it.
constexpr const char* kScoredBy = "scored_by";

struct ForwardTarget {
  TRITONSERVER_Server* server = nullptr;
  std::string model;  // empty: nothing is forwarded
  int64_t version = -1;
  TRITONSERVER_ResponseAllocator* allocator = nullptr;  // from NewForwardAllocator
};

// The allocator that puts the target model's output straight into the client's response.
TRITONSERVER_Error* NewForwardAllocator(TRITONSERVER_ResponseAllocator** allocator);

// Send `request` (input 0: [rows, n] FP32) to the target; its scores come back as this
// model's response and `request` is released once the target is done with it. On an error
// nothing was sent and the caller still owns `request`.
TRITONSERVER_Error* Forward(const ForwardTarget& target, TRITONBACKEND_ModelInstance* instance,
                            TRITONBACKEND_Request* request, uint64_t exec_start_ns);
