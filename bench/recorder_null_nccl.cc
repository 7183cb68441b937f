// A "null" libnccl.so.2 for bench/recorder_overhead.cc: every call returns ncclSuccess at once, so a
// benchmark over it measures the caller's side only (with the shim in front: the recorder's own
// work). Exports pncclX (strong) and ncclX (weak) like the real library.
#include <nccl.h>

#include <cstdint>

struct ncclComm {
  int rank;
  int nranks;
};

#define NULL_API(name, ...)                                                                        \
  extern "C" __attribute__((visibility("default"))) ncclResult_t p##name(__VA_ARGS__);             \
  extern "C" __attribute__((visibility("default"), weak, alias("p" #name))) ncclResult_t name(__VA_ARGS__); \
  extern "C" ncclResult_t p##name(__VA_ARGS__)

NULL_API(ncclGetVersion, int* v) {
  *v = NCCL_VERSION_CODE;
  return ncclSuccess;
}
NULL_API(ncclGetUniqueId, ncclUniqueId* id) {
  for (int i = 0; i < NCCL_UNIQUE_ID_BYTES; ++i) id->internal[i] = static_cast<char>(i);
  return ncclSuccess;
}
NULL_API(ncclCommInitRank, ncclComm_t* comm, int nranks, ncclUniqueId, int rank) {
  *comm = new ncclComm{rank, nranks};
  return ncclSuccess;
}
NULL_API(ncclCommDestroy, ncclComm_t comm) {
  delete comm;
  return ncclSuccess;
}
NULL_API(ncclCommGetAsyncError, ncclComm_t, ncclResult_t* e) {
  *e = ncclSuccess;
  return ncclSuccess;
}
NULL_API(ncclCommCount, const ncclComm_t comm, int* n) {
  *n = comm->nranks;
  return ncclSuccess;
}
NULL_API(ncclCommUserRank, const ncclComm_t comm, int* r) {
  *r = comm->rank;
  return ncclSuccess;
}
NULL_API(ncclCommCuDevice, const ncclComm_t, int* d) {
  *d = 0;
  return ncclSuccess;
}
NULL_API(ncclAllReduce, const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t) {
  return ncclSuccess;
}
NULL_API(ncclSend, const void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) { return ncclSuccess; }
NULL_API(ncclRecv, void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) { return ncclSuccess; }
NULL_API(ncclGroupStart) { return ncclSuccess; }
NULL_API(ncclGroupEnd) { return ncclSuccess; }
