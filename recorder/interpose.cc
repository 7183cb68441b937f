// The exported NCCL API: every host call that creates, derives or ends a communicator or issues
// work, recorded once and forwarded to the real NCCL with its return code unchanged. These are the
// only symbols libncclfr.so exports (libncclfr.map); everything else is hidden.
//
// Rules for every function here: nothing throws (the bodies catch everything and fall back to a
// plain forward), nothing exits, and the work-call path allocates nothing, takes no lock and makes
// no system call of its own (CUDA event calls aside).
#include <nccl.h>

#include <cstring>

#include "comm_hash.h"
#include "log.h"
#include "real_nccl.h"
#include "recorder.h"
#include "watchdog.h"

#define NCCLFR_EXPORT extern "C" __attribute__((visibility("default")))

namespace ncclfr::recorder {
namespace {

constexpr ncclResult_t kMissing = ncclInvalidUsage;

template <typename F>
F realOrWarn(F f) {
  if (f == nullptr) raiseHotWarning(kWarnMissingFunction);
  return f;
}

bool isP2P(shm::Op op) { return op == shm::Op::kSend || op == shm::Op::kRecv; }
bool failed(ncclResult_t r) { return r != ncclSuccess && r != ncclInProgress; }

struct WorkCall {
  shm::Op op;
  ncclComm_t comm;
  cudaStream_t stream;
  size_t count;
  int dtype;
  int redOp;
  int root;  // root or peer, -1 = none
};

// Reads what ncclConfig_t says about blocking and the name, for any layout since NCCL 2.14: the
// struct is versioned by its leading `size` (only fields inside it exist) and `version`.
void readConfig(const ncclConfig_t* config, CommCreate* c) {
  if (config == nullptr) return;
  size_t size = 0;
  std::memcpy(&size, config, sizeof size);
  // size, magic and version lead every layout; a shorter struct is not a config at all.
  if (size < offsetof(ncclConfig_t, version) + sizeof(unsigned) || config->magic != 0xcafebeef) return;
  if (size >= offsetof(ncclConfig_t, blocking) + sizeof(int) && config->version >= NCCL_VERSION(2, 14, 0)) {
    int b = config->blocking;
    if (b == 0 || b == 1) c->blocking = b;
  }
  if (size >= offsetof(ncclConfig_t, commName) + sizeof(const char*) && config->commName != nullptr) {
    c->name.assign(config->commName, strnlen(config->commName, 127));
  }
}

uint64_t commHashOf(const ncclUniqueId& id) { return commHashFromUniqueId(id.internal); }

int32_t blockingDefault() {
  const char* v = getenv("NCCL_COMM_BLOCKING");
  return (v != nullptr && std::strcmp(v, "0") == 0) ? 0 : 1;
}

uint8_t clampByte(int v) { return v < 0 || v > 254 ? 255 : static_cast<uint8_t>(v); }

// ---------------------------------------------------------------------------------------------
// Launch planning and the GPU side of a work call.

LaunchPlan planLaunchWithCuda(Recorder* r, ThreadState& t, cudaStream_t stream);

inline LaunchPlan planLaunch(Recorder* r, ThreadState& t, cudaStream_t stream) {
  if (r->gpu.cu == nullptr) return LaunchPlan{};
  return planLaunchWithCuda(r, t, stream);
}

LaunchPlan planLaunchWithCuda(Recorder* r, ThreadState& t, cudaStream_t stream) {
  LaunchPlan p;
  const CudaDriver* cu = r->gpu.cu;
  CUstream s = reinterpret_cast<CUstream>(stream);
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
  CUresult rc = cu->streamIsCapturing(s, &status);
  if (rc != CUDA_SUCCESS || status != CU_STREAM_CAPTURE_STATUS_NONE) {
    // Capturing (or the legacy stream while another stream captures): touch nothing on it.
    p.captured = rc == CUDA_SUCCESS || rc == CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
    return p;
  }
  if (!r->gpu.gpuTiming()) return p;
  if (t.groupDepth > 0) {
    for (int i = 0; i < t.groupStreamCount; ++i) {
      if (t.groupStreams[i].stream == reinterpret_cast<uint64_t>(stream)) {
        p.tracked = true;
        p.leaderIndex = t.groupStreams[i].leader;
        p.ctx = t.groupStreams[i].ctx;
        return p;
      }
    }
    if (t.groupStreamCount >= kMaxGroupStreams) {
      raiseHotWarning(kWarnGroupStreams);
      return p;
    }
  }
  CUcontext ctx = nullptr;
  if (cu->streamGetCtx(s, &ctx) != CUDA_SUCCESS || ctx == nullptr) return p;
  int index = r->gpu.readyContext(reinterpret_cast<uintptr_t>(ctx));
  if (index < 0) return p;
  p.ctx = static_cast<uint32_t>(index);
  if (t.groupDepth > 0) {
    // The pair is taken at ncclGroupEnd, where the launch really happens.
    p.tracked = p.leader = true;
    return p;
  }
  p.pair = r->gpu.takePair(index);
  p.tracked = p.leader = p.pair != 0;
  return p;
}

bool recordEvent(const CudaDriver* cu, CUevent e, cudaStream_t stream) {
  return cu->eventRecord(e, reinterpret_cast<CUstream>(stream)) == CUDA_SUCCESS;
}

// Under the entry's update lock: a call that could get no GPU events says so in the ring itself, so
// that a salvaged ring tells it too (only a scheduled entry changes: an error stays an error).
void markUntrackedLocked(shm::RingEntry* slot) {
  uint64_t* words = entryWords(slot);
  uint64_t os = ld(words[kWordOpState]);
  if (((os >> 24) & 0xff) != static_cast<uint8_t>(shm::EntryState::kScheduled)) return;
  os = (os & ~(uint64_t{0xff} << 24)) | (uint64_t{static_cast<uint8_t>(shm::EntryState::kUntracked)} << 24);
  st(words[kWordOpState], os);
}

// Sets the launch state of leader `index` (and optionally its pair) under its update lock; false
// (and the pair back in the pool) when the ring has replaced the leader.
bool setLaunch(Recorder* r, uint64_t index, uint32_t state, bool setPair, uint32_t pair) {
  shm::RingEntry* slot = &r->ring.entries[index & r->ring.ringMask];
  if (!beginUpdate(slot, index)) {
    if (setPair) r->gpu.releasePair(pair);
    return false;
  }
  TrackSlot& tr = r->gpu.trackOf(index);
  if (setPair) st(tr.pair, pair);
  st(tr.launchState, state);
  if (state == kLaunchUntracked) markUntrackedLocked(slot);
  endUpdate(slot, index);
  return true;
}

// Only non-blocking communicators count successes (ncclCommGetAsyncError may be called often on
// blocking ones, and their calls never return ncclInProgress): kNotWatched for the others.
constexpr uint64_t kNotWatched = UINT64_MAX;
uint64_t asyncOkGeneration(Recorder* r, uint32_t slot) {
  if (ld(r->ring.comms[slot].blocking) == 1) return kNotWatched;
  return std::atomic_ref<uint32_t>(r->asyncOkGeneration[slot]).load(std::memory_order_seq_cst);
}

void addDeferred(Recorder* r, uint64_t leader, uint32_t pair, uint64_t stream, const uint32_t* comms, int commCount) {
  std::lock_guard<std::mutex> lock(r->gpu.deferredMutex);
  if (r->gpu.deferredCount >= GpuTracker::kMaxDeferred) return;  // stays pending: reported if it stalls
  auto& d = r->gpu.deferred[r->gpu.deferredCount++];
  d.leader = leader;
  d.pair = pair;
  d.stream = stream;
  d.commCount = static_cast<uint32_t>(std::clamp(commCount, 0, kMaxGroupComms));
  for (uint32_t i = 0; i < d.commCount; ++i) d.comms[i] = comms[i];
  // seq_cst, paired with resolveDeferred's check and the generation bump (see resolveAfterRace).
  r->gpu.deferredPending.store(r->gpu.deferredCount, std::memory_order_seq_cst);
}

// A non-blocking communicator reported success: its deferred launches are on their streams now,
// so their end events go right behind them.
void resolveDeferred(Recorder* r, uint32_t slot) {
  if (r->gpu.deferredPending.load(std::memory_order_seq_cst) == 0) return;
  std::lock_guard<std::mutex> lock(r->gpu.deferredMutex);
  int kept = 0;
  for (int i = 0; i < r->gpu.deferredCount; ++i) {
    auto d = r->gpu.deferred[i];
    bool mine = false;
    for (uint32_t k = 0; k < d.commCount; ++k) mine |= d.comms[k] == slot;
    if (!mine) {
      r->gpu.deferred[kept++] = d;
      continue;
    }
    // The pair comes from the list, not the slot: the watchdog may have taken it out already, and
    // keeps it while the launch is deferred. A leader the ring replaced is given up.
    shm::RingEntry* e = &r->ring.entries[d.leader & r->ring.ringMask];
    if (!beginUpdate(e, d.leader)) continue;
    TrackSlot& tr = r->gpu.trackOf(d.leader);
    uint32_t state = ld(tr.launchState);
    if (state == kLaunchDeferred) {
      bool ok = false;
      CUstreamCaptureStatus cs = CU_STREAM_CAPTURE_STATUS_NONE;
      CUstream s = reinterpret_cast<CUstream>(d.stream);
      if (d.pair != 0 && r->gpu.cu->streamIsCapturing(s, &cs) == CUDA_SUCCESS && cs == CU_STREAM_CAPTURE_STATUS_NONE) {
        ok = r->gpu.cu->eventRecord(r->gpu.pairOf(d.pair).end, s) == CUDA_SUCCESS;
      }
      st(tr.launchState, ok ? uint32_t{kLaunchRecorded} : uint32_t{kLaunchUntracked});
      if (!ok) markUntrackedLocked(e);
    }
    endUpdate(e, d.leader);
  }
  r->gpu.deferredCount = kept;
  r->gpu.deferredPending.store(kept, std::memory_order_seq_cst);
}

// After addDeferred: an application ncclCommGetAsyncError success on communicator `slot` since
// `before` was read (ahead of the NCCL call) may have run resolveDeferred before the launch was in
// the list, and the application need never ask again. Its bump precedes its look at the list (both
// seq_cst, or ordered by deferredMutex), and our look at the generation follows addDeferred: either
// it saw our launch, or we see its bump and resolve the communicator ourselves.
void resolveAfterRace(Recorder* r, uint32_t slot, uint64_t before) {
  if (before != kNotWatched && asyncOkGeneration(r, slot) != before) resolveDeferred(r, slot);
}

void rememberGroupComm(ThreadState& t, uint32_t slot) {
  for (int i = 0; i < t.groupCommCount; ++i) {
    if (t.groupComms[i] == slot) return;
  }
  if (t.groupCommCount < kMaxGroupComms) t.groupComms[t.groupCommCount++] = slot;
}

// ---------------------------------------------------------------------------------------------
// The work-call path.

template <typename Forward>
ncclResult_t recordWork(const WorkCall& w, Forward&& forward) {
  ThreadState& t = tThread;
  if (t.depth != 0) return forward();  // NCCL calling its own export: the outer call records
  Recorder* r = activeRecorder();
  if (r == nullptr) {
    if (isForkedChild()) return forward();
    r = setUpRecorder();
    if (r == nullptr) return forward();
  }
  InsideRecorder inside(t);
  uint64_t ticks0 = r->clock.ticks();
  uint32_t slot = r->slotForWork(t, w.comm);
  if (slot == kNoSlot) return forward();
  shm::CommSlot& cs = r->ring.comms[slot];
  bool grouped = t.groupDepth > 0;
  LaunchPlan plan = planLaunch(r, t, w.stream);

  // Every field is set below (no zeroing of the whole 128 bytes first).
  shm::RingEntry e;
  e.commit = 0;
  e.startMonoNs = 0;
  e.endMonoNs = 0;
  e.opSeq = 0;
  e.p2pSlot = 0;
  for (uint32_t& word : e.reserved) word = 0;
  e.enqueueMonoNs = r->clock.toMonoNs(ticks0);
  e.count = w.count;
  e.stream = reinterpret_cast<uint64_t>(w.stream);
  e.comm = slot;
  e.groupId = grouped ? t.groupId : 0;
  e.threadId = currentTid(t);
  e.root = w.root;
  e.op = static_cast<uint8_t>(w.op);
  e.dtype = clampByte(w.dtype);
  e.redOp = w.redOp < 0 ? 0 : static_cast<uint8_t>(w.redOp > 4 ? 5 : w.redOp);
  const CudaDriver* cu = r->gpu.cu;
  bool gpuTiming = r->gpu.gpuTiming();
  bool fullTiming = r->gpu.timing == shm::TimingMode::kFull;
  if (!grouped && plan.pair != 0 && fullTiming && !recordEvent(cu, r->gpu.pairOf(plan.pair).start, w.stream)) {
    // Without its start on the stream the pair would report a stale record: the call goes untimed.
    r->gpu.releasePair(plan.pair);
    plan.pair = 0;
    plan.tracked = plan.leader = false;
  }
  e.state = static_cast<uint8_t>(plan.captured                 ? shm::EntryState::kCaptured
                                 : gpuTiming && !plan.tracked ? shm::EntryState::kUntracked
                                                              : shm::EntryState::kScheduled);
  e.flags = (grouped ? shm::kEntryGrouped : 0) | (plan.tracked ? shm::kEntryTracked : 0);
  e.stackIndex = -1;
  if (isP2P(w.op)) {
    shm::P2PSlot* p = findP2P(r->ring, shm::p2pKey(slot, w.root, w.op == shm::Op::kSend));
    e.seq = ld(cs.nextSeq) - 1;
    if (p != nullptr) {
      e.p2pSeq = bumpOwned(p->nextSeq);
      e.p2pSlot = static_cast<uint32_t>(p - r->ring.p2p) + 1;
    } else {
      e.p2pSeq = -1;
      fetchAdd(r->ring.header->p2pOverflow, uint64_t{1});
      raiseHotWarning(kWarnP2PTableFull);
    }
    bumpOwned(cs.p2pEntries);
  } else {
    // NCCL lets one thread at a time use a communicator, so its counters need no locked increments.
    e.seq = bumpOwned(cs.nextSeq);
    e.opSeq = bumpOwned(cs.opSeq[static_cast<int>(w.op)]);
    e.p2pSeq = -1;
  }
  if (r->config.stacks) e.stackIndex = r->stackIndexForCaller();


  shm::RingEntry* entry = nullptr;
  uint64_t index = claimEntry(r->ring, t.ring, &entry);
  e.returned = shm::notReturnedWord(shm::lapTag(index, r->ring.ringMask + 1));
  TrackSlot& tr = r->gpu.trackOf(index);
  if (gpuTiming) {
    // A pair the previous occupant's launch left in the slot after its call returned was never
    // taken by the watchdog: it goes back to the pool. While that call is still inside NCCL
    // (kLaunchInCall) its thread owns the pair and returns it itself when it finds its entry gone.
    if (uint32_t stale = ld(tr.pair); stale != 0) {
      st(tr.pair, uint32_t{0});
      uint32_t old = ld(tr.launchState);
      if (old != kLaunchNone && old != kLaunchOpen && old != kLaunchInCall) r->gpu.releasePair(stale);
    }
    st(tr.stream, e.stream);
    st(tr.ctx, plan.ctx);
    if (plan.tracked && plan.leaderIndex == kNoLeader) {
      st(tr.leader, index);
      st(tr.pair, grouped ? 0u : plan.pair);
      st(tr.launchState, grouped ? uint32_t{kLaunchOpen} : uint32_t{kLaunchInCall});
    } else {
      st(tr.leader, plan.tracked ? plan.leaderIndex : kNoLeader);
      st(tr.pair, uint32_t{0});
      st(tr.launchState, uint32_t{kLaunchNone});
    }
  }
  storeEntry(entry, e);
  publishEntry(entry, index);
  if (grouped) {
    rememberGroupComm(t, slot);
    if (plan.tracked && plan.leaderIndex == kNoLeader) {
      auto& gs = t.groupStreams[t.groupStreamCount++];
      gs.stream = e.stream;
      gs.leader = index;
      gs.ctx = plan.ctx;
      gs.pair = 0;
    }
  }

  // Read before the call: a success reported on the communicator while the call is inside NCCL
  // may come before this launch is in the deferred list (resolveAfterRace).
  uint64_t okBefore = !grouped && plan.pair != 0 ? asyncOkGeneration(r, slot) : kNotWatched;
  ncclResult_t res = forward();

  int64_t durationNs = r->clock.ticksToNs(ticks0, r->clock.ticks());
  uint32_t launch = kLaunchNone;
  if (!grouped && plan.pair != 0) {
    if (failed(res)) {
      launch = kLaunchFailed;
    } else if (res == ncclInProgress) {
      launch = kLaunchDeferred;
    } else {
      launch = recordEvent(cu, r->gpu.pairOf(plan.pair).end, w.stream) ? kLaunchRecorded : kLaunchUntracked;
    }
  }
  setReturned(r->ring, entry, index, res, static_cast<uint32_t>(std::clamp<int64_t>(durationNs, 1, UINT32_MAX)));
  bool published = false;
  if ((failed(res) || launch != kLaunchNone) && beginUpdate(entry, index)) {
    published = true;
    if (failed(res)) {
      uint64_t* words = entryWords(entry);
      uint64_t os = ld(words[kWordOpState]);
      os = (os & ~(uint64_t{0xff} << 24)) | (uint64_t{static_cast<uint8_t>(shm::EntryState::kError)} << 24);
      st(words[kWordOpState], os);
    }
    if (launch != kLaunchNone) st(tr.launchState, launch);
    if (launch == kLaunchUntracked) markUntrackedLocked(entry);
    endUpdate(entry, index);
  }
  if (launch != kLaunchNone && !published) {
    // The ring lapped the entry while the call was inside NCCL: the writer that replaced it left
    // the pair to us (gpu_tracker.h), and nobody will follow this launch.
    r->gpu.releasePair(plan.pair);
  } else if (launch == kLaunchDeferred) {
    addDeferred(r, index, plan.pair, e.stream, &slot, 1);
    resolveAfterRace(r, slot, okBefore);
  }
  if (failed(res)) r->noteCallError(slot, res, w.op);
  // The thread's next slot was last written a lap ago, often by another core: ask for it now, so
  // the transfer overlaps whatever the application does before its next call.
  if (t.ring.next != t.ring.end) {
    const char* next = reinterpret_cast<const char*>(&r->ring.entries[t.ring.next & r->ring.ringMask]);
    __builtin_prefetch(next, 1, 3);
    __builtin_prefetch(next + 64, 1, 3);
  }
  return res;
}

// ---------------------------------------------------------------------------------------------
// Communicator life cycle.

struct CommCall {
  Recorder* r = nullptr;
  uint32_t slot = kNoSlot;
  int64_t t0 = 0;
};

// Recorder for a communicator-creating call, set up if this is the first one.
Recorder* recorderForComm() {
  if (isForkedChild()) return nullptr;
  return setUpRecorder();
}

// `where`, `parent`: a split's or shrink's newcomm and parent slot, for a child whose handle NCCL
// writes later (comm is null then): at the outermost ncclGroupEnd inside a group, from its own
// thread for a non-blocking parent (read when the parent reports success).
void finishCreate(Recorder* r, ThreadState& t, uint32_t slot, ncclComm_t comm, ncclResult_t res,
                  ncclComm_t* where = nullptr, uint32_t parent = kNoSlot) {
  if (slot == kNoSlot) return;
  if (comm != nullptr) r->mapComm(comm, slot);
  if (failed(res)) {
    r->commInitFailed(slot, res);
    return;
  }
  bool handleLater = comm == nullptr && where != nullptr;
  if (res == ncclInProgress) st(r->ring.comms[slot].blocking, int32_t{0});
  if (handleLater && (t.groupDepth == 0 || res == ncclInProgress)) {
    // A non-blocking parent's child (ncclInProgress, or NCCL 2.28's ncclSuccess with no handle).
    r->notePendingHandle(where, slot, parent);
    return;
  }
  if (res == ncclInProgress) return;  // becomes live when ncclCommGetAsyncError says so
  if (t.groupDepth > 0) {
    // Inside a group NCCL initializes at ncclGroupEnd.
    if (t.groupInitCount < kMaxGroupComms) {
      int i = t.groupInitCount++;
      t.groupInits[i] = slot;
      t.groupInitWhere[i] = handleLater ? where : nullptr;
      t.groupInitParent[i] = parent;
    }
    return;
  }
  r->commLive(slot, comm, monoNowNs(), true);
}

// A split's or shrink's handle as the call returns it, or null when NCCL writes it later from its
// own thread (a non-blocking parent): reading it now would race with that write.
ncclComm_t childHandleNow(Recorder* r, uint32_t parent, ncclComm_t* newcomm, ncclResult_t res) {
  bool async = res == ncclInProgress || (parent != kNoSlot && ld(r->ring.comms[parent].blocking) == 0);
  return newcomm != nullptr && !async ? *newcomm : nullptr;
}

template <typename Forward>
ncclResult_t createComm(CommCreate c, ncclComm_t* out, Forward&& forward) {
  ThreadState& t = tThread;
  if (t.depth != 0) return forward();
  Recorder* r = recorderForComm();
  if (r == nullptr) return forward();
  InsideRecorder inside(t);
  uint32_t slot = kNoSlot;
  try {
    slot = r->beginComm(c, monoNowNs());
  } catch (...) {
  }
  ncclResult_t res = forward();
  try {
    finishCreate(r, t, slot, out != nullptr ? *out : nullptr, res);
  } catch (...) {
  }
  return res;
}

// Marks `slot` busy with a blocking call while `forward` runs.
template <typename Forward>
ncclResult_t busyCall(Recorder* r, uint32_t slot, shm::BusyOp op, Forward&& forward) {
  if (slot != kNoSlot) {
    st(r->ring.comms[slot].busyOp, static_cast<uint32_t>(op));
    st(r->ring.comms[slot].busySinceMonoNs, monoNowNs());
  }
  ncclResult_t res = forward();
  if (slot != kNoSlot && res != ncclInProgress) st(r->ring.comms[slot].busySinceMonoNs, int64_t{0});
  return res;
}

void endComm(Recorder* r, uint32_t slot, shm::CommState state) {
  if (slot == kNoSlot) return;
  shm::CommSlot& s = r->ring.comms[slot];
  uint32_t prev = std::atomic_ref<uint32_t>(s.state).exchange(static_cast<uint32_t>(state));
  if (state == shm::CommState::kFinalized) return;
  st(s.destroyedMonoNs, monoNowNs());
  bool wasCounted = prev != static_cast<uint32_t>(shm::CommState::kDestroyed) &&
                    prev != static_cast<uint32_t>(shm::CommState::kAborted) &&
                    prev != static_cast<uint32_t>(shm::CommState::kInitFailed);
  if (state == shm::CommState::kRevoked) return;  // still to be destroyed
  if (wasCounted && fetchAdd(r->liveComms, int32_t{-1}) == 1 && r->config.dumpOnExit && r->watchdog != nullptr) {
    r->watchdog->requestExitDump();
  }
}

const char* opName(shm::Op op) {
  static const char* const kNames[] = {"unknown", "allReduce", "broadcast", "reduce", "allGather", "reduceScatter",
                                       "allToAll", "gather", "scatter", "send", "recv"};
  return kNames[static_cast<int>(op) < shm::kOpCount ? static_cast<int>(op) : 0];
}

}  // namespace

const char* workOpName(shm::Op op) { return opName(op); }

}  // namespace ncclfr::recorder

using namespace ncclfr::recorder;
namespace shm = ncclfr::shm;

// =============================================================================================
// Version, unique id: passed through (the unique id is caught inside ncclCommInitAll).

NCCLFR_EXPORT ncclResult_t ncclGetVersion(int* version) {
  auto f = realOrWarn(real::GetVersion());
  return f ? f(version) : kMissing;
}

NCCLFR_EXPORT ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId) {
  auto f = realOrWarn(real::GetUniqueId());
  if (f == nullptr) return kMissing;
  ncclResult_t res = f(uniqueId);
  ThreadState& t = tThread;
  if (t.catchUniqueId && res == ncclSuccess && uniqueId != nullptr) {
    std::memcpy(t.caughtId, uniqueId->internal, sizeof t.caughtId);
    t.caughtUniqueId = true;
  }
  return res;
}

// =============================================================================================
// Communicator creation.

NCCLFR_EXPORT ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank) {
  auto f = realOrWarn(real::CommInitRank());
  if (f == nullptr) return kMissing;
  CommCreate c;
  c.origin = shm::CommOrigin::kInitRank;
  c.id = commHashOf(commId);
  c.rank = rank;
  c.size = nranks;
  c.blocking = blockingDefault();
  return createComm(c, comm, [&] { return f(comm, nranks, commId, rank); });
}

NCCLFR_EXPORT ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank,
                                                  ncclConfig_t* config) {
  auto f = realOrWarn(real::CommInitRankConfig());
  if (f == nullptr) return kMissing;
  CommCreate c;
  c.origin = shm::CommOrigin::kInitRankConfig;
  c.id = commHashOf(commId);
  c.rank = rank;
  c.size = nranks;
  c.blocking = blockingDefault();
  readConfig(config, &c);
  return createComm(c, comm, [&] { return f(comm, nranks, commId, rank, config); });
}

NCCLFR_EXPORT ncclResult_t ncclCommInitRankScalable(ncclComm_t* newcomm, int nranks, int myrank, int nId,
                                                    ncclUniqueId* commIds, ncclConfig_t* config) {
  auto f = realOrWarn(real::CommInitRankScalable());
  if (f == nullptr) return kMissing;
  CommCreate c;
  c.origin = shm::CommOrigin::kInitRankScalable;
  c.id = (commIds != nullptr && nId > 0) ? commHashOf(commIds[0]) : 0;
  c.rank = myrank;
  c.size = nranks;
  c.blocking = blockingDefault();
  readConfig(config, &c);
  return createComm(c, newcomm, [&] { return f(newcomm, nranks, myrank, nId, commIds, config); });
}

NCCLFR_EXPORT ncclResult_t ncclCommInitAll(ncclComm_t* comms, int ndev, const int* devlist) {
  auto f = realOrWarn(real::CommInitAll());
  if (f == nullptr) return kMissing;
  ThreadState& t = tThread;
  if (t.depth != 0) return f(comms, ndev, devlist);
  Recorder* r = recorderForComm();
  if (r == nullptr) return f(comms, ndev, devlist);
  ncclResult_t res;
  {
    InsideRecorder inside(t);
    // NCCL makes the unique id itself, through its exported ncclGetUniqueId: catch it there.
    t.catchUniqueId = true;
    t.caughtUniqueId = false;
    int64_t t0 = monoNowNs();
    res = f(comms, ndev, devlist);
    t.catchUniqueId = false;
    try {
      uint64_t id = t.caughtUniqueId ? commHashFromUniqueId(t.caughtId) : 0;
      for (int i = 0; comms != nullptr && i < ndev; ++i) {
        CommCreate c;
        c.origin = shm::CommOrigin::kInitAll;
        c.id = id;
        c.rank = i;
        c.size = ndev;
        c.cudaDevice = devlist != nullptr ? devlist[i] : i;
        uint32_t slot = r->beginComm(c, t0);
        if (slot == kNoSlot) continue;
        if (failed(res) || comms[i] == nullptr) {
          r->commInitFailed(slot, res);
          continue;
        }
        r->mapComm(comms[i], slot);
        r->commLive(slot, comms[i], monoNowNs(), i == 0);
      }
    } catch (...) {
    }
  }
  return res;
}

NCCLFR_EXPORT ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t* newcomm,
                                         ncclConfig_t* config) {
  auto f = realOrWarn(real::CommSplit());
  if (f == nullptr) return kMissing;
  ThreadState& t = tThread;
  if (t.depth != 0) return f(comm, color, key, newcomm, config);
  Recorder* r = recorderForComm();
  if (r == nullptr) return f(comm, color, key, newcomm, config);
  InsideRecorder inside(t);
  uint32_t parent = r->slotForWork(t, comm);
  CommCreate c;
  c.origin = shm::CommOrigin::kSplit;
  c.splitColor = color;
  c.splitKey = key;
  c.busy = shm::BusyOp::kSplit;
  c.blocking = parent != kNoSlot ? ld(r->ring.comms[parent].blocking) : blockingDefault();
  readConfig(config, &c);
  uint32_t splitCount = 0;
  if (parent != kNoSlot) {
    // NCCL counts every split of the parent that gets past its argument checks, NOCOLOR ones too.
    bool counted = comm != nullptr && newcomm != nullptr;
    splitCount = counted ? fetchAdd(r->ring.comms[parent].splitCount, uint32_t{1}) + 1 : 0;
    c.parentId = r->ring.comms[parent].id;
    c.id = commHashOfChild(c.parentId, static_cast<int32_t>(splitCount), color);
  }
  if (color == NCCL_SPLIT_NOCOLOR) {
    // No communicator comes out of it; the parent is busy for the duration all the same.
    return busyCall(r, parent, shm::BusyOp::kSplit, [&] { return f(comm, color, key, newcomm, config); });
  }
  uint32_t slot = kNoSlot;
  try {
    slot = r->beginComm(c, monoNowNs());
  } catch (...) {
  }
  ncclResult_t res = f(comm, color, key, newcomm, config);
  try {
    finishCreate(r, t, slot, childHandleNow(r, parent, newcomm, res), res, newcomm, parent);
  } catch (...) {
  }
  return res;
}

NCCLFR_EXPORT ncclResult_t ncclCommShrink(ncclComm_t comm, int* excludeRanksList, int excludeRanksCount,
                                          ncclComm_t* newcomm, ncclConfig_t* config, int shrinkFlags) {
  auto f = realOrWarn(real::CommShrink());
  if (f == nullptr) return kMissing;
  ThreadState& t = tThread;
  auto forward = [&] { return f(comm, excludeRanksList, excludeRanksCount, newcomm, config, shrinkFlags); };
  if (t.depth != 0) return forward();
  Recorder* r = recorderForComm();
  if (r == nullptr) return forward();
  InsideRecorder inside(t);
  uint32_t parent = r->slotForWork(t, comm);
  CommCreate c;
  c.origin = shm::CommOrigin::kShrink;
  c.busy = shm::BusyOp::kShrink;
  c.blocking = parent != kNoSlot ? ld(r->ring.comms[parent].blocking) : blockingDefault();
  readConfig(config, &c);
  if (parent != kNoSlot) {
    c.parentId = r->ring.comms[parent].id;
    c.id = commHashOfShrink(c.parentId);
  }
  uint32_t slot = kNoSlot;
  try {
    slot = r->beginComm(c, monoNowNs());
  } catch (...) {
  }
  ncclResult_t res = forward();
  try {
    finishCreate(r, t, slot, childHandleNow(r, parent, newcomm, res), res, newcomm, parent);
  } catch (...) {
  }
  return res;
}

// =============================================================================================
// Communicator end.

NCCLFR_EXPORT ncclResult_t ncclCommFinalize(ncclComm_t comm) {
  auto f = realOrWarn(real::CommFinalize());
  if (f == nullptr) return kMissing;
  ThreadState& t = tThread;
  Recorder* r = t.depth == 0 ? activeRecorder() : nullptr;
  if (r == nullptr) return f(comm);
  InsideRecorder inside(t);
  uint32_t slot = r->lookupComm(comm);
  ncclResult_t res = busyCall(r, slot, shm::BusyOp::kFinalize, [&] { return f(comm); });
  if (!failed(res)) endComm(r, slot, shm::CommState::kFinalized);
  return res;
}

NCCLFR_EXPORT ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  auto f = realOrWarn(real::CommDestroy());
  if (f == nullptr) return kMissing;
  ThreadState& t = tThread;
  Recorder* r = t.depth == 0 ? activeRecorder() : nullptr;
  if (r == nullptr) return f(comm);
  InsideRecorder inside(t);
  uint32_t slot = r->lookupComm(comm);
  r->closeForWatchdog(slot);
  ncclResult_t res = busyCall(r, slot, shm::BusyOp::kDestroy, [&] { return f(comm); });
  if (!failed(res)) endComm(r, slot, shm::CommState::kDestroyed);
  return res;
}

namespace {

// ncclCommAbort and ncclCommRevoke: dump first (when something is pending), then forward.
template <typename Forward>
ncclResult_t abortLike(ncclComm_t comm, const char* what, shm::CommState state, Forward&& forward) {
  ThreadState& t = tThread;
  Recorder* r = t.depth == 0 ? activeRecorder() : nullptr;
  if (r == nullptr) return forward();
  InsideRecorder inside(t);
  uint32_t slot = r->lookupComm(comm);
  // Only a communicator that could have work pending is worth a dump (not a null, failed or
  // already ended one).
  uint32_t current = slot != kNoSlot ? ld(r->ring.comms[slot].state) : 0;
  bool usable = slot != kNoSlot && (current == static_cast<uint32_t>(shm::CommState::kLive) ||
                                    current == static_cast<uint32_t>(shm::CommState::kInitializing) ||
                                    current == static_cast<uint32_t>(shm::CommState::kRevoked));
  if (r->watchdog != nullptr && usable) {
    try {
      std::string detail = std::string(what) + " called";
      if (slot != kNoSlot) {
        char buf[96];
        std::snprintf(buf, sizeof buf, " on comm 0x%016llx (rank %d of %d)",
                      static_cast<unsigned long long>(r->ring.comms[slot].id), ld(r->ring.comms[slot].rank),
                      ld(r->ring.comms[slot].size));
        detail += buf;
      }
      r->watchdog->dumpAndWait(DumpCause::kAbort, detail, 10'000'000'000);
    } catch (...) {
    }
  }
  if (state != shm::CommState::kRevoked) r->closeForWatchdog(slot);
  // From here on, the communicator's unfinished calls end because of the abort, not by completing.
  if (slot != kNoSlot) std::atomic_ref<int64_t>(r->abortMonoNs[slot]).store(monoNowNs(), std::memory_order_release);
  ncclResult_t res = forward();
  endComm(r, slot, state);
  return res;
}

}  // namespace

NCCLFR_EXPORT ncclResult_t ncclCommAbort(ncclComm_t comm) {
  auto f = realOrWarn(real::CommAbort());
  if (f == nullptr) return kMissing;
  return abortLike(comm, "ncclCommAbort", shm::CommState::kAborted, [&] { return f(comm); });
}

NCCLFR_EXPORT ncclResult_t ncclCommRevoke(ncclComm_t comm, int revokeFlags) {
  auto f = realOrWarn(real::CommRevoke());
  if (f == nullptr) return kMissing;
  return abortLike(comm, "ncclCommRevoke", shm::CommState::kRevoked, [&] { return f(comm, revokeFlags); });
}

NCCLFR_EXPORT ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError) {
  auto f = realOrWarn(real::CommGetAsyncError());
  if (f == nullptr) return kMissing;
  ncclResult_t res = f(comm, asyncError);
  ThreadState& t = tThread;
  if (t.depth != 0 || res != ncclSuccess || asyncError == nullptr) return res;
  Recorder* r = activeRecorder();
  if (r == nullptr) return res;
  InsideRecorder inside(t);
  try {
    uint32_t slot = r->lookupComm(comm);
    if (slot == kNoSlot) return res;
    shm::CommSlot& s = r->ring.comms[slot];
    ncclResult_t e = *asyncError;
    // A split or shrink of this communicator has finished (or failed): its handle is written now.
    if (e != ncclInProgress) r->resolveChildrenOf(slot, e);
    if (e == ncclSuccess) {
      // The non-blocking init has finished: the application waits for this moment, so the pool
      // for the communicator's context is waited for here as a blocking init waits for it.
      if (ld(s.state) == static_cast<uint32_t>(shm::CommState::kInitializing)) r->commLive(slot, comm, monoNowNs(), true);
      // A non-blocking finalize or split has finished too.
      if (ld(s.busySinceMonoNs) != 0) st(s.busySinceMonoNs, int64_t{0});
      if (ld(s.blocking) != 1) {
        std::atomic_ref<uint32_t>(r->asyncOkGeneration[slot]).fetch_add(1, std::memory_order_seq_cst);
      }
      resolveDeferred(r, slot);
    } else if (e != ncclInProgress) {
      if (ld(s.state) == static_cast<uint32_t>(shm::CommState::kInitializing)) {
        r->commInitFailed(slot, e);
      } else if (ld(s.lastAsyncError) != static_cast<int32_t>(e)) {
        r->noteCallError(slot, e, shm::Op::kUnknown);
      }
    }
  } catch (...) {
  }
  return res;
}

// =============================================================================================
// Groups.

NCCLFR_EXPORT ncclResult_t ncclGroupStart() {
  auto f = realOrWarn(real::GroupStart());
  if (f == nullptr) return kMissing;
  ThreadState& t = tThread;
  ncclResult_t res = f();
  if (t.depth != 0 || res != ncclSuccess) return res;
  if (t.groupDepth++ == 0) {
    t.groupId = nextGroupId();
    t.groupStreamCount = 0;
    t.groupStreamsOverflow = false;
    t.groupCommCount = 0;
    t.groupInitCount = 0;
  }
  return res;
}

namespace {

// The outermost ncclGroupEnd / ncclGroupSimulateEnd of this thread.
template <typename Forward>
ncclResult_t endGroup(bool simulate, Forward&& forward) {
  ThreadState& t = tThread;
  if (t.depth != 0 || t.groupDepth == 0) return forward();
  if (t.groupDepth > 1) {
    ncclResult_t res = forward();
    if (res == ncclSuccess || res == ncclInProgress) --t.groupDepth;
    return res;
  }
  Recorder* r = activeRecorder();
  if (r == nullptr) {
    ncclResult_t res = forward();
    t.groupDepth = 0;
    return res;
  }
  InsideRecorder inside(t);
  const CudaDriver* cu = r->gpu.cu;
  bool fullTiming = r->gpu.timing == shm::TimingMode::kFull;
  bool startFailed[kMaxGroupStreams] = {};
  uint64_t okBefore[kMaxGroupComms] = {};
  for (int i = 0; i < t.groupCommCount; ++i) okBefore[i] = asyncOkGeneration(r, t.groupComms[i]);
  if (!simulate) {
    for (int i = 0; i < t.groupStreamCount; ++i) {
      auto& gs = t.groupStreams[i];
      gs.pair = r->gpu.takePair(static_cast<int>(gs.ctx));
      if (gs.pair != 0 && fullTiming) {
        startFailed[i] = !recordEvent(cu, r->gpu.pairOf(gs.pair).start, reinterpret_cast<cudaStream_t>(gs.stream));
      }
    }
  }
  ncclResult_t res = forward();
  t.groupDepth = 0;
  int64_t now = monoNowNs();
  bool anyDeferred = false;
  for (int i = 0; i < t.groupStreamCount; ++i) {
    auto& gs = t.groupStreams[i];
    uint32_t state;
    if (simulate) {
      state = kLaunchCancelled;
    } else if (failed(res)) {
      state = kLaunchFailed;  // nothing was launched
    } else if (gs.pair == 0 || startFailed[i]) {
      state = kLaunchUntracked;
    } else if (res == ncclInProgress) {
      state = kLaunchDeferred;
    } else {
      state = recordEvent(cu, r->gpu.pairOf(gs.pair).end, reinterpret_cast<cudaStream_t>(gs.stream))
                  ? kLaunchRecorded
                  : kLaunchUntracked;
    }
    bool published = setLaunch(r, gs.leader, state, gs.pair != 0, gs.pair);
    if (state == kLaunchDeferred && published) {
      addDeferred(r, gs.leader, gs.pair, gs.stream, t.groupComms, t.groupCommCount);
      anyDeferred = true;
    }
  }
  if (anyDeferred) {
    for (int i = 0; i < t.groupCommCount; ++i) resolveAfterRace(r, t.groupComms[i], okBefore[i]);
  }
  // Communicators created inside the group were initialized by it.
  for (int i = 0; i < t.groupInitCount; ++i) {
    uint32_t slot = t.groupInits[i];
    ncclComm_t* where = t.groupInitWhere[i];
    uint32_t parent = t.groupInitParent[i];
    if (failed(res)) {
      r->commInitFailed(slot, res);
    } else if (where != nullptr) {
      // A split's handle: written by this ncclGroupEnd, unless NCCL finishes the group from its
      // own thread (a non-blocking parent), then read when the parent reports success.
      bool async = res == ncclInProgress || (parent != kNoSlot && ld(r->ring.comms[parent].blocking) == 0);
      ncclComm_t handle = async ? nullptr : *where;
      if (handle != nullptr) {
        r->childReady(slot, handle, true);
      } else {
        if (res == ncclInProgress) st(r->ring.comms[slot].blocking, int32_t{0});
        r->notePendingHandle(where, slot, parent);
      }
    } else {
      auto handle = reinterpret_cast<ncclComm_t>(ld(r->ring.comms[slot].handle));
      if (res == ncclSuccess) r->commLive(slot, handle, now, true);
      else st(r->ring.comms[slot].blocking, int32_t{0});
    }
  }
  if (failed(res) && !simulate) {
    r->noteCallError(t.groupCommCount > 0 ? t.groupComms[0] : kNoSlot, res, shm::Op::kUnknown);
  }
  t.groupStreamCount = 0;
  t.groupCommCount = 0;
  t.groupInitCount = 0;
  return res;
}

}  // namespace

NCCLFR_EXPORT ncclResult_t ncclGroupEnd() {
  auto f = realOrWarn(real::GroupEnd());
  if (f == nullptr) return kMissing;
  return endGroup(false, [&] { return f(); });
}

NCCLFR_EXPORT ncclResult_t ncclGroupSimulateEnd(ncclSimInfo_t* simInfo) {
  auto f = realOrWarn(real::GroupSimulateEnd());
  if (f == nullptr) return kMissing;
  return endGroup(true, [&] { return f(simInfo); });
}

// =============================================================================================
// Collectives and point-to-point.

#define NCCLFR_WORK(fnEnum, ...)                         \
  auto f = realOrWarn(real::fnEnum());                   \
  if (f == nullptr) return kMissing;                     \
  return recordWork(w, [&] { return f(__VA_ARGS__); })

NCCLFR_EXPORT ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                                         ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  WorkCall w{shm::Op::kAllReduce, comm, stream, count, datatype, op, -1};
  NCCLFR_WORK(AllReduce, sendbuff, recvbuff, count, datatype, op, comm, stream);
}

NCCLFR_EXPORT ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                                         int root, ncclComm_t comm, cudaStream_t stream) {
  WorkCall w{shm::Op::kBroadcast, comm, stream, count, datatype, 0, root};
  NCCLFR_WORK(Broadcast, sendbuff, recvbuff, count, datatype, root, comm, stream);
}

NCCLFR_EXPORT ncclResult_t ncclBcast(void* buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                                     cudaStream_t stream) {
  WorkCall w{shm::Op::kBroadcast, comm, stream, count, datatype, 0, root};
  NCCLFR_WORK(Bcast, buff, count, datatype, root, comm, stream);
}

NCCLFR_EXPORT ncclResult_t ncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                                      ncclRedOp_t op, int root, ncclComm_t comm, cudaStream_t stream) {
  WorkCall w{shm::Op::kReduce, comm, stream, count, datatype, op, root};
  NCCLFR_WORK(Reduce, sendbuff, recvbuff, count, datatype, op, root, comm, stream);
}

NCCLFR_EXPORT ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                                         ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream) {
  WorkCall w{shm::Op::kAllGather, comm, stream, sendcount, datatype, 0, -1};
  NCCLFR_WORK(AllGather, sendbuff, recvbuff, sendcount, datatype, comm, stream);
}

NCCLFR_EXPORT ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                             ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                                             cudaStream_t stream) {
  WorkCall w{shm::Op::kReduceScatter, comm, stream, recvcount, datatype, op, -1};
  NCCLFR_WORK(ReduceScatter, sendbuff, recvbuff, recvcount, datatype, op, comm, stream);
}

NCCLFR_EXPORT ncclResult_t ncclAlltoAll(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                                        ncclComm_t comm, cudaStream_t stream) {
  WorkCall w{shm::Op::kAllToAll, comm, stream, count, datatype, 0, -1};
  NCCLFR_WORK(AlltoAll, sendbuff, recvbuff, count, datatype, comm, stream);
}

NCCLFR_EXPORT ncclResult_t ncclGather(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                                      int root, ncclComm_t comm, cudaStream_t stream) {
  WorkCall w{shm::Op::kGather, comm, stream, count, datatype, 0, root};
  NCCLFR_WORK(Gather, sendbuff, recvbuff, count, datatype, root, comm, stream);
}

NCCLFR_EXPORT ncclResult_t ncclScatter(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                                       int root, ncclComm_t comm, cudaStream_t stream) {
  WorkCall w{shm::Op::kScatter, comm, stream, count, datatype, 0, root};
  NCCLFR_WORK(Scatter, sendbuff, recvbuff, count, datatype, root, comm, stream);
}

NCCLFR_EXPORT ncclResult_t ncclSend(const void* sendbuff, size_t count, ncclDataType_t datatype, int peer,
                                    ncclComm_t comm, cudaStream_t stream) {
  WorkCall w{shm::Op::kSend, comm, stream, count, datatype, 0, peer};
  NCCLFR_WORK(Send, sendbuff, count, datatype, peer, comm, stream);
}

NCCLFR_EXPORT ncclResult_t ncclRecv(void* recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                                    cudaStream_t stream) {
  WorkCall w{shm::Op::kRecv, comm, stream, count, datatype, 0, peer};
  NCCLFR_WORK(Recv, recvbuff, count, datatype, peer, comm, stream);
}
