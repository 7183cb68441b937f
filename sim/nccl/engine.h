// The "kernels": what runs on a stream when NCCL work is launched. A batch holds one communicator's
// operations from one group (or one ungrouped call) and runs as a host function on the launch
// stream, so it blocks that stream until it is done, exactly like an NCCL kernel. Inside a batch,
// collectives run in order and every send/recv progresses concurrently with them, so send/recv
// pairs in a group never deadlock; a batch sleeps on its rank's doorbell whenever it cannot progress.
#pragma once

#include <cuda.h>
#include <nccl.h>

#include <cstdint>
#include <vector>

#include "comm.h"
#include "reduce.h"

namespace ncclfr::sim::nccl {

// NCCL's ncclFunc_t order for the collectives, then the rest.
enum class Func : uint32_t {
  Broadcast = 0, Reduce, AllGather, ReduceScatter, AllReduce, AlltoAll, Gather, Scatter, Send, Recv
};
const char* funcName(Func f);

struct Task {
  Func func = Func::AllReduce;
  const void* sendbuff = nullptr;
  void* recvbuff = nullptr;
  size_t count = 0;
  ncclDataType_t dtype = ncclFloat32;
  ncclRedOp_t userOp = ncclSum;  // as the caller passed it (for mismatch reports)
  RedOp op;                      // resolved when the task was appended
  int root = 0;                  // root, or peer for send/recv
  CUstream stream = nullptr;
};

struct Batch {
  Comm* comm = nullptr;  // holds a reference
  uint64_t seq = 0;
  std::vector<Task> tasks;
};

// Runs a batch to completion (or until its communicator is aborted), then frees it.
void runBatch(Batch* batch);

}  // namespace ncclfr::sim::nccl
