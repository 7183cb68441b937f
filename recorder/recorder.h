// The recorder's process-wide state and the thread-local state of each application thread.
//
// Set up lazily, by the first NCCL call that creates a communicator or issues work (never at load:
// LD_PRELOAD reaches every child of a job). Everything here is allocated once and never freed:
// application threads and the watchdog may still use it while static destructors run at exit.
#pragma once

#include <nccl.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <type_traits>

#include "config.h"
#include "gpu_tracker.h"
#include "host_clock.h"
#include "process_identity.h"
#include "shm_ring.h"

namespace ncclfr::recorder {

class Watchdog;

inline constexpr uint32_t kNoSlot = UINT32_MAX;
inline constexpr uint32_t kCommMapSize = 4096;  // a power of two, > the comm table's capacity
inline constexpr int kMaxGroupStreams = 8;

// Per application thread. Lives in static TLS with no destructor to run: a thread may exit at any
// time (even inside a signal handler) and the state must not need tearing down, as in LLVM XRay's
// flight-data recorder.
struct ThreadState {
  int depth;                 // > 0 while inside one of our wrappers: NCCL calling its own exports
  int groupDepth;            // ncclGroupStart nesting seen on this thread
  uint32_t groupId;          // the outermost group's id while groupDepth > 0
  uint32_t tid;              // gettid(), cached
  // Streams used by the current outermost group: the leader of each stream's launch.
  int groupStreamCount;
  bool groupStreamsOverflow;
  struct GroupStream {
    uint64_t stream;
    uint64_t leader;
    uint32_t ctx;
    uint32_t pair;
  } groupStreams[kMaxGroupStreams];
  int groupCommCount;
  uint32_t groupComms[kMaxGroupComms];       // communicators used in the group (deferred ends)
  int groupInitCount;
  uint32_t groupInits[kMaxGroupComms];       // communicators created inside the group
  ncclComm_t* groupInitWhere[kMaxGroupComms];  // a split's newcomm (NCCL writes it at ncclGroupEnd)
  uint32_t groupInitParent[kMaxGroupComms];    // and its parent's slot
  // This thread's reserved ring positions.
  RingCursor ring;
  // One-entry cache of the last communicator's slot.
  uintptr_t cachedComm;
  uint32_t cachedSlot;
  uint32_t cachedGeneration;
  // ncclCommInitAll calls ncclGetUniqueId internally: its id is caught here to hash it.
  bool catchUniqueId;
  bool caughtUniqueId;
  unsigned char caughtId[NCCL_UNIQUE_ID_BYTES];
};
static_assert(std::is_trivially_destructible_v<ThreadState>, "TLS must need no destructor");
// initial-exec: one instruction to reach it, no __tls_get_addr call on the hot path. Fine for a
// preloaded library (its TLS is allocated with the program's); ThreadState is small enough for the
// static TLS reserve should the library be dlopen'ed instead.
extern thread_local ThreadState tThread __attribute__((tls_model("initial-exec")));

// Scope guard for ThreadState::depth.
struct InsideRecorder {
  explicit InsideRecorder(ThreadState& t) : t_(t) { ++t_.depth; }
  ~InsideRecorder() { --t_.depth; }
  InsideRecorder(const InsideRecorder&) = delete;
  InsideRecorder& operator=(const InsideRecorder&) = delete;
  ThreadState& t_;
};

// What is known about a communicator when its creation starts.
struct CommCreate {
  shm::CommOrigin origin = shm::CommOrigin::kUnknown;
  uint64_t id = 0;
  uint64_t parentId = 0;
  int32_t splitColor = -1;
  int32_t splitKey = -1;
  int32_t rank = -1;
  int32_t size = -1;
  int32_t cudaDevice = -1;
  int32_t blocking = 1;
  shm::BusyOp busy = shm::BusyOp::kInit;
  std::string name;
};

class Recorder {
 public:
  RecorderConfig config;
  ProcessIdentity identity;
  RingRegion ring;
  GpuTracker gpu;
  HostClock clock;               // enqueue times and call durations on the hot path
  Watchdog* watchdog = nullptr;
  std::string jobDir;            // config.dumpDir/<sanitized job id>
  int64_t setupMonoNs = 0;
  bool simulated = false;

  // ncclComm_t -> comm slot: open addressing, read lock-free, written under setupMutex.
  uintptr_t mapKeys[kCommMapSize] = {};
  uint32_t mapSlots[kCommMapSize] = {};
  uint32_t mapGeneration = 0;
  std::mutex setupMutex;

  // Per comm slot, process-local: the watchdog is calling NCCL with the handle / the application
  // is destroying it (a Dekker handshake, so the watchdog never uses a freed communicator).
  uint32_t* watchdogUsing = nullptr;
  uint32_t* closing = nullptr;
  // Per comm slot, process-local: bumped (seq_cst) by every application ncclCommGetAsyncError that
  // reports success, before it resolves the communicator's deferred launches. A work call that
  // returned ncclInProgress compares it across its call and resolves its own launch when it moved:
  // that success may have come before the launch was in the deferred list.
  uint32_t* asyncOkGeneration = nullptr;
  // Per comm slot, process-local: when ncclCommAbort / ncclCommRevoke was forwarded (monotonic ns,
  // 0 = never). An aborted call's kernels exit and the events behind them fire: the watchdog must
  // not read that as the call completing (a launch on such a communicator that ends after this
  // time ends in error).
  int64_t* abortMonoNs = nullptr;
  // Group ids inside a non-blocking init: communicators whose state changes at ncclGroupEnd.
  int32_t liveComms = 0;         // atomically: communicators created and not yet destroyed

  // Splits and shrinks whose new handle NCCL writes from its own thread once the child is ready
  // (a non-blocking parent: NCCL 2.28's ncclCommSplit returns ncclSuccess with *newcomm still
  // NULL). The application must keep *newcomm alive until then and learns of it from the parent's
  // ncclCommGetAsyncError: that is where the handle is read, and the entry dropped either way.
  struct PendingHandle {
    ncclComm_t* where = nullptr;
    uint32_t slot = 0;
    uint32_t parent = 0;
  };
  static constexpr int kMaxPendingHandles = 64;
  PendingHandle pendingHandles[kMaxPendingHandles] = {};
  int pendingHandleCount = 0;    // under pendingMutex; read atomically as a hint
  std::mutex pendingMutex;
  void notePendingHandle(ncclComm_t* where, uint32_t slot, uint32_t parent);
  // The parent reported `result` (not ncclInProgress): its pending children are mapped and live
  // (ncclSuccess) or failed (an error).
  void resolveChildrenOf(uint32_t parent, ncclResult_t result);
  // A child's handle as NCCL wrote it: mapped, and live.
  void childReady(uint32_t slot, ncclComm_t handle, bool waitForEvents);

  // Errors returned by calls (hot path -> watchdog).
  uint64_t callErrors = 0;
  uint32_t lastErrorComm = 0;
  int32_t lastErrorResult = 0;
  uint32_t lastErrorOp = 0;

  // The slot of `comm`, kNoSlot when unknown (lock-free).
  uint32_t lookupComm(ncclComm_t comm) const;
  // The slot for a work call: cached, looked up, or (a communicator created behind our back)
  // registered with what NCCL can tell about it.
  uint32_t slotForWork(ThreadState& t, ncclComm_t comm) {
    uintptr_t key = reinterpret_cast<uintptr_t>(comm);
    if (key != 0 && key == t.cachedComm && ld(mapGeneration, std::memory_order_acquire) == t.cachedGeneration) {
      return t.cachedSlot;
    }
    return slotForWorkSlow(t, comm);
  }
  uint32_t slotForWorkSlow(ThreadState& t, ncclComm_t comm);
  // Allocates and publishes a communicator slot (under setupMutex); kNoSlot when the table is full.
  uint32_t beginComm(const CommCreate& c, int64_t nowNs);
  void mapComm(ncclComm_t comm, uint32_t slot);
  // The communicator became usable: its duration, rank, size, device and CUDA context.
  void commLive(uint32_t slot, ncclComm_t comm, int64_t nowNs, bool waitForEvents);
  void commInitFailed(uint32_t slot, int32_t result);
  void noteCallError(uint32_t slot, ncclResult_t result, shm::Op op);
  // Waits until the watchdog is not using the communicator and will not again.
  void closeForWatchdog(uint32_t slot);
  int32_t stackIndexForCaller();
};

// The recorder if it is set up and active, else null (disabled, forked child, failed set-up or not
// yet set up).
Recorder* activeRecorder();
// Sets the recorder up when this is the first call that needs it; null when disabled or impossible.
Recorder* setUpRecorder();
// True in a process forked from a recording one (it records nothing and leaves the ring alone).
bool isForkedChild();
uint32_t nextGroupId();
uint32_t readTid();
inline uint32_t currentTid(ThreadState& t) {
  // Cached for good: a forked child, whose thread ids differ, records nothing.
  if (__builtin_expect(t.tid == 0, 0)) t.tid = readTid();
  return t.tid;
}

}  // namespace ncclfr::recorder
