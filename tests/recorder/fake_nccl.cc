// A stand-in libnccl.so.2 for the recorder's tests on a machine without GPU and without sim/: every
// call returns at once, with behaviours a test selects through the environment. Like the real NCCL
// it exports a strong pncclX and a weak ncclX for each function and calls some of its own exports
// through the PLT (ncclBcast -> ncclBroadcast, ncclCommInitAll -> ncclGetUniqueId, non-blocking
// ncclCommInitRankConfig -> ncclCommGetAsyncError), so the recorder's re-entry guard is exercised.
//
//   FAKE_NCCL_BLOCK_AT=N[,M...]  the N-th work call of the process (0-based) never returns (a rank
//                          stuck inside NCCL), or returns after FAKE_NCCL_BLOCK_MS milliseconds,
//                          or once the file FAKE_NCCL_BLOCK_UNTIL names exists
//   FAKE_NCCL_BLOCKED_MARK=PATH  a call that blocks creates this file first (tests wait for it)
//   FAKE_NCCL_FAIL_AT=N    the N-th work call returns ncclInternalError
//   FAKE_NCCL_ASYNC_ERROR_AFTER=N  ncclCommGetAsyncError reports ncclRemoteError after N work calls
//   FAKE_NCCL_NO_GPU=1     communicator creation fails with ncclUnhandledCudaError
//   FAKE_NCCL_BLOCK_INIT=1 ncclCommInitRank never returns (a peer that never joins)
//   FAKE_NCCL_SPLIT_FAIL=1 a non-blocking parent's split fails in the background: the parent's
//                          ncclCommGetAsyncError reports ncclInternalError from then on
//   FAKE_NCCL_POLL_IN_CALL=1  a work call on a non-blocking communicator has another thread ask
//                          ncclCommGetAsyncError (through the export, as PyTorch's watchdog thread
//                          does) and waits for it before returning ncclInProgress
// A group with a call on a non-blocking communicator returns ncclInProgress from ncclGroupEnd.
// Like NCCL 2.28, ncclCommSplit / ncclCommShrink leave *newcomm NULL until the child is ready:
// inside a group until the outermost ncclGroupEnd, with a non-blocking parent until the parent's
// ncclCommGetAsyncError reports success (the call itself returns ncclSuccess).
#include <fcntl.h>
#include <nccl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

struct ncclComm {
  int rank;
  int nranks;
  int blocking;
  int pendingPolls;  // non-blocking init: polls until it is "ready"
  bool aborted;
  bool splitFailed;  // FAKE_NCCL_SPLIT_FAIL: a split of it failed in the background
};

namespace {

std::atomic<long> gWorkCalls{0};
thread_local int tGroupDepth = 0;
thread_local bool tGroupNonBlocking = false;

// A child communicator whose handle NCCL has not written yet.
struct LateChild {
  ncclComm_t* where;
  ncclComm_t child;
  ncclComm_t parent;
};
thread_local std::vector<LateChild> tGroupChildren;  // written at the outermost ncclGroupEnd
std::mutex gLateMutex;
std::vector<LateChild> gLateChildren;  // written when the (non-blocking) parent reports success

// The handle of a split or shrink: now, at ncclGroupEnd, or once the parent has been polled.
void deliverChild(ncclComm_t parent, ncclComm_t* where, ncclComm_t child) {
  child->pendingPolls = 0;  // ready when its handle is written
  if (tGroupDepth > 0) {
    *where = nullptr;
    tGroupChildren.push_back(LateChild{where, child, parent});
  } else if (!parent->blocking) {
    *where = nullptr;
    const char* fail = std::getenv("FAKE_NCCL_SPLIT_FAIL");
    if (fail != nullptr && std::strcmp(fail, "1") == 0) {
      parent->splitFailed = true;  // the child never comes
      delete child;
      return;
    }
    std::lock_guard<std::mutex> lock(gLateMutex);
    gLateChildren.push_back(LateChild{where, child, parent});
  } else {
    *where = child;
  }
}

long envLong(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::atol(v) : -1;
}

// Whether `n` is in the comma-separated list in variable `name`.
bool listed(const char* name, long n) {
  const char* v = std::getenv(name);
  while (v != nullptr && *v != '\0') {
    char* end = nullptr;
    long x = std::strtol(v, &end, 10);
    if (end == v) return false;
    if (x == n) return true;
    v = *end == ',' ? end + 1 : end;
  }
  return false;
}

ncclResult_t work(ncclComm_t comm) {
  if (comm == nullptr) return ncclInvalidArgument;
  long n = gWorkCalls.fetch_add(1);
  if (listed("FAKE_NCCL_BLOCK_AT", n)) {
    if (const char* mark = std::getenv("FAKE_NCCL_BLOCKED_MARK")) {
      int fd = open(mark, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) close(fd);
    }
    const char* until = std::getenv("FAKE_NCCL_BLOCK_UNTIL");
    long ms = envLong("FAKE_NCCL_BLOCK_MS");
    if (until != nullptr && *until != '\0') {
      while (access(until, F_OK) != 0) usleep(1000);  // a stall the test ends
    } else if (ms <= 0) {
      for (;;) pause();
    } else {
      usleep(static_cast<useconds_t>(ms) * 1000);  // a stall that ends by itself
    }
  }
  if (n == envLong("FAKE_NCCL_FAIL_AT")) return ncclInternalError;
  if (!comm->blocking && tGroupDepth > 0) tGroupNonBlocking = true;
  if (!comm->blocking && tGroupDepth == 0) {
    if (envLong("FAKE_NCCL_POLL_IN_CALL") == 1) {
      std::thread([comm] {
        ncclResult_t state = ncclSuccess;
        ncclCommGetAsyncError(comm, &state);
      }).join();
    }
    return ncclInProgress;
  }
  return ncclSuccess;
}

ncclComm_t makeComm(int rank, int nranks, const ncclConfig_t* config) {
  auto* c = new ncclComm{};
  c->rank = rank;
  c->nranks = nranks;
  c->blocking = 1;
  if (config != nullptr && config->blocking == 0) {
    c->blocking = 0;
    c->pendingPolls = 2;
  }
  return c;
}

bool noGpu() { return envLong("FAKE_NCCL_NO_GPU") == 1; }

}  // namespace

#define FAKE_API(ret, name, ...)                                                        \
  extern "C" __attribute__((visibility("default"))) ret p##name(__VA_ARGS__);            \
  extern "C" __attribute__((visibility("default"), weak, alias("p" #name))) ret name(__VA_ARGS__); \
  extern "C" ret p##name(__VA_ARGS__)

FAKE_API(ncclResult_t, ncclGetVersion, int* version) {
  if (version == nullptr) return ncclInvalidArgument;
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

FAKE_API(ncclResult_t, ncclGetUniqueId, ncclUniqueId* id) {
  if (id == nullptr) return ncclInvalidArgument;
  for (int i = 0; i < NCCL_UNIQUE_ID_BYTES; ++i) id->internal[i] = static_cast<char>((i * 7 + getpid()) & 0xff);
  return ncclSuccess;
}

FAKE_API(ncclResult_t, ncclCommInitRank, ncclComm_t* comm, int nranks, ncclUniqueId, int rank) {
  if (comm == nullptr || nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
  if (noGpu()) return ncclUnhandledCudaError;
  if (envLong("FAKE_NCCL_BLOCK_INIT") == 1) {
    for (;;) pause();  // a peer that never joins
  }
  *comm = makeComm(rank, nranks, nullptr);
  return ncclSuccess;
}

FAKE_API(ncclResult_t, ncclCommInitRankConfig, ncclComm_t* comm, int nranks, ncclUniqueId, int rank,
         ncclConfig_t* config) {
  if (comm == nullptr || nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
  if (noGpu()) return ncclUnhandledCudaError;
  *comm = makeComm(rank, nranks, config);
  ncclResult_t state = ncclSuccess;
  // Real NCCL polls the new communicator through its own export when it is non-blocking.
  if (!(*comm)->blocking) ncclCommGetAsyncError(*comm, &state);
  return (*comm)->blocking ? ncclSuccess : ncclInProgress;
}

FAKE_API(ncclResult_t, ncclCommInitRankScalable, ncclComm_t* comm, int nranks, int rank, int, ncclUniqueId*,
         ncclConfig_t* config) {
  if (comm == nullptr) return ncclInvalidArgument;
  if (noGpu()) return ncclUnhandledCudaError;
  *comm = makeComm(rank, nranks, config);
  return (*comm)->blocking ? ncclSuccess : ncclInProgress;
}

FAKE_API(ncclResult_t, ncclCommInitAll, ncclComm_t* comms, int ndev, const int*) {
  if (comms == nullptr || ndev < 1) return ncclInvalidArgument;
  ncclUniqueId id;
  ncclGetUniqueId(&id);  // through the PLT, like NCCL
  for (int i = 0; i < ndev; ++i) comms[i] = makeComm(i, ndev, nullptr);
  return ncclSuccess;
}

FAKE_API(ncclResult_t, ncclCommSplit, ncclComm_t comm, int color, int key, ncclComm_t* newcomm, ncclConfig_t* config) {
  (void)key;
  if (comm == nullptr || newcomm == nullptr) return ncclInvalidArgument;
  if (color == NCCL_SPLIT_NOCOLOR) {
    *newcomm = nullptr;
    return ncclSuccess;
  }
  deliverChild(comm, newcomm, makeComm(comm->rank, comm->nranks, config));
  return ncclSuccess;
}

FAKE_API(ncclResult_t, ncclCommShrink, ncclComm_t comm, int*, int excludeCount, ncclComm_t* newcomm,
         ncclConfig_t* config, int) {
  if (comm == nullptr || newcomm == nullptr) return ncclInvalidArgument;
  deliverChild(comm, newcomm, makeComm(0, comm->nranks - excludeCount, config));
  return ncclSuccess;
}

FAKE_API(ncclResult_t, ncclCommFinalize, ncclComm_t comm) { return comm ? ncclSuccess : ncclInvalidArgument; }
FAKE_API(ncclResult_t, ncclCommDestroy, ncclComm_t comm) {
  delete comm;
  return ncclSuccess;
}
FAKE_API(ncclResult_t, ncclCommAbort, ncclComm_t comm) {
  delete comm;
  return ncclSuccess;
}
FAKE_API(ncclResult_t, ncclCommRevoke, ncclComm_t comm, int) {
  if (comm) comm->aborted = true;
  return ncclSuccess;
}

FAKE_API(ncclResult_t, ncclCommGetAsyncError, ncclComm_t comm, ncclResult_t* error) {
  if (comm == nullptr || error == nullptr) return ncclInvalidArgument;
  long after = envLong("FAKE_NCCL_ASYNC_ERROR_AFTER");
  if (comm->splitFailed) {
    *error = ncclInternalError;
  } else if (after >= 0 && gWorkCalls.load() >= after) {
    *error = ncclRemoteError;
  } else if (comm->pendingPolls > 0) {
    --comm->pendingPolls;
    *error = ncclInProgress;
  } else {
    *error = ncclSuccess;
    // The parent's split or shrink has finished: the child's handle is written now.
    std::lock_guard<std::mutex> lock(gLateMutex);
    for (auto it = gLateChildren.begin(); it != gLateChildren.end();) {
      if (it->parent == comm) {
        *it->where = it->child;
        it = gLateChildren.erase(it);
      } else {
        ++it;
      }
    }
  }
  return ncclSuccess;
}

FAKE_API(ncclResult_t, ncclCommCount, const ncclComm_t comm, int* count) {
  if (comm == nullptr || count == nullptr) return ncclInvalidArgument;
  *count = comm->nranks;
  return ncclSuccess;
}
FAKE_API(ncclResult_t, ncclCommUserRank, const ncclComm_t comm, int* rank) {
  if (comm == nullptr || rank == nullptr) return ncclInvalidArgument;
  *rank = comm->rank;
  return ncclSuccess;
}
FAKE_API(ncclResult_t, ncclCommCuDevice, const ncclComm_t comm, int* device) {
  if (comm == nullptr || device == nullptr) return ncclInvalidArgument;
  *device = 0;
  return ncclSuccess;
}
FAKE_API(const char*, ncclGetErrorString, ncclResult_t) { return "fake"; }

FAKE_API(ncclResult_t, ncclAllReduce, const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t comm,
         cudaStream_t) {
  return work(comm);
}
FAKE_API(ncclResult_t, ncclBroadcast, const void*, void*, size_t, ncclDataType_t, int, ncclComm_t comm, cudaStream_t) {
  return work(comm);
}
FAKE_API(ncclResult_t, ncclBcast, void* buff, size_t count, ncclDataType_t type, int root, ncclComm_t comm,
         cudaStream_t stream) {
  return ncclBroadcast(buff, buff, count, type, root, comm, stream);  // through the PLT, like NCCL
}
FAKE_API(ncclResult_t, ncclReduce, const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, int, ncclComm_t comm,
         cudaStream_t) {
  return work(comm);
}
FAKE_API(ncclResult_t, ncclAllGather, const void*, void*, size_t, ncclDataType_t, ncclComm_t comm, cudaStream_t) {
  return work(comm);
}
FAKE_API(ncclResult_t, ncclReduceScatter, const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t comm,
         cudaStream_t) {
  return work(comm);
}
FAKE_API(ncclResult_t, ncclAlltoAll, const void*, void*, size_t, ncclDataType_t, ncclComm_t comm, cudaStream_t) {
  return work(comm);
}
FAKE_API(ncclResult_t, ncclGather, const void*, void*, size_t, ncclDataType_t, int, ncclComm_t comm, cudaStream_t) {
  return work(comm);
}
FAKE_API(ncclResult_t, ncclScatter, const void*, void*, size_t, ncclDataType_t, int, ncclComm_t comm, cudaStream_t) {
  return work(comm);
}
FAKE_API(ncclResult_t, ncclSend, const void*, size_t, ncclDataType_t, int, ncclComm_t comm, cudaStream_t) {
  return work(comm);
}
FAKE_API(ncclResult_t, ncclRecv, void*, size_t, ncclDataType_t, int, ncclComm_t comm, cudaStream_t) {
  return work(comm);
}
FAKE_API(ncclResult_t, ncclGroupStart) {
  ++tGroupDepth;
  return ncclSuccess;
}
FAKE_API(ncclResult_t, ncclGroupEnd) {
  if (tGroupDepth == 0) return ncclInvalidUsage;
  if (--tGroupDepth > 0) return ncclSuccess;
  for (const LateChild& c : tGroupChildren) deliverChild(c.parent, c.where, c.child);
  tGroupChildren.clear();
  if (!tGroupNonBlocking) return ncclSuccess;
  tGroupNonBlocking = false;
  return ncclInProgress;
}
FAKE_API(ncclResult_t, ncclGroupSimulateEnd, ncclSimInfo_t*) {
  if (tGroupDepth == 0) return ncclInvalidUsage;
  if (--tGroupDepth == 0) tGroupNonBlocking = false;
  return ncclSuccess;
}
