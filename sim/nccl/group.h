// NCCL's group semantics: per-thread depth; operations and communicator inits between
// ncclGroupStart and the outermost ncclGroupEnd are collected and launched there, and every API
// call runs inside an implicit group of its own (as ncclEnqueueCheck does).
#pragma once

#include <nccl.h>

#include <functional>

#include "comm.h"
#include "engine.h"

namespace ncclfr::sim::nccl {

// A communicator creation (init, split, shrink) deferred to the end of its group.
struct PendingInit {
  Comm* created = nullptr;  // the new communicator, freed if a blocking creation fails (may be null)
  Comm* tracker = nullptr;  // reports ncclInProgress while a non-blocking creation runs
  ncclComm_t* out = nullptr;  // set to null if a blocking creation fails
  bool blocking = true;
  std::function<ncclResult_t()> run;  // the rendezvous; runs at group end, concurrently with the others
};

void groupStart();
// The outermost call launches; `simulate` discards the operations instead (ncclGroupSimulateEnd).
ncclResult_t groupEnd(ncclSimInfo_t* simInfo, bool simulate);
int groupDepth();
// ncclGroupErrCheck: an error inside a group fails the whole group at ncclGroupEnd.
ncclResult_t groupError(ncclResult_t r);
ncclResult_t appendOp(Comm* comm, const Task& task);
void appendInit(PendingInit init);
// Whether `comm`'s creation is still deferred in this thread's open group (it has not started).
bool initDeferredHere(const Comm* comm);

}  // namespace ncclfr::sim::nccl
