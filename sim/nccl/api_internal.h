// Pieces of the exported API that other exported functions use. Calls that real NCCL makes to its
// own exported functions (ncclBcast -> ncclBroadcast, ncclCommInitAll -> ncclGetUniqueId and
// ncclGroupStart/End, the readiness check -> ncclCommGetAsyncError) live in plt_calls.cc, a
// separate translation unit, so they bind through the PLT and a preloaded interposer sees them,
// exactly as with the real library.
#pragma once

#include <nccl.h>

#include "comm.h"

#define NCCL_SIM_API(ret, func, ...)                                                                   \
  extern "C" __attribute__((visibility("default"))) ret p##func(__VA_ARGS__);                           \
  extern "C" __attribute__((visibility("default"), weak, alias("p" #func))) ret func(__VA_ARGS__); \
  extern "C" ret p##func(__VA_ARGS__)

namespace ncclfr::sim::nccl {

ncclResult_t commCheck(ncclComm_t comm, const char* opName);
// NCCL's ncclCommEnsureReady: a communicator still in ncclInProgress may not be used
// (ncclInvalidArgument); one in error reports that error. Calls ncclCommGetAsyncError (plt_calls.cc).
ncclResult_t ensureReady(Comm* comm);
ncclResult_t queryAsyncError(Comm* comm, ncclResult_t* out);  // through the PLT
ncclResult_t initRankDev(ncclComm_t* newcomm, int nranks, const ncclUniqueId& id, int rank, int cudaDev,
                         const ncclConfig_t* config, const char* funcName);
int currentDevice();

}  // namespace ncclfr::sim::nccl
