// GPU completion tracking: pooled CUDA events per context, and per ring slot the "launch" an entry
// belongs to. A launch is the unit that gets one start/end event pair on one stream: a call outside
// any group, or all calls of one outermost group on one stream (their events are recorded around
// ncclGroupEnd, where NCCL really launches them). The first entry of a launch is its leader and
// holds the launch's state; the others name the leader.
//
// Application threads only pop events from a pool, record them and flip a slot's launch state; the
// watchdog creates events (relaxed capture mode), polls them and returns them to the pool.
//
// Who owns a pair: the calling thread from takePair until its call returns and it publishes the
// launch's outcome (a state past kLaunchInCall) under the leader's update lock; then the slot, until
// the watchdog takes it out (under the same lock); from then on the watchdog alone, which returns it
// to the pool when the launch is finished or given up. While the state is kLaunchInCall the pair in
// the slot is only informational: a writer that laps the slot then forgets it, and the calling
// thread, finding its entry replaced when the call returns, returns the pair itself (and defers
// nothing). A pair still in a slot past kLaunchInCall when a writer a lap later claims the slot was
// never taken by the watchdog, so that writer returns it. A deferred launch's pair is also named in
// the deferred list, whose resolver records on it only under the leader's update lock: the watchdog
// returns it only once the ring has really replaced the leader. No pair is ever recorded on or
// polled after someone else may have handed it out again.
#pragma once

#include <cuda.h>

#include <atomic>
#include <cstdint>
#include <mutex>

#include "cuda_driver.h"
#include "shm_ring.h"

namespace ncclfr::recorder {

inline constexpr int kMaxContexts = 8;
inline constexpr uint32_t kMaxPairsPerContext = 65536;
inline constexpr uint64_t kNoLeader = UINT64_MAX;
inline constexpr int kMaxGroupComms = 8;   // communicators one group's deferred launch waits on

// TrackSlot::launchState (leaders only).
enum LaunchState : uint32_t {
  kLaunchNone = 0,       // not a leader / untracked
  kLaunchOpen = 1,       // group leader, its ncclGroupEnd has not run yet
  kLaunchInCall = 2,     // start recorded, the NCCL call has not returned yet
  kLaunchRecorded = 3,   // start (full mode) and end recorded: the watchdog polls them
  kLaunchDeferred = 4,   // non-blocking: start recorded, end waits for ncclCommGetAsyncError success
  kLaunchFailed = 5,     // the call or its group returned an error: nothing was launched
  kLaunchCancelled = 6,  // ncclGroupSimulateEnd closed the group: nothing was launched
  kLaunchUntracked = 7,  // no events could be had, or recording one failed: the entries are
                         // EntryState::kUntracked (completed only if a later timed launch on
                         // their stream completes)
};

// Process-local companion of each ring slot; protected by the ring slot's commit word exactly like
// the entry itself (written while Writing or Updating, read under Updating).
// A cache line each: consecutive ring positions usually belong to different threads.
struct alignas(64) TrackSlot {
  uint64_t stream;
  uint64_t leader;       // ring index of the launch's leader, kNoLeader = none
  uint32_t pair;         // event pair handle (pairHandle()), 0 = none; leaders only
  uint32_t launchState;  // LaunchState; leaders only
  uint32_t ctx;          // context index
};
static_assert(sizeof(TrackSlot) == 64);

struct EventPair {
  CUevent start;
  CUevent end;
};

inline uint32_t pairHandle(uint32_t ctx, uint32_t pair) { return ((ctx << 16) | pair) + 1; }
inline uint32_t handleCtx(uint32_t handle) { return (handle - 1) >> 16; }
inline uint32_t handlePair(uint32_t handle) { return (handle - 1) & 0xffff; }

// A lock-free stack of free pairs (Treiber, with a tag against ABA).
class EventPool {
 public:
  EventPair* pairs = nullptr;   // kMaxPairsPerContext, allocated by the watchdog
  uint32_t* next = nullptr;
  uint64_t head = 0;            // (tag << 32) | (index + 1), 0 = empty
  uint32_t created = 0;         // pairs made (indexes claimed atomically: the watchdog and, when the
                                // pool runs dry, application threads make them)
  uint32_t available = 0;       // approximate count of free pairs

  // Returns a pair index + 1, 0 when empty.
  uint32_t pop();
  void push(uint32_t index);
};

struct GpuContext {
  uintptr_t ctx = 0;            // CUcontext, 0 = free slot
  uint32_t state = 0;           // kCtx*
  EventPool pool;
  // Watchdog only.
  CUstream refStream = nullptr;
  CUevent refEvent = nullptr;
  int64_t refHostNs = 0;        // host CLOCK_MONOTONIC of refEvent
  int64_t refTakenNs = 0;
  uint32_t refillTarget = 256;
};
inline constexpr uint32_t kCtxFree = 0, kCtxRequested = 1, kCtxReady = 2, kCtxFailed = 3;

// What an application thread decided for one call.
struct LaunchPlan {
  bool captured = false;
  bool tracked = false;       // part of a launch whose events exist or will be recorded
  bool leader = false;
  uint64_t leaderIndex = kNoLeader;  // followers: their leader
  uint32_t ctx = 0;
  uint32_t pair = 0;          // leaders outside groups: the popped pair
};

class GpuTracker {
 public:
  const CudaDriver* cu = nullptr;   // null: host-only
  shm::TimingMode timing = shm::TimingMode::kHostOnly;
  GpuContext ctxs[kMaxContexts];
  TrackSlot* track = nullptr;       // one per ring slot
  uint32_t trackMask = 0;

  bool gpuTiming() const { return cu != nullptr && timing != shm::TimingMode::kHostOnly; }

  // Index of `ctx` in ctxs, registering it (for the watchdog to set up) when new; -1 when the table
  // is full or the context is not ready yet.
  int readyContext(uintptr_t ctx);
  // Registers `ctx` and returns its index (or -1 when the table is full).
  int registerContext(uintptr_t ctx);

  // Pops a pair from a ready context's pool (0 when empty: the call goes untracked).
  uint32_t takePair(int ctx);
  void releasePair(uint32_t handle);
  EventPair& pairOf(uint32_t handle) { return ctxs[handleCtx(handle)].pool.pairs[handlePair(handle)]; }

  TrackSlot& trackOf(uint64_t index) { return track[index & trackMask]; }

  // Non-blocking communicators: launches whose end event waits for the communicator's
  // ncclCommGetAsyncError to report success.
  static constexpr int kMaxDeferred = 256;
  struct Deferred {
    uint64_t leader;
    uint64_t stream;
    uint32_t pair;        // the watchdog may already own it: it keeps it until the state changes
    uint32_t comms[kMaxGroupComms];
    uint32_t commCount;
  };
  std::mutex deferredMutex;
  Deferred deferred[kMaxDeferred];
  int deferredCount = 0;            // under deferredMutex
  std::atomic<int> deferredPending{0};
};

}  // namespace ncclfr::recorder
