// The real NCCL entry points, resolved at run time on first use: dlsym(RTLD_NEXT, "pncclX") (the
// strong PMPI-style name), then "ncclX", then the same in dlopen("libnccl.so.2"), since NCCL may be
// linked after us or loaded later. Resolution is racy-but-idempotent (every thread finds the same
// address), so the table needs no lock.
#pragma once

#include <atomic>

#include <nccl.h>

namespace ncclfr::recorder {

#define NCCLFR_FOR_EACH_NCCL_FUNCTION(X)                                                                    \
  X(GetVersion, ncclResult_t, (int* version))                                                                \
  X(GetUniqueId, ncclResult_t, (ncclUniqueId * id))                                                          \
  X(CommInitRank, ncclResult_t, (ncclComm_t * comm, int nranks, ncclUniqueId id, int rank))                  \
  X(CommInitRankConfig, ncclResult_t,                                                                        \
    (ncclComm_t * comm, int nranks, ncclUniqueId id, int rank, ncclConfig_t* config))                       \
  X(CommInitAll, ncclResult_t, (ncclComm_t * comms, int ndev, const int* devlist))                          \
  X(CommInitRankScalable, ncclResult_t,                                                                      \
    (ncclComm_t * comm, int nranks, int rank, int nId, ncclUniqueId* ids, ncclConfig_t* config))            \
  X(CommSplit, ncclResult_t, (ncclComm_t comm, int color, int key, ncclComm_t* newcomm, ncclConfig_t* config)) \
  X(CommShrink, ncclResult_t,                                                                                \
    (ncclComm_t comm, int* exclude, int excludeCount, ncclComm_t* newcomm, ncclConfig_t* config, int flags)) \
  X(CommFinalize, ncclResult_t, (ncclComm_t comm))                                                           \
  X(CommDestroy, ncclResult_t, (ncclComm_t comm))                                                            \
  X(CommAbort, ncclResult_t, (ncclComm_t comm))                                                              \
  X(CommRevoke, ncclResult_t, (ncclComm_t comm, int flags))                                                  \
  X(CommGetAsyncError, ncclResult_t, (ncclComm_t comm, ncclResult_t * error))                                \
  X(CommCount, ncclResult_t, (const ncclComm_t comm, int* count))                                           \
  X(CommUserRank, ncclResult_t, (const ncclComm_t comm, int* rank))                                         \
  X(CommCuDevice, ncclResult_t, (const ncclComm_t comm, int* device))                                       \
  X(AllReduce, ncclResult_t,                                                                                 \
    (const void* s, void* r, size_t n, ncclDataType_t t, ncclRedOp_t op, ncclComm_t c, cudaStream_t st))    \
  X(Broadcast, ncclResult_t,                                                                                 \
    (const void* s, void* r, size_t n, ncclDataType_t t, int root, ncclComm_t c, cudaStream_t st))          \
  X(Bcast, ncclResult_t, (void* b, size_t n, ncclDataType_t t, int root, ncclComm_t c, cudaStream_t st))    \
  X(Reduce, ncclResult_t,                                                                                    \
    (const void* s, void* r, size_t n, ncclDataType_t t, ncclRedOp_t op, int root, ncclComm_t c,            \
     cudaStream_t st))                                                                                       \
  X(AllGather, ncclResult_t, (const void* s, void* r, size_t n, ncclDataType_t t, ncclComm_t c, cudaStream_t st)) \
  X(ReduceScatter, ncclResult_t,                                                                             \
    (const void* s, void* r, size_t n, ncclDataType_t t, ncclRedOp_t op, ncclComm_t c, cudaStream_t st))    \
  X(AlltoAll, ncclResult_t, (const void* s, void* r, size_t n, ncclDataType_t t, ncclComm_t c, cudaStream_t st)) \
  X(Gather, ncclResult_t,                                                                                    \
    (const void* s, void* r, size_t n, ncclDataType_t t, int root, ncclComm_t c, cudaStream_t st))          \
  X(Scatter, ncclResult_t,                                                                                   \
    (const void* s, void* r, size_t n, ncclDataType_t t, int root, ncclComm_t c, cudaStream_t st))          \
  X(Send, ncclResult_t, (const void* s, size_t n, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t st)) \
  X(Recv, ncclResult_t, (void* r, size_t n, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t st))     \
  X(GroupStart, ncclResult_t, ())                                                                            \
  X(GroupEnd, ncclResult_t, ())                                                                              \
  X(GroupSimulateEnd, ncclResult_t, (ncclSimInfo_t * info))

namespace real {
#define NCCLFR_DECLARE_TYPE(name, ret, args) using name##Fn = ret(*) args;
NCCLFR_FOR_EACH_NCCL_FUNCTION(NCCLFR_DECLARE_TYPE)
#undef NCCLFR_DECLARE_TYPE

enum class Fn : int {
#define NCCLFR_DECLARE_ENUM(name, ret, args) name,
  NCCLFR_FOR_EACH_NCCL_FUNCTION(NCCLFR_DECLARE_ENUM)
#undef NCCLFR_DECLARE_ENUM
  kCount
};

// Resolves (once) and returns the real function's address, or null when no loaded NCCL has it.
void* resolve(Fn fn);
extern std::atomic<void*> gTable[static_cast<int>(Fn::kCount)];

template <typename F>
inline F get(Fn fn) {
  void* p = gTable[static_cast<int>(fn)].load(std::memory_order_acquire);
  if (__builtin_expect(p == nullptr, 0)) p = resolve(fn);
  return reinterpret_cast<F>(p);
}

#define NCCLFR_DECLARE_GETTER(name, ret, args) \
  inline name##Fn name() { return get<name##Fn>(Fn::name); }
NCCLFR_FOR_EACH_NCCL_FUNCTION(NCCLFR_DECLARE_GETTER)
#undef NCCLFR_DECLARE_GETTER

// The name of a function ("ncclAllReduce"), for messages.
const char* name(Fn fn);
}  // namespace real

}  // namespace ncclfr::recorder
