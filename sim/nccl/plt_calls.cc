// Exported functions that call other exported functions, kept apart so that those calls go through
// the PLT (see api_internal.h). Signatures come from nccl.h.
#include <cuda.h>
#include <nccl.h>

#include <vector>

#include "api_internal.h"
#include "debug.h"

namespace ncclfr::sim::nccl {

ncclResult_t queryAsyncError(Comm* comm, ncclResult_t* out) {
  return ncclCommGetAsyncError(reinterpret_cast<ncclComm_t>(comm), out);
}

}  // namespace ncclfr::sim::nccl

using namespace ncclfr::sim::nccl;

NCCL_SIM_API(ncclResult_t, ncclBcast, void* buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
             cudaStream_t stream) {
  return ncclBroadcast(buff, buff, count, datatype, root, comm, stream);
}

NCCL_SIM_API(ncclResult_t, ncclCommInitAll, ncclComm_t* comms, int ndev, const int* devlist) {
  if (comms == nullptr) {
    SIM_WARN(-1, "CommInitAll : comms argument is NULL");
    return ncclInvalidArgument;
  }
  if (ndev < 0) {
    SIM_WARN(-1, "Invalid device count requested : %d", ndev);
    return ncclInvalidArgument;
  }
  int total = 0;
  if (cuInit(0) != CUDA_SUCCESS || cuDeviceGetCount(&total) != CUDA_SUCCESS) return ncclUnhandledCudaError;
  if (devlist != nullptr) {
    std::vector<int> seen(static_cast<size_t>(total), 0);
    for (int i = 0; i < ndev; ++i) {
      if (devlist[i] < 0 || devlist[i] >= total) {
        SIM_WARN(-1, "Invalid device %d (totalnDev=%d)", devlist[i], total);
        return ncclInvalidArgument;
      }
      if (seen[static_cast<size_t>(devlist[i])]++ != 0) return ncclInvalidUsage;
    }
  }
  ncclUniqueId id;
  ncclResult_t ret = ncclGetUniqueId(&id);
  if (ret != ncclSuccess) return ret;
  ret = ncclGroupStart();
  if (ret != ncclSuccess) return ret;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  for (int i = 0; i < ndev; ++i) {
    // Errors are collected by the group; ncclGroupEnd reports them and cleans up, as in NCCL.
    (void)initRankDev(comms + i, ndev, id, i, devlist != nullptr ? devlist[i] : i, &config, "ncclCommInitAll");
  }
  return ncclGroupEnd();
}
