// sim/'s libnccl.so.2: the NCCL 2.28 host API. Every function is exported twice, as a weak ncclX
// and a strong pncclX, like the real library (NCCL_SIM_API). Argument checks and their return codes
// follow NCCL's (init.cc, enqueue.cc, argcheck.cc, group.cc); nccl.h is included so signatures
// cannot drift from NCCL's.
#include <cuda.h>
#include <nccl.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "api_internal.h"
#include "comm.h"
#include "debug.h"
#include "engine.h"
#include "group.h"
#include "reduce.h"
#include "segment.h"

namespace ncclfr::sim::nccl {

ncclResult_t commCheck(ncclComm_t comm, const char* opName) {
  if (comm == nullptr) {
    SIM_WARN(-1, "%s : comm argument is NULL", opName);
    return ncclInvalidArgument;
  }
  if (!reinterpret_cast<Comm*>(comm)->valid()) {
    SIM_WARN(-1, "Error: corrupted comm object detected");
    return ncclInvalidArgument;
  }
  return ncclSuccess;
}

ncclResult_t ensureReady(Comm* comm) {
  ncclResult_t state = ncclSuccess;
  if (ncclResult_t r = queryAsyncError(comm, &state); r != ncclSuccess) return r;
  if (state == ncclSuccess) return ncclSuccess;
  SIM_WARN(comm->cudaDev, "Attempt to use communicator before the previous operation returned ncclSuccess");
  return state == ncclInProgress ? ncclInvalidArgument : state;
}

int currentDevice() {
  if (cuInit(0) != CUDA_SUCCESS) return 0;
  CUdevice dev = 0;
  if (cuCtxGetDevice(&dev) == CUDA_SUCCESS) return dev;
  // No current context yet: the runtime would make device 0's primary context current.
  CUcontext ctx = nullptr;
  if (cuDevicePrimaryCtxRetain(&ctx, 0) == CUDA_SUCCESS) (void)cuCtxSetCurrent(ctx);
  return 0;
}

namespace {

// As NCCL: rank 0 prints the version at NCCL_DEBUG=VERSION and WARN, every rank at INFO.
void showVersion(int rank) {
  static std::once_flag once;
  std::call_once(once, [rank] {
    if (debugLevel() > LogLevel::Warn || (debugLevel() != LogLevel::None && rank == 0)) {
      std::printf("NCCL version %d.%d.%d+ncclfr-sim\n", NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
      std::fflush(stdout);
    }
  });
}

bool parseId(const ncclUniqueId& id, std::string* name) {
  UniqueIdPayload p;
  std::memcpy(&p, id.internal, sizeof p);
  if (std::memcmp(p.magic, kIdMagic, sizeof kIdMagic) != 0) return false;
  p.name[sizeof p.name - 1] = '\0';
  *name = p.name;
  return !name->empty();
}

// What every enqueueing call does (NCCL's ncclEnqueueCheck): an implicit group around argument
// checks and the append; for a non-blocking communicator the result is its async state.
ncclResult_t enqueue(const char* opName, Func func, const void* sendbuff, void* recvbuff, size_t count,
                     ncclDataType_t datatype, ncclRedOp_t op, int root, ncclComm_t comm, cudaStream_t stream) {
  groupStart();
  ncclResult_t ret = commCheck(comm, opName);
  Comm* c = reinterpret_cast<Comm*>(comm);
  bool refusedRevoked = false;
  if (ret == ncclSuccess && c->revoked.load()) {
    SIM_WARN(c->cudaDev, "%s: communicator was revoked", opName);
    ret = ncclInvalidUsage;
    refusedRevoked = true;
  }
  if (ret == ncclSuccess) ret = ensureReady(c);
  if (ret == ncclSuccess && c->finalizeCalled) {
    SIM_WARN(c->cudaDev, "%s: communicator was finalized", opName);
    ret = ncclInvalidUsage;
  }
  Task t;
  if (ret == ncclSuccess) {
    if (root < 0 || root >= c->nranks) {
      SIM_WARN(c->cudaDev, "%s : invalid root %d (root should be in the 0..%d range)", opName, root, c->nranks);
      ret = ncclInvalidArgument;
    } else if (static_cast<int>(datatype) < 0 || static_cast<int>(datatype) >= ncclNumTypes) {
      SIM_WARN(c->cudaDev, "%s : invalid type %d", opName, static_cast<int>(datatype));
      ret = ncclInvalidArgument;
    } else if (static_cast<int>(op) < 0 || static_cast<int>(op) > static_cast<int>(ncclMaxRedOp)) {
      SIM_WARN(c->cudaDev, "%s : invalid reduction operation %d", opName, static_cast<int>(op));
      ret = ncclInvalidArgument;
    } else if (static_cast<int>(op) >= ncclNumOps) {
      std::lock_guard<std::mutex> lock(c->redOpMu);
      auto ix = static_cast<size_t>(static_cast<int>(op) - ncclNumOps);
      if (ix >= c->userOps.size() || !c->userOps[ix].live) {
        SIM_WARN(c->cudaDev, "%s : reduction operation %d unknown to this communicator", opName, static_cast<int>(op));
        ret = ncclInvalidArgument;
      } else if (c->userOps[ix].type != datatype) {
        SIM_WARN(c->cudaDev,
                 "Data type supplied to user-created ncclRedOp_t does not match type given to reduction operation");
        ret = ncclInvalidArgument;
      } else {
        t.op = c->userOps[ix].op;
      }
    } else {
      t.op = builtinOp(op, datatype, c->nranks);
    }
  }
  if (ret == ncclSuccess) {
    t.func = func;
    t.sendbuff = sendbuff;
    t.recvbuff = recvbuff;
    t.count = count;
    t.dtype = datatype;
    t.userOp = op;
    t.root = root;
    t.stream = reinterpret_cast<CUstream>(stream);
    SIM_INFO(c->cudaDev, "%s: opCount %llx sendbuff %p recvbuff %p count %zu datatype %d op %d root %d comm %p [nranks=%d] stream %p",
             opName, static_cast<unsigned long long>(c->launched), sendbuff, static_cast<void*>(recvbuff), count,
             static_cast<int>(datatype), static_cast<int>(op), root, static_cast<void*>(c), c->nranks,
             static_cast<void*>(stream));
    ret = appendOp(c, t);
  }
  // NCCL records a failed call on a non-blocking communicator as the communicator's state, except
  // the refusal of a revoked one: ncclEnqueueCheck returns that before it records anything, so the
  // revoked communicator stays ncclSuccess and can still be destroyed, split or shrunk.
  if (ret != ncclSuccess && !refusedRevoked && c != nullptr && c->valid() && !c->config.blocking) {
    setAsyncError(c, ret);
  }
  groupError(ret);
  ncclResult_t end = groupEnd(nullptr, false);
  if (ret == ncclSuccess && end != ncclSuccess && end != ncclInProgress) ret = end;
  if (c != nullptr && ret == ncclSuccess && c->valid() && !c->config.blocking) (void)queryAsyncError(c, &ret);
  return ret;
}

}  // namespace

ncclResult_t initRankDev(ncclComm_t* newcomm, int nranks, const ncclUniqueId& id, int rank, int cudaDev,
                         const ncclConfig_t* config, const char* funcName) {
  showVersion(rank);
  if (newcomm == nullptr) {
    SIM_WARN(cudaDev, "CommInitRank : newcomm argument is NULL");
    return groupError(ncclInvalidArgument);
  }
  publishComm(newcomm, nullptr);
  if (nranks < 1 || rank < 0 || rank >= nranks) {
    SIM_WARN(cudaDev, "Invalid rank requested : %d/%d", rank, nranks);
    return groupError(ncclInvalidArgument);
  }
  CommConfig cfg;
  if (ncclResult_t r = parseConfig(config, &cfg); r != ncclSuccess) return groupError(r);
  std::string name;
  if (!parseId(id, &name)) {
    SIM_WARN(cudaDev, "%s: the ncclUniqueId was not made by ncclGetUniqueId", funcName);
    return groupError(ncclInvalidArgument);
  }
  Comm* c = newComm(cudaDev, cfg);
  if (cfg.blocking != 0) c->initPending.store(1);
  publishComm(newcomm, c);
  const uint64_t hash = getHash(id.internal, NCCL_UNIQUE_ID_BYTES);
  PendingInit in;
  in.created = c;
  in.tracker = c;
  in.out = newcomm;
  in.blocking = cfg.blocking != 0;
  in.run = [c, name, nranks, rank, hash] { return joinSegment(c, name, nranks, rank, hash); };
  if (!in.blocking) setAsyncError(c, ncclInProgress);
  appendInit(std::move(in));
  return ncclSuccess;
}

}  // namespace ncclfr::sim::nccl

using namespace ncclfr::sim::nccl;

// ---- version, ids, errors -------------------------------------------------------------------
NCCL_SIM_API(ncclResult_t, ncclGetVersion, int* version) {
  if (version == nullptr) return ncclInvalidArgument;
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

NCCL_SIM_API(ncclResult_t, ncclGetUniqueId, ncclUniqueId* uniqueId) {
  if (uniqueId == nullptr) {
    SIM_WARN(-1, "GetUniqueId : out argument is NULL");
    return ncclInvalidArgument;
  }
  std::string name;
  if (ncclResult_t r = Segment::create(&name); r != ncclSuccess) return r;
  UniqueIdPayload p{};
  std::memcpy(p.magic, kIdMagic, sizeof kIdMagic);
  std::snprintf(p.name, sizeof p.name, "%s", name.c_str());
  std::memset(uniqueId, 0, sizeof *uniqueId);
  std::memcpy(uniqueId->internal, &p, sizeof p);
  return ncclSuccess;
}

NCCL_SIM_API(const char*, ncclGetErrorString, ncclResult_t code) {
  switch (code) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
  }
}

NCCL_SIM_API(const char*, ncclGetLastError, ncclComm_t comm) {
  (void)comm;  // unused, as in NCCL
  return lastError();
}

NCCL_SIM_API(void, ncclResetDebugInit) {}

// ---- communicator creation ------------------------------------------------------------------
NCCL_SIM_API(ncclResult_t, ncclCommInitRankConfig, ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank,
             ncclConfig_t* config) {
  groupStart();
  ncclConfig_t defaults = NCCL_CONFIG_INITIALIZER;
  ncclResult_t ret = initRankDev(comm, nranks, commId, rank, currentDevice(), config != nullptr ? config : &defaults,
                                 "ncclCommInitRankConfig");
  groupError(ret);
  ncclResult_t end = groupEnd(nullptr, false);
  if (ret == ncclSuccess) ret = end;
  if (comm != nullptr && *comm != nullptr && !reinterpret_cast<Comm*>(*comm)->config.blocking) {
    (void)queryAsyncError(reinterpret_cast<Comm*>(*comm), &ret);
  }
  return ret;
}

NCCL_SIM_API(ncclResult_t, ncclCommInitRank, ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank) {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  return pncclCommInitRankConfig(comm, nranks, commId, rank, &config);
}

NCCL_SIM_API(ncclResult_t, ncclCommInitRankScalable, ncclComm_t* newcomm, int nranks, int myrank, int nId,
             ncclUniqueId* commIds, ncclConfig_t* config) {
  if (nId <= 0 || nId > nranks) {
    SIM_WARN(-1, "improper usage of ncclCommInitRank: nId = %d, nranks=%d", nId, nranks);
    return ncclInvalidArgument;
  }
  if (commIds == nullptr) {
    SIM_WARN(-1, "CommInitRankScalable : commIds argument is NULL");
    return ncclInvalidArgument;
  }
  // Every rank passes the same nId ids; they meet at the first (NCCL hashes that one too).
  groupStart();
  ncclConfig_t defaults = NCCL_CONFIG_INITIALIZER;
  ncclResult_t ret = initRankDev(newcomm, nranks, commIds[0], myrank, currentDevice(),
                                 config != nullptr ? config : &defaults, "ncclCommInitRankScalable");
  groupError(ret);
  ncclResult_t end = groupEnd(nullptr, false);
  if (ret == ncclSuccess) ret = end;
  if (newcomm != nullptr && *newcomm != nullptr && !reinterpret_cast<Comm*>(*newcomm)->config.blocking) {
    (void)queryAsyncError(reinterpret_cast<Comm*>(*newcomm), &ret);
  }
  return ret;
}

namespace {

// Split and shrink share everything but the participants and the color/key.
ncclResult_t createChild(const char* opName, ncclComm_t comm, int color, int key, ncclComm_t* newcomm,
                         ncclConfig_t* config, const std::vector<int>& participants, bool isShrink) {
  Comm* parent = reinterpret_cast<Comm*>(comm);
  CommConfig cfg = parent->config;
  if (config != nullptr) {
    if (ncclResult_t r = parseConfig(config, &cfg); r != ncclSuccess) return r;
  } else {
    applyEnvOverrides(&cfg);
  }
  *newcomm = nullptr;
  Comm* child = color == NCCL_SPLIT_NOCOLOR ? nullptr : newComm(parent->cudaDev, cfg);
  PendingInit in;
  in.created = child;
  in.tracker = parent;
  in.out = newcomm;
  in.blocking = cfg.blocking != 0;
  in.run = [parent, child, color, key, participants, isShrink, newcomm]() -> ncclResult_t {
    ncclResult_t r = splitJoin(parent, child, color, key, participants, isShrink);
    if (r == ncclSuccess && child != nullptr) *newcomm = reinterpret_cast<ncclComm_t>(child);
    return r;
  };
  (void)opName;
  appendInit(std::move(in));
  return ncclSuccess;
}

}  // namespace

NCCL_SIM_API(ncclResult_t, ncclCommSplit, ncclComm_t comm, int color, int key, ncclComm_t* newcomm,
             ncclConfig_t* config) {
  groupStart();
  ncclResult_t ret = commCheck(comm, "CommSplit");
  if (ret == ncclSuccess && newcomm == nullptr) {
    SIM_WARN(-1, "CommSplit : newcomm argument is NULL");
    ret = ncclInvalidArgument;
  }
  Comm* parent = reinterpret_cast<Comm*>(comm);
  if (ret == ncclSuccess) ret = ensureReady(parent);
  if (ret == ncclSuccess && color < 0 && color != NCCL_SPLIT_NOCOLOR) {
    SIM_WARN(parent->cudaDev, "CommSplit : color %d must be >= 0 or NCCL_SPLIT_NOCOLOR", color);
    ret = ncclInvalidArgument;
  }
  if (ret == ncclSuccess) {
    std::vector<int> all(static_cast<size_t>(parent->nranks));
    for (int r = 0; r < parent->nranks; ++r) all[static_cast<size_t>(r)] = r;
    ret = createChild("ncclCommSplit", comm, color, key, newcomm, config, all, false);
  }
  if (ret != ncclSuccess && newcomm != nullptr) *newcomm = nullptr;
  groupError(ret);
  ncclResult_t end = groupEnd(nullptr, false);
  if (ret == ncclSuccess) ret = end;
  return ret;
}

NCCL_SIM_API(ncclResult_t, ncclCommShrink, ncclComm_t comm, int* excludeRanksList, int excludeRanksCount,
             ncclComm_t* newcomm, ncclConfig_t* config, int shrinkFlags) {
  groupStart();
  ncclResult_t ret = commCheck(comm, "ncclCommShrink");
  Comm* parent = reinterpret_cast<Comm*>(comm);
  if (ret == ncclSuccess && newcomm == nullptr) {
    SIM_WARN(-1, "ncclCommShrink : newcomm argument is NULL");
    ret = ncclInvalidArgument;
  }
  if (ret == ncclSuccess && excludeRanksList == nullptr) {
    SIM_WARN(parent->cudaDev, "ncclCommShrink : excludeRanksList argument is NULL");
    ret = ncclInvalidArgument;
  }
  if (ret == ncclSuccess && excludeRanksCount <= 0) ret = ncclInvalidArgument;
  std::vector<int> excluded;
  if (ret == ncclSuccess) {
    excluded.assign(excludeRanksList, excludeRanksList + excludeRanksCount);
    std::sort(excluded.begin(), excluded.end());
    for (int r : excluded) {
      if (r < 0 || r >= parent->nranks) {
        SIM_WARN(parent->cudaDev, "ncclCommShrink : excluded rank %d is not in 0..%d", r, parent->nranks - 1);
        ret = ncclInvalidArgument;
      }
    }
    // Excluded ranks do not call ncclCommShrink.
    if (std::binary_search(excluded.begin(), excluded.end(), parent->rank)) ret = ncclInvalidArgument;
  }
  if (ret == ncclSuccess && (shrinkFlags & NCCL_SHRINK_ABORT)) {
    // Error mode: stop whatever is stuck on the parent (e.g. waiting for the dead rank) first.
    stopInflight(parent);
    waitQuiescent(parent);
    parent->abortFlag.store(false);
  }
  // Unlike split, shrink must work on a communicator in error: removing a failed rank is its purpose.
  // Only an operation still in progress makes it fail.
  if (ret == ncclSuccess && ensureReady(parent) == ncclInvalidArgument) ret = ncclInvalidArgument;
  if (ret == ncclSuccess) {
    std::vector<int> survivors;
    for (int r = 0; r < parent->nranks; ++r) {
      if (!std::binary_search(excluded.begin(), excluded.end(), r)) survivors.push_back(r);
    }
    ret = createChild("ncclCommShrink", comm, 0, parent->rank, newcomm, config, survivors, true);
  }
  if (ret != ncclSuccess && newcomm != nullptr) *newcomm = nullptr;
  groupError(ret);
  ncclResult_t end = groupEnd(nullptr, false);
  if (ret == ncclSuccess) ret = end;
  return ret;
}

// ---- communicator teardown ------------------------------------------------------------------
NCCL_SIM_API(ncclResult_t, ncclCommFinalize, ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  if (ncclResult_t r = commCheck(comm, "ncclCommFinalize"); r != ncclSuccess) return r;
  Comm* c = reinterpret_cast<Comm*>(comm);
  if (ncclResult_t r = ensureReady(c); r != ncclSuccess) return r;
  if (c->finalizeCalled) {
    SIM_WARN(c->cudaDev, "ncclCommFinalize: communicator %p is already finalized", static_cast<void*>(c));
    return ncclInvalidArgument;
  }
  if (c->revoked.load()) {
    SIM_WARN(c->cudaDev, "ncclCommFinalize: communicator %p was revoked", static_cast<void*>(c));
    return ncclInvalidUsage;
  }
  c->finalizeCalled = true;
  auto finish = [c] {
    waitQuiescent(c);
    c->mySlot()->state.store(kSlotFinalized);
  };
  if (c->config.blocking) {
    finish();
    return ncclSuccess;
  }
  setAsyncError(c, ncclInProgress);
  c->ref();
  startJob(c, [c, finish] {
    finish();
    int expected = ncclInProgress;
    c->asyncError.compare_exchange_strong(expected, ncclSuccess);
    c->unref();
  });
  ncclResult_t ret = ncclSuccess;
  (void)queryAsyncError(c, &ret);
  return ret;
}

NCCL_SIM_API(ncclResult_t, ncclCommDestroy, ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  Comm* c = reinterpret_cast<Comm*>(comm);
  if (!c->valid()) {
    SIM_WARN(-1, "comm %p has already been destroyed", static_cast<void*>(comm));
    return ncclInvalidArgument;
  }
  // NCCL refuses to destroy a communicator in error or still in progress: abort it instead.
  if (ncclResult_t r = ensureReady(c); r != ncclSuccess) return r;
  joinJob(c, true);
  // Like NCCL's commDestroySync: outstanding work must finish first, so destroying a communicator
  // with a hung collective hangs too.
  if (!c->finalizeCalled) waitQuiescent(c);
  c->mySlot()->state.store(kSlotLeft);
  monitorRemove(c);
  SIM_INFO(c->cudaDev, "comm %p rank %d nranks %d cudaDev %d - Destroy COMPLETE", static_cast<void*>(c), c->rank,
           c->nranks, c->cudaDev);
  c->magic = kDeadCommMagic;
  c->unref();
  return ncclSuccess;
}

NCCL_SIM_API(ncclResult_t, ncclCommAbort, ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  Comm* c = reinterpret_cast<Comm*>(comm);
  if (!c->valid()) {
    SIM_WARN(-1, "comm %p has already been destroyed", static_cast<void*>(comm));
    return ncclInvalidArgument;
  }
  c->aborted.store(true);
  c->abortFlag.store(true);
  joinJob(c, true);  // an initialisation in progress notices the abort within a second
  // So does a blocking one waiting on another thread, which uses the comm and its segment until it
  // returns: wait for that, or the unref below would unmap the segment under it. (One still deferred
  // in this thread's open group has not started, and finds the abort flag when it does.)
  if (!initDeferredHere(c)) {
    for (uint32_t v; (v = c->initPending.load()) != 0;) ncclfr::sim::futexWait(&c->initPending, v, 100);
  }
  if (c->initialized.load()) {
    c->mySlot()->state.store(kSlotAborted);
    // Everything stuck on the communicator's streams returns now; work queued behind other work
    // on those streams finds the abort flag when it starts and returns at once.
    stopInflight(c);
    monitorRemove(c);
  }
  SIM_INFO(c->cudaDev, "comm %p rank %d nranks %d cudaDev %d - Abort COMPLETE", static_cast<void*>(c), c->rank,
           c->nranks, c->cudaDev);
  c->magic = kDeadCommMagic;
  c->unref();
  return ncclSuccess;
}

NCCL_SIM_API(ncclResult_t, ncclCommRevoke, ncclComm_t comm, int revokeFlags) {
  if (ncclResult_t r = commCheck(comm, "ncclCommRevoke"); r != ncclSuccess) return r;
  Comm* c = reinterpret_cast<Comm*>(comm);
  if (revokeFlags != NCCL_REVOKE_DEFAULT) {
    SIM_WARN(c->cudaDev, "ncclCommRevoke: revokeFlags must be NCCL_REVOKE_DEFAULT, not %d", revokeFlags);
    return ncclInvalidArgument;
  }
  if (c->revoked.load() || c->finalizeCalled) {
    SIM_WARN(c->cudaDev, "ncclCommRevoke: communicator %p is already %s", static_cast<void*>(c),
             c->revoked.load() ? "revoked" : "finalized");
    return ncclInvalidArgument;
  }
  if (!c->initialized.load()) return ensureReady(c);
  c->revoked.store(true);
  auto quiesce = [c] {
    stopInflight(c);
    waitQuiescent(c);
    c->abortFlag.store(false);
  };
  if (c->config.blocking) {
    quiesce();
    return ncclSuccess;
  }
  setAsyncError(c, ncclInProgress);
  c->ref();
  startJob(c, [c, quiesce] {
    quiesce();
    int expected = ncclInProgress;
    c->asyncError.compare_exchange_strong(expected, ncclSuccess);
    c->unref();
  });
  return ncclInProgress;
}

NCCL_SIM_API(ncclResult_t, ncclCommGetAsyncError, ncclComm_t comm, ncclResult_t* asyncError) {
  if (ncclResult_t r = commCheck(comm, "ncclGetAsyncError"); r != ncclSuccess) return r;
  if (asyncError == nullptr) {
    SIM_WARN(-1, "ncclGetAsyncError : asyncError argument is NULL");
    return ncclInvalidArgument;
  }
  Comm* c = reinterpret_cast<Comm*>(comm);
  *asyncError = static_cast<ncclResult_t>(c->asyncError.load());
  if (*asyncError != ncclInProgress) joinJob(c, false);
  return ncclSuccess;
}

// ---- communicator queries -------------------------------------------------------------------
namespace {
template <typename Fn>
ncclResult_t query(ncclComm_t comm, const char* opName, const void* out, const char* outName, Fn fn) {
  if (ncclResult_t r = commCheck(comm, opName); r != ncclSuccess) return r;
  if (out == nullptr) {
    SIM_WARN(-1, "%s : %s argument is NULL", opName, outName);
    return ncclInvalidArgument;
  }
  Comm* c = reinterpret_cast<Comm*>(comm);
  if (ncclResult_t r = ensureReady(c); r != ncclSuccess) return r;
  fn(c);
  return ncclSuccess;
}
}  // namespace

NCCL_SIM_API(ncclResult_t, ncclCommCount, const ncclComm_t comm, int* count) {
  return query(comm, "CommCount", count, "count", [&](Comm* c) { *count = c->nranks; });
}

NCCL_SIM_API(ncclResult_t, ncclCommCuDevice, const ncclComm_t comm, int* device) {
  return query(comm, "CommCuDevice", device, "devid", [&](Comm* c) { *device = c->cudaDev; });
}

NCCL_SIM_API(ncclResult_t, ncclCommUserRank, const ncclComm_t comm, int* rank) {
  return query(comm, "CommUserRank", rank, "rank", [&](Comm* c) { *rank = c->rank; });
}

// ---- buffer registration and memory: no-ops with valid handles ------------------------------
NCCL_SIM_API(ncclResult_t, ncclCommRegister, const ncclComm_t comm, void* buff, size_t size, void** handle) {
  (void)size;
  if (ncclResult_t r = commCheck(comm, "ncclCommRegister"); r != ncclSuccess) return r;
  if (handle == nullptr) return ncclInvalidArgument;
  *handle = buff;
  return ncclSuccess;
}

NCCL_SIM_API(ncclResult_t, ncclCommDeregister, const ncclComm_t comm, void* handle) {
  (void)handle;
  return commCheck(comm, "ncclCommDeregister");
}

NCCL_SIM_API(ncclResult_t, ncclCommWindowRegister, ncclComm_t comm, void* buff, size_t size, ncclWindow_t* win,
             int winFlags) {
  (void)size;
  (void)winFlags;
  if (ncclResult_t r = commCheck(comm, "ncclCommWindowRegister"); r != ncclSuccess) return r;
  if (win == nullptr) return ncclInvalidArgument;
  *win = reinterpret_cast<ncclWindow_t>(buff);
  return ncclSuccess;
}

NCCL_SIM_API(ncclResult_t, ncclCommWindowDeregister, ncclComm_t comm, ncclWindow_t win) {
  (void)win;
  return commCheck(comm, "ncclCommWindowDeregister");
}

NCCL_SIM_API(ncclResult_t, ncclMemAlloc, void** ptr, size_t size) {
  if (ptr == nullptr || size == 0) return ncclInvalidArgument;
  (void)currentDevice();
  CUdeviceptr d = 0;
  if (cuMemAlloc(&d, size) != CUDA_SUCCESS) return ncclUnhandledCudaError;
  *ptr = reinterpret_cast<void*>(static_cast<uintptr_t>(d));
  return ncclSuccess;
}

NCCL_SIM_API(ncclResult_t, ncclMemFree, void* ptr) {
  if (ptr == nullptr) return ncclSuccess;
  (void)currentDevice();
  return cuMemFree(static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(ptr))) == CUDA_SUCCESS
             ? ncclSuccess
             : ncclUnhandledCudaError;
}

// ---- user reduction operators ---------------------------------------------------------------
NCCL_SIM_API(ncclResult_t, ncclRedOpCreatePreMulSum, ncclRedOp_t* op, void* scalar, ncclDataType_t datatype,
             ncclScalarResidence_t residence, ncclComm_t comm) {
  if (ncclResult_t r = commCheck(comm, "ncclRedOpCreatePreMulSum"); r != ncclSuccess) return r;
  Comm* c = reinterpret_cast<Comm*>(comm);
  if (ncclResult_t r = ensureReady(c); r != ncclSuccess) return r;
  if (op == nullptr || scalar == nullptr || typeSize(datatype) == 0) return ncclInvalidArgument;
  UserRedOp u;
  u.live = true;
  u.type = datatype;
  u.op.kind = RedKind::PreMulSum;
  if (residence == ncclScalarHostImmediate) {
    std::memcpy(&u.op.scalar, scalar, typeSize(datatype));
  } else {
    u.op.scalarPtr = scalar;  // read when the collective runs, as the kernel dereferences it
  }
  std::lock_guard<std::mutex> lock(c->redOpMu);
  size_t ix = 0;
  while (ix < c->userOps.size() && c->userOps[ix].live) ++ix;
  if (ix == c->userOps.size()) c->userOps.emplace_back();
  c->userOps[ix] = u;
  *op = static_cast<ncclRedOp_t>(ncclNumOps + static_cast<int>(ix));
  return ncclSuccess;
}

NCCL_SIM_API(ncclResult_t, ncclRedOpDestroy, ncclRedOp_t op, ncclComm_t comm) {
  if (0 <= static_cast<int>(op) && static_cast<int>(op) < ncclNumOps) {
    SIM_WARN(-1, "ncclRedOpDestroy : operator is a NCCL builtin.");
    return ncclInvalidArgument;
  }
  if (static_cast<int>(op) < 0 || static_cast<int>(op) > static_cast<int>(ncclMaxRedOp)) {
    SIM_WARN(-1, "ncclRedOpDestroy :  operator is garbage.");
    return ncclInvalidArgument;
  }
  if (comm == nullptr) {
    SIM_WARN(-1, "ncclRedOpDestroy : invalid communicator passed.");
    return ncclInvalidArgument;
  }
  Comm* c = reinterpret_cast<Comm*>(comm);
  std::lock_guard<std::mutex> lock(c->redOpMu);
  auto ix = static_cast<size_t>(static_cast<int>(op) - ncclNumOps);
  if (ix >= c->userOps.size() || !c->userOps[ix].live) {
    SIM_WARN(c->cudaDev, "ncclRedOpDestroy : operator unknown to this communicator.");
    return ncclInvalidArgument;
  }
  c->userOps[ix].live = false;
  return ncclSuccess;
}

// ---- collectives and point-to-point ---------------------------------------------------------
NCCL_SIM_API(ncclResult_t, ncclAllReduce, const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
             ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  return enqueue("AllReduce", Func::AllReduce, sendbuff, recvbuff, count, datatype, op, 0, comm, stream);
}

NCCL_SIM_API(ncclResult_t, ncclBroadcast, const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
             int root, ncclComm_t comm, cudaStream_t stream) {
  return enqueue("Broadcast", Func::Broadcast, sendbuff, recvbuff, count, datatype, ncclSum, root, comm, stream);
}

NCCL_SIM_API(ncclResult_t, ncclReduce, const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
             ncclRedOp_t op, int root, ncclComm_t comm, cudaStream_t stream) {
  return enqueue("Reduce", Func::Reduce, sendbuff, recvbuff, count, datatype, op, root, comm, stream);
}

NCCL_SIM_API(ncclResult_t, ncclAllGather, const void* sendbuff, void* recvbuff, size_t sendcount,
             ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream) {
  return enqueue("AllGather", Func::AllGather, sendbuff, recvbuff, sendcount, datatype, ncclSum, 0, comm, stream);
}

NCCL_SIM_API(ncclResult_t, ncclReduceScatter, const void* sendbuff, void* recvbuff, size_t recvcount,
             ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  return enqueue("ReduceScatter", Func::ReduceScatter, sendbuff, recvbuff, recvcount, datatype, op, 0, comm, stream);
}

NCCL_SIM_API(ncclResult_t, ncclAlltoAll, const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
             ncclComm_t comm, cudaStream_t stream) {
  return enqueue("AlltoAll", Func::AlltoAll, sendbuff, recvbuff, count, datatype, ncclSum, 0, comm, stream);
}

NCCL_SIM_API(ncclResult_t, ncclGather, const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
             int root, ncclComm_t comm, cudaStream_t stream) {
  return enqueue("Gather", Func::Gather, sendbuff, recvbuff, count, datatype, ncclSum, root, comm, stream);
}

NCCL_SIM_API(ncclResult_t, ncclScatter, const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
             int root, ncclComm_t comm, cudaStream_t stream) {
  return enqueue("Scatter", Func::Scatter, sendbuff, recvbuff, count, datatype, ncclSum, root, comm, stream);
}

NCCL_SIM_API(ncclResult_t, ncclSend, const void* sendbuff, size_t count, ncclDataType_t datatype, int peer,
             ncclComm_t comm, cudaStream_t stream) {
  return enqueue("Send", Func::Send, sendbuff, nullptr, count, datatype, ncclSum, peer, comm, stream);
}

NCCL_SIM_API(ncclResult_t, ncclRecv, void* recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
             cudaStream_t stream) {
  return enqueue("Recv", Func::Recv, nullptr, recvbuff, count, datatype, ncclSum, peer, comm, stream);
}

// ---- groups ---------------------------------------------------------------------------------
NCCL_SIM_API(ncclResult_t, ncclGroupStart) {
  groupStart();
  return ncclSuccess;
}

NCCL_SIM_API(ncclResult_t, ncclGroupEnd) { return groupEnd(nullptr, false); }

NCCL_SIM_API(ncclResult_t, ncclGroupSimulateEnd, ncclSimInfo_t* simInfo) { return groupEnd(simInfo, true); }

namespace {
// At exit, rendezvous this process created but nobody finished joining can never complete.
__attribute__((destructor)) void unlinkAtExit() { unlinkUnusedSegments(); }
}  // namespace
