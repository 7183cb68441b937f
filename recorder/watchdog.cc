#include "watchdog.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include <capnp/message.h>

#include "fs_util.h"
#include "log.h"
#include "signals.h"
#include "ncclfr/dump_file.h"
#include "ncclfr/trigger.h"
#include "real_nccl.h"
#include "recorder.h"
#include "ring_to_dump.h"
#include "stacks.h"

namespace ncclfr::recorder {

const char* workOpName(shm::Op op);

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kBusyPollNs = 5 * kMs;     // while GPU work is pending
constexpr int64_t kIdlePollNs = 100 * kMs;
constexpr int64_t kExitSettleNs = 1 * kSec;  // how long the exit dump waits for launches to end
constexpr int64_t kAsyncErrorPollNs = 500 * kMs;
constexpr int64_t kClockRefreshNs = 1 * kSec;

const char* resultName(int32_t r) {
  static const char* const kNames[] = {"ncclSuccess",     "ncclUnhandledCudaError", "ncclSystemError",
                                       "ncclInternalError", "ncclInvalidArgument",  "ncclInvalidUsage",
                                       "ncclRemoteError", "ncclInProgress"};
  return r >= 0 && r < 8 ? kNames[r] : "unknown ncclResult_t";
}

schema::DumpReason reasonOf(DumpCause c) {
  switch (c) {
    case DumpCause::kStall: return schema::DumpReason::STALL;
    case DumpCause::kNcclError: return schema::DumpReason::NCCL_ERROR;
    case DumpCause::kAbort: return schema::DumpReason::ABORT;
    case DumpCause::kSignal: return schema::DumpReason::SIGNAL;
    case DumpCause::kPeer: return schema::DumpReason::PEER_REQUEST;
    case DumpCause::kOnDemand: return schema::DumpReason::ON_DEMAND;
    case DumpCause::kExit: return schema::DumpReason::EXIT;
  }
  return schema::DumpReason::UNKNOWN;
}

const char* reasonWord(DumpCause c) {
  switch (c) {
    case DumpCause::kStall: return "stall";
    case DumpCause::kNcclError: return "ncclError";
    case DumpCause::kAbort: return "abort";
    case DumpCause::kSignal: return "signal";
    case DumpCause::kPeer: return "peerRequest";
    case DumpCause::kOnDemand: return "onDemand";
    case DumpCause::kExit: return "exit";
  }
  return "unknown";
}

std::string signalName(int sig) {
  const char* d = sigabbrev_np(sig);
  return d != nullptr ? std::string("SIG") + d : "signal " + std::to_string(sig);
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string seconds(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ns) / 1e9);
  return buf;
}

}  // namespace

// Everything only the watchdog thread touches.
class WatchdogLoop {
 public:
  WatchdogLoop(Watchdog* w, Recorder* r) : w_(w), r_(r), ring_(r->ring), gpu_(r->gpu) {}
  void run();

 private:
  struct Member {
    uint64_t index;
    uint32_t comm;
    uint32_t p2pSlot;
    int64_t seq;
    int64_t p2pSeq;
    bool p2p;
    int64_t enqueueNs;
    uint64_t stream = 0;
  };
  // kOpen: published, not launched yet (group open, or still inside the NCCL call); kQueued: on
  // its stream's queue, in stream order; kDone: finished (or given up).
  enum class Phase { kOpen, kQueued, kDone };
  struct Launch {
    uint64_t leader = 0;
    uint64_t stream = 0;
    uint32_t ctx = 0;
    uint32_t pair = 0;       // ours once taken from the leader's TrackSlot (0 = none)
    bool pairless = false;   // no events (untracked): completes when a later timed launch on its
                             // stream does
    bool started = false;
    bool deferred = false;
    Phase phase = Phase::kOpen;
    // How it finished (or started), for members the ring hands us late.
    shm::EntryState outcome = shm::EntryState::kScheduled;
    bool simulated = false;
    int64_t startNs = 0;
    int64_t endNs = 0;
    int64_t firstEnqueueNs = 0;
    shm::Op op = shm::Op::kUnknown;
    std::vector<Member> members;
  };
  struct Incident {
    bool active = false;
    std::string id;
    int64_t wallNs = 0;
    int32_t triggerRank = -1;
    bool resolved = true;
    std::vector<uint64_t> pendingLaunches;   // leaders pending at dump time
    std::vector<uint64_t> pendingCalls;      // calls inside NCCL at dump time
    std::vector<uint32_t> busyComms;
    int64_t dumpMonoNs = 0;                  // when the dump was taken
  };
  struct Pending {
    int64_t sinceNs = 0;
    std::string what;
  };

  // One cycle's pieces.
  void handleSignal();
  void handleRequests();
  void setUpContexts();
  void refreshClocks(int64_t now);
  void drainRing();
  void adopt(uint64_t index, const shm::RingEntry& e);
  // A call without events of its own (untracked, or a follower whose leader the ring took): a
  // launch of its own, queued on its stream once the call has returned without error.
  void adoptPairless(const Member& m, shm::Op op);
  void advanceOpenLaunches();
  // Polls the queued launches of every stream in stream order. `exhaustive` (a dump's final look):
  // also every launch behind the first pending one, so that nothing finished stays pending in the
  // dump whatever order threads sharing a stream launched in.
  void advanceStreams(int64_t now, bool exhaustive);
  void checkReturned();
  void checkResolved();
  void detectStall(int64_t now);
  void checkErrors(int64_t now);
  void pollTriggers(int64_t now);
  void reportHotWarnings();
  void pruneDone();

  // GPU helpers.
  bool readLeader(uint64_t leader, uint32_t* state);
  bool takeLaunch(uint64_t leader, uint32_t* state, uint32_t* pair);
  void releasePair(Launch& l);
  void queueOnStream(Launch& l);
  // One launch at position `pos` of its stream's queue `q`: true when it finished.
  bool pollLaunch(Launch& l, int64_t now);
  void becomeUntracked(Launch& l);
  // Queues a pairless launch, or completes it at once when a later timed launch on its stream has.
  void queuePairless(Launch& l);
  void completePairless(Launch& l);
  // Ring index + 1 of the newest timed launch completed on `stream` (0: none).
  uint64_t streamDoneBound(uint64_t stream) const;
  int queryEvent(uint32_t ctx, CUevent e);  // 1 done, 0 pending, -1 error
  int64_t eventHostNs(uint32_t ctx, CUevent e, int64_t fallback);
  void markMember(const Member& m, shm::EntryState state, int64_t startNs, int64_t endNs, bool simulated);
  void markMembers(Launch& l, shm::EntryState state, int64_t startNs, int64_t endNs, bool simulated);
  // True when a communicator of the launch was aborted before `endNs` (0: now, end not measured).
  bool abortedBefore(const Launch& l, int64_t endNs) const;
  void finishLaunch(Launch& l, shm::EntryState state, int64_t startNs, int64_t endNs, bool simulated);
  bool anyPending() const;
  void settleBeforeExitDump();
  bool findOldestPending(int64_t now, Pending* out) const;

  // Incidents and dumps.
  bool incident(DumpCause cause, const std::string& detail, bool propagate);
  bool joinOrStart(DumpCause cause, const std::string& detail, bool propagate);
  bool writeDump(DumpCause cause, const std::string& detail);
  void snapshotPending();
  std::string describeComm(uint32_t slot) const;

  Watchdog* w_;
  Recorder* r_;
  RingRegion& ring_;
  GpuTracker& gpu_;
  uint64_t drained_ = 0;
  static constexpr size_t kMaxHoles = 4096;
  std::set<uint64_t> holes_;                                      // positions to look at again
  std::unordered_map<uint64_t, std::vector<Member>> orphans_;     // followers seen before their leader
  std::unordered_map<uint64_t, Launch> launches_;                 // by leader index
  std::set<uint64_t> open_;                                       // leaders in kOpen, in ring order
  // Queued leaders per stream, in stream order. A thread's ring positions grow with its calls and
  // a launch goes on its stream after every earlier call of the thread, so ring order is launch
  // order (threads sharing one stream race anyway; the dump's exhaustive poll covers that).
  std::unordered_map<uint64_t, std::deque<uint64_t>> streams_;
  // Per stream, about its finished timed launches: when the latest finished (stalls are measured
  // from there) and the ring index + 1 of the newest one that completed (a pairless launch before
  // it has completed too). Dropped once the ring has lapped that launch and the stream is idle.
  struct StreamDone {
    int64_t lastDoneNs = 0;
    uint64_t completedBound = 0;
  };
  std::unordered_map<uint64_t, StreamDone> streamDone_;
  std::map<uint64_t, int64_t> inCall_;                            // calls not returned yet
  Incident incident_;
  uint64_t handledGeneration_ = 0;
  int64_t nextTriggerPoll_ = 0;
  int64_t nextErrorPoll_ = 0;
  uint64_t seenCallErrors_ = 0;
  std::vector<int32_t> seenAsyncError_;
  uint32_t reportedWarnings_ = 0;
  bool dumpWriteWarned_ = false;
  bool triggerWriteWarned_ = false;
  // The newest enqueue time of a call known to have finished (completed on the GPU; returned, when
  // only the host is timed): the job made progress after an incident once this passes its dump.
  int64_t progressNs_ = 0;
  int64_t lastHostCalibration_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Start, requests, signals.

Watchdog* Watchdog::start(Recorder* recorder, std::string* error) {
  auto* w = new Watchdog(recorder);
  w->wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  w->signalDoneFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->wakeFd_ < 0 || w->signalDoneFd_ < 0) {
    *error = std::string("cannot create the watchdog's eventfd: ") + std::strerror(errno);
    return nullptr;
  }
  // The thread takes none of the signals we handle: their handlers wait for it.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 1 << 20);
  int rc = pthread_create(&w->thread_, &attr, &Watchdog::threadMain, w);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    *error = std::string("cannot start the watchdog thread: ") + std::strerror(rc);
    return nullptr;
  }
  return w;
}

void* Watchdog::threadMain(void* self) {
  auto* w = static_cast<Watchdog*>(self);
  w->tid_.store(static_cast<pid_t>(syscall(SYS_gettid)));
  pthread_setname_np(pthread_self(), "ncclfr-watchdog");
  // The watchdog calls NCCL itself (ncclCommGetAsyncError): never record those.
  tThread.depth = 1;
  try {
    WatchdogLoop loop(w, w->recorder_);
    loop.run();
  } catch (...) {
    logWarn("the watchdog stopped after an internal error; recording continues without dumps");
  }
  w->stopped_.store(true);
  {
    std::lock_guard<std::mutex> lock(w->mutex_);
    w->doneRequest_ = w->nextRequest_ - 1;
  }
  w->cv_.notify_all();
  uint64_t one = 1;
  ssize_t ignored = ::write(w->signalDoneFd_, &one, sizeof one);
  (void)ignored;
  return nullptr;
}

void Watchdog::wake() {
  uint64_t one = 1;
  ssize_t ignored = ::write(wakeFd_, &one, sizeof one);
  (void)ignored;
}

bool Watchdog::dumpAndWait(DumpCause cause, const std::string& detail, int64_t timeoutNs) {
  if (stopped_.load()) return false;
  DumpSignalsBlocked blocked;  // we hold mutex_ at times, and a SIGTERM dump needs it
  uint64_t id;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (requestCount_ >= kMaxRequests) return false;
    id = nextRequest_++;
    requests_[requestCount_++] = Request{id, cause, detail};
  }
  wake();
  std::unique_lock<std::mutex> lock(mutex_);
  bool done = cv_.wait_for(lock, std::chrono::nanoseconds(timeoutNs), [&] { return doneRequest_ >= id; });
  return done && lastRequestDumped_;
}

void Watchdog::requestExitDump() {
  {
    DumpSignalsBlocked blocked;
    std::lock_guard<std::mutex> lock(mutex_);
    exitDumpRequested_ = true;
  }
  wake();
}

void Watchdog::shutdownAtExit() {
  if (!stopped_.load() && recorder_->config.dumpOnExit) {
    bool already;
    {
      DumpSignalsBlocked blocked;
      std::lock_guard<std::mutex> lock(mutex_);
      already = exitDumped_;
    }
    if (!already) dumpAndWait(DumpCause::kExit, "process exit", 10 * kSec);
  }
  stopping_.store(true);
  wake();
  struct timespec deadline {};
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 2;
  if (pthread_timedjoin_np(thread_, nullptr, &deadline) != 0) {
    logWarn("the watchdog did not stop within 2s at exit");
  }
}

bool Watchdog::signalDumpAndWait(int sig, int timeoutMs) {
  // Async-signal-safe: atomics, write(2), poll(2), read(2).
  if (stopped_.load()) return false;
  pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  if (self == tid_.load()) return false;  // never wait for ourselves
  uint64_t drainValue = 0;
  ssize_t ignored = ::read(signalDoneFd_, &drainValue, sizeof drainValue);
  (void)ignored;
  signalPending_.store(sig);
  uint64_t one = 1;
  ignored = ::write(wakeFd_, &one, sizeof one);
  struct pollfd p {signalDoneFd_, POLLIN, 0};
  struct timespec start {}, now {};
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t elapsedMs = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1'000'000;
    if (elapsedMs >= timeoutMs) return false;
    int rc = ::poll(&p, 1, static_cast<int>(timeoutMs - elapsedMs));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

// ---------------------------------------------------------------------------------------------
// The loop.

void WatchdogLoop::run() {
  const CudaDriver* cu = gpu_.cu;
  if (cu != nullptr) {
    // PyTorch captures CUDA graphs in global mode, where a "potentially unsafe" call (cuEventQuery,
    // ...) from ANY thread invalidates the capture, unless that thread opted out like this.
    CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
    cu->threadExchangeStreamCaptureMode(&mode);
  }
  handledGeneration_ = trigger::latestGeneration(r_->jobDir);
  int64_t now = monoNowNs();
  nextTriggerPoll_ = now + r_->config.triggerPollNs;
  nextErrorPoll_ = now + kAsyncErrorPollNs;
  seenCallErrors_ = 0;  // errors from before the loop ran are errors all the same
  seenAsyncError_.assign(ring_.header->commCapacity, 0);
  while (!w_->stopping_.load()) {
    int64_t waitNs = anyPending() ? kBusyPollNs : kIdlePollNs;
    now = monoNowNs();
    waitNs = std::min(waitNs, std::max<int64_t>(kMs, nextTriggerPoll_ - now));
    struct pollfd p {w_->wakeFd_, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(std::max<int64_t>(1, waitNs / kMs)));
    uint64_t v;
    while (::read(w_->wakeFd_, &v, sizeof v) > 0) {
    }
    if (w_->stopping_.load()) break;
    try {
      now = monoNowNs();
      handleSignal();
      setUpContexts();
      refreshClocks(now);
      drainRing();
      advanceOpenLaunches();
      advanceStreams(now, false);
      checkReturned();
      handleRequests();
      checkResolved();
      checkErrors(now);
      detectStall(now);
      pollTriggers(now);
      reportHotWarnings();
      pruneDone();
    } catch (...) {
      logWarn("watchdog: %s", describeException(std::current_exception()).c_str());
    }
  }
}

void WatchdogLoop::handleSignal() {
  int sig = w_->signalPending_.exchange(0);
  if (sig == 0) return;
  bool ok = false;
  try {
    drainRing();
    advanceOpenLaunches();
    bool isTerm = sig == SIGTERM;
    // SIGTERM during an incident this rank already dumped adds nothing; a dump signal always dumps.
    if (isTerm && incident_.active && !incident_.resolved) {
      ok = true;
    } else {
      ok = incident(DumpCause::kSignal, signalName(sig) + " received", false);
    }
  } catch (...) {
  }
  (void)ok;
  uint64_t one = 1;
  ssize_t ignored = ::write(w_->signalDoneFd_, &one, sizeof one);
  (void)ignored;
}

void WatchdogLoop::handleRequests() {
  Watchdog::Request batch[Watchdog::kMaxRequests];
  int n;
  bool exitDump;
  {
    std::lock_guard<std::mutex> lock(w_->mutex_);
    n = w_->requestCount_;
    for (int i = 0; i < n; ++i) batch[i] = std::move(w_->requests_[i]);
    w_->requestCount_ = 0;
    exitDump = w_->exitDumpRequested_ && !w_->exitDumped_;
    w_->exitDumpRequested_ = false;
  }
  if (exitDump) {
    settleBeforeExitDump();
    bool ok = incident(DumpCause::kExit, "the last communicator was destroyed", false);
    std::lock_guard<std::mutex> lock(w_->mutex_);
    w_->exitDumped_ = ok || w_->exitDumped_;
  }
  for (int i = 0; i < n; ++i) {
    bool dumped = false;
    const auto& q = batch[i];
    if (q.cause == DumpCause::kAbort) {
      // An abort with nothing pending and no error is a teardown, not an incident; one inside an
      // incident this rank already dumped adds nothing.
      bool pending = anyPending() || !inCall_.empty();
      bool inIncident = incident_.active && !incident_.resolved;
      if ((pending || gpu_.timing == shm::TimingMode::kHostOnly) && !inIncident) {
        dumped = incident(DumpCause::kAbort, q.detail, true);
      }
    } else if (q.cause == DumpCause::kExit) {
      bool already;
      {
        std::lock_guard<std::mutex> lock(w_->mutex_);
        already = w_->exitDumped_;
      }
      dumped = already || incident(DumpCause::kExit, q.detail, false);
      std::lock_guard<std::mutex> lock(w_->mutex_);
      w_->exitDumped_ = dumped || w_->exitDumped_;
    } else {
      dumped = incident(q.cause, q.detail, true);
    }
    std::lock_guard<std::mutex> lock(w_->mutex_);
    w_->lastRequestDumped_ = dumped;
    w_->doneRequest_ = q.id;
  }
  if (n > 0) w_->cv_.notify_all();
}

// ---------------------------------------------------------------------------------------------
// CUDA contexts, event pools, clocks.

void WatchdogLoop::setUpContexts() {
  const CudaDriver* cu = gpu_.cu;
  if (!gpu_.gpuTiming()) return;
  for (int i = 0; i < kMaxContexts; ++i) {
    GpuContext& g = gpu_.ctxs[i];
    uintptr_t c = ld(g.ctx, std::memory_order_acquire);
    if (c == 0) break;
    uint32_t state = ld(g.state, std::memory_order_acquire);
    if (state == kCtxFailed) continue;
    CUcontext ctx = reinterpret_cast<CUcontext>(c);
    if (state == kCtxRequested) {
      bool ok = cu->ctxPushCurrent(ctx) == CUDA_SUCCESS;
      if (ok) {
        g.pool.pairs = static_cast<EventPair*>(std::calloc(kMaxPairsPerContext, sizeof(EventPair)));
        g.pool.next = static_cast<uint32_t*>(std::calloc(kMaxPairsPerContext, sizeof(uint32_t)));
        ok = g.pool.pairs != nullptr && g.pool.next != nullptr &&
             cu->streamCreate(&g.refStream, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS &&
             cu->eventCreate(&g.refEvent, CU_EVENT_DEFAULT) == CUDA_SUCCESS;
        CUcontext popped;
        cu->ctxPopCurrent(&popped);
      }
      if (!ok) {
        logWarn("cannot set up CUDA events for a context; its calls are recorded without GPU times");
        st(g.state, kCtxFailed, std::memory_order_release);
        continue;
      }
      g.refillTarget = 256;
    }
    // Keep the pool topped up; an empty pool (calls went untracked) doubles the target.
    uint32_t available = ld(g.pool.available);
    uint32_t created = ld(g.pool.created);
    if (available == 0 && created > 0) g.refillTarget = std::min<uint32_t>(g.refillTarget * 2, 4096);
    if (available < g.refillTarget / 2 && created < kMaxPairsPerContext) {
      if (cu->ctxPushCurrent(ctx) == CUDA_SUCCESS) {
        uint32_t want = g.refillTarget - available;
        for (uint32_t k = 0; k < want; ++k) {
          uint32_t index = fetchAdd(g.pool.created, uint32_t{1});
          if (index >= kMaxPairsPerContext) break;
          EventPair& p = g.pool.pairs[index];
          if (cu->eventCreate(&p.start, CU_EVENT_DEFAULT) != CUDA_SUCCESS) break;
          if (cu->eventCreate(&p.end, CU_EVENT_DEFAULT) != CUDA_SUCCESS) {
            if (cu->eventDestroy) cu->eventDestroy(p.start);
            break;
          }
          g.pool.push(index);
        }
        CUcontext popped;
        cu->ctxPopCurrent(&popped);
      }
    }
    if (state == kCtxRequested) st(g.state, kCtxReady, std::memory_order_release);
  }
}

void WatchdogLoop::refreshClocks(int64_t now) {
  if (now - lastHostCalibration_ >= kClockRefreshNs) {
    r_->clock.recalibrate();
    lastHostCalibration_ = now;
  }
  if (!gpu_.gpuTiming()) return;
  const CudaDriver* cu = gpu_.cu;
  for (int i = 0; i < kMaxContexts; ++i) {
    GpuContext& g = gpu_.ctxs[i];
    if (ld(g.ctx, std::memory_order_acquire) == 0) break;
    if (ld(g.state, std::memory_order_acquire) != kCtxReady || now - g.refTakenNs < kClockRefreshNs) continue;
    // A reference event on our own idle stream: the host time right after it completes is its
    // time on the host clock (to a few microseconds); other events are placed relative to it
    // with cuEventElapsedTime.
    if (cu->ctxPushCurrent(reinterpret_cast<CUcontext>(g.ctx)) != CUDA_SUCCESS) continue;
    g.refTakenNs = now;
    if (cu->eventRecord(g.refEvent, g.refStream) == CUDA_SUCCESS) {
      int64_t deadline = monoNowNs() + 20 * kMs;
      CUresult q;
      while ((q = cu->eventQuery(g.refEvent)) == CUDA_ERROR_NOT_READY && monoNowNs() < deadline) {
      }
      if (q == CUDA_SUCCESS) g.refHostNs = monoNowNs();
    }
    CUcontext popped;
    cu->ctxPopCurrent(&popped);
  }
}

int WatchdogLoop::queryEvent(uint32_t ctx, CUevent e) {
  (void)ctx;
  CUresult q = gpu_.cu->eventQuery(e);
  if (q == CUDA_SUCCESS) return 1;
  if (q == CUDA_ERROR_NOT_READY) return 0;
  return -1;
}

int64_t WatchdogLoop::eventHostNs(uint32_t ctx, CUevent e, int64_t fallback) {
  GpuContext& g = gpu_.ctxs[ctx];
  if (g.refHostNs == 0) return fallback;
  float ms = 0;
  if (gpu_.cu->eventElapsedTime(&ms, g.refEvent, e) != CUDA_SUCCESS) return fallback;
  int64_t t = g.refHostNs + static_cast<int64_t>(static_cast<double>(ms) * 1e6);
  // Never later than when we saw it complete.
  return std::min(t, fallback);
}

// ---------------------------------------------------------------------------------------------
// Following the ring.

void WatchdogLoop::drainRing() {
  uint64_t head = ld(ring_.header->head, std::memory_order_acquire);
  uint64_t capacity = uint64_t{ring_.ringMask} + 1;
  uint64_t oldest = head > capacity ? head - capacity : 0;
  // Positions skipped earlier because they were not written yet: written now, or still not.
  for (auto it = holes_.begin(); it != holes_.end();) {
    shm::RingEntry e{};
    SlotRead s = *it < oldest ? SlotRead::kOverwritten : readSlot(ring_, *it, &e);
    if (s == SlotRead::kOk) adopt(*it, e);
    it = (s == SlotRead::kOk || s == SlotRead::kOverwritten) ? holes_.erase(it) : std::next(it);
  }
  if (drained_ < oldest) drained_ = oldest;
  while (drained_ < head) {
    shm::RingEntry e{};
    SlotRead s = readSlot(ring_, drained_, &e);
    if (s == SlotRead::kOk) {
      adopt(drained_, e);
    } else if (s == SlotRead::kWriting || s == SlotRead::kEmpty) {
      // Being written, or reserved by a thread that has not used it (yet): look again later.
      if (holes_.size() < kMaxHoles) holes_.insert(drained_);
    }
    ++drained_;
  }
}

void WatchdogLoop::adopt(uint64_t index, const shm::RingEntry& e) {
  if (e.state == static_cast<uint8_t>(shm::EntryState::kCaptured)) return;
  bool returned = entryReturned(ring_, e, index);
  if (!returned) {
    inCall_[index] = e.enqueueMonoNs;
  } else if (!gpu_.gpuTiming()) {
    progressNs_ = std::max(progressNs_, e.enqueueMonoNs);
  }
  if (!gpu_.gpuTiming()) return;  // host-only: nothing to follow on a GPU
  // Read the track slot under the entry's update lock: it is only trustworthy while the slot holds
  // this index.
  shm::RingEntry* slot = &ring_.entries[index & ring_.ringMask];
  if (!beginUpdate(slot, index)) return;
  TrackSlot& tr = gpu_.trackOf(index);
  uint64_t leader = ld(tr.leader);
  uint64_t stream = ld(tr.stream);
  uint32_t ctx = ld(tr.ctx);
  endUpdate(slot, index);
  auto op = static_cast<shm::Op>(e.op);
  Member m{index, e.comm, e.p2pSlot, e.seq, e.p2pSeq, op == shm::Op::kSend || op == shm::Op::kRecv, e.enqueueMonoNs};
  m.stream = stream;
  if (leader == index) {
    Launch l;
    l.leader = index;
    l.stream = stream;
    l.ctx = ctx;
    l.firstEnqueueNs = e.enqueueMonoNs;
    l.op = op;
    l.members.push_back(m);
    if (auto o = orphans_.find(index); o != orphans_.end()) {
      l.members.insert(l.members.end(), o->second.begin(), o->second.end());
      orphans_.erase(o);
    }
    launches_[index] = std::move(l);
    open_.insert(index);
  } else if (leader != kNoLeader) {
    auto it = launches_.find(leader);
    if (it == launches_.end()) {
      // Its leader was published before it, but we may have passed the leader's slot a moment
      // too early: it joins the launch when the leader is adopted from the holes.
      if (holes_.count(leader)) {
        orphans_[leader].push_back(m);
        return;
      }
      // The ring took its leader before we saw it (a group longer than the ring), or its launch
      // was pruned: without the launch's events it completes when a later timed launch on its
      // stream does.
      if (e.state == static_cast<uint8_t>(shm::EntryState::kError)) return;
      markMember(m, shm::EntryState::kUntracked, 0, 0, false);
      adoptPairless(m, op);
      return;
    }
    Launch& l = it->second;
    l.members.push_back(m);
    // We lag behind the ring: give a late member what the launch's other members already have.
    if (l.phase == Phase::kDone) {
      markMember(m, l.outcome, l.startNs, l.endNs, l.simulated);
    } else if (l.pairless) {
      markMember(m, shm::EntryState::kUntracked, 0, 0, false);
    } else if (l.started) {
      markMember(m, shm::EntryState::kStarted, l.startNs, 0, false);
    }
  } else if (e.state != static_cast<uint8_t>(shm::EntryState::kError)) {
    // No events (published kUntracked).
    m.stream = e.stream;
    adoptPairless(m, op);
  }
}

void WatchdogLoop::adoptPairless(const Member& m, shm::Op op) {
  Launch l;
  l.leader = m.index;
  l.stream = m.stream;
  l.pairless = true;
  l.firstEnqueueNs = m.enqueueNs;
  l.op = op;
  l.members.push_back(m);
  // kOpen until its call has returned (advanceOpenLaunches): a call that fails launched nothing.
  launches_[m.index] = std::move(l);
  open_.insert(m.index);
}

bool WatchdogLoop::readLeader(uint64_t leader, uint32_t* state) {
  shm::RingEntry* slot = &ring_.entries[leader & ring_.ringMask];
  if (!beginUpdate(slot, leader)) return false;
  *state = ld(gpu_.trackOf(leader).launchState);
  endUpdate(slot, leader);
  return true;
}

// Reads a leader's launch state and, once the calling thread is done with the launch (launched,
// failed, cancelled or untracked), takes its pair out of the slot: from then on the pair is ours
// alone. False when the ring has replaced the leader (its launch is lost with it; the writer that
// replaced it returned the pair).
bool WatchdogLoop::takeLaunch(uint64_t leader, uint32_t* state, uint32_t* pair) {
  shm::RingEntry* slot = &ring_.entries[leader & ring_.ringMask];
  if (!beginUpdate(slot, leader)) return false;
  TrackSlot& tr = gpu_.trackOf(leader);
  *state = ld(tr.launchState);
  *pair = 0;
  if (*state != kLaunchNone && *state != kLaunchOpen && *state != kLaunchInCall) {
    *pair = ld(tr.pair);
    st(tr.pair, uint32_t{0});
  }
  endUpdate(slot, leader);
  return true;
}

void WatchdogLoop::releasePair(Launch& l) {
  gpu_.releasePair(l.pair);
  l.pair = 0;
}

void WatchdogLoop::queueOnStream(Launch& l) {
  std::deque<uint64_t>& q = streams_[l.stream];
  auto pos = q.end();
  while (pos != q.begin() && *std::prev(pos) > l.leader) --pos;
  q.insert(pos, l.leader);
  l.phase = Phase::kQueued;
}

// Applies `state` to one member's entry, never backwards (scheduled < untracked < started <
// completed; an error or a capture stays), and keeps the exact counters even when the ring has
// already replaced the entry.
void WatchdogLoop::markMember(const Member& m, shm::EntryState state, int64_t startNs, int64_t endNs, bool simulated) {
  auto rank = [](shm::EntryState s) {
    switch (s) {
      case shm::EntryState::kScheduled: return 0;
      case shm::EntryState::kUntracked: return 1;
      case shm::EntryState::kStarted: return 2;
      case shm::EntryState::kCompleted: return 3;
      default: return 4;  // error, captured: final
    }
  };
  shm::RingEntry* slot = &ring_.entries[m.index & ring_.ringMask];
  bool failedCall = false;
  if (beginUpdate(slot, m.index)) {
    uint64_t* words = entryWords(slot);
    uint64_t os = ld(words[kWordOpState]);
    auto current = static_cast<shm::EntryState>((os >> 24) & 0xff);
    failedCall = current == shm::EntryState::kError;
    bool apply = state == shm::EntryState::kError ? rank(current) < 4 : rank(current) < rank(state);
    if (apply) {
      os = (os & ~(uint64_t{0xff} << 24)) | (uint64_t{static_cast<uint8_t>(state)} << 24);
      if (simulated) os |= uint64_t{shm::kEntrySimulated} << 32;
      st(words[kWordOpState], os);
      if (startNs != 0) st(words[kWordStart], static_cast<uint64_t>(startNs));
      if (endNs != 0) st(words[kWordEnd], static_cast<uint64_t>(endNs));
    }
    endUpdate(slot, m.index);
  }
  if (state != shm::EntryState::kStarted && state != shm::EntryState::kCompleted) return;
  // A call that returned an error launched nothing: its sequence number neither started nor
  // completed (once the ring has replaced the entry, that can no longer be told).
  if (failedCall) return;
  // Exact counters, whatever the ring evicts.
  // Starts are only seen with start events (NCCLFR_TIMING=full); otherwise they stay -1.
  bool completed = state == shm::EntryState::kCompleted;
  bool full = gpu_.timing == shm::TimingMode::kFull;
  if (completed) progressNs_ = std::max(progressNs_, m.enqueueNs);
  if (m.p2p) {
    if (m.p2pSlot != 0 && m.p2pSeq >= 0) {
      shm::P2PSlot& p = ring_.p2p[m.p2pSlot - 1];
      if (full) storeMax(p.lastStartedSeq, m.p2pSeq);
      if (completed) storeMax(p.lastCompletedSeq, m.p2pSeq);
    }
  } else if (m.comm < ring_.header->commCapacity) {
    shm::CommSlot& c = ring_.comms[m.comm];
    if (full) storeMax(c.lastStartedSeq, m.seq);
    if (completed) storeMax(c.lastCompletedSeq, m.seq);
  }
}

bool WatchdogLoop::abortedBefore(const Launch& l, int64_t endNs) const {
  if (r_ == nullptr || r_->abortMonoNs == nullptr) return false;
  int64_t limit = endNs != 0 ? endNs : monoNowNs();
  for (const Member& m : l.members) {
    if (m.comm >= ring_.header->commCapacity) continue;
    int64_t at = std::atomic_ref<int64_t>(r_->abortMonoNs[m.comm]).load(std::memory_order_acquire);
    if (at != 0 && at <= limit) return true;
  }
  return false;
}

void WatchdogLoop::markMembers(Launch& l, shm::EntryState state, int64_t startNs, int64_t endNs, bool simulated) {
  for (const Member& m : l.members) markMember(m, state, startNs, endNs, simulated);
}

void WatchdogLoop::finishLaunch(Launch& l, shm::EntryState state, int64_t startNs, int64_t endNs, bool simulated) {
  // A launch that ends after its communicator was aborted (or revoked) was cut short: its kernels
  // exited and the end event fired behind them. It ends in error, and no counter moves.
  if (state == shm::EntryState::kCompleted && abortedBefore(l, endNs)) state = shm::EntryState::kError;
  markMembers(l, state, startNs, endNs, simulated);
  releasePair(l);
  l.phase = Phase::kDone;
  l.outcome = state;
  l.simulated = simulated;
  if (startNs != 0) l.startNs = startNs;
  l.endNs = endNs;
}

// The calling thread could attach no events after all (none left at ncclGroupEnd, a record that
// failed): the members say so, and the launch stays in its stream's order to complete when a later
// timed launch does.
void WatchdogLoop::becomeUntracked(Launch& l) {
  releasePair(l);
  l.pairless = true;
  l.deferred = false;
  markMembers(l, shm::EntryState::kUntracked, 0, 0, false);
}

uint64_t WatchdogLoop::streamDoneBound(uint64_t stream) const {
  auto it = streamDone_.find(stream);
  return it != streamDone_.end() ? it->second.completedBound : 0;
}

void WatchdogLoop::completePairless(Launch& l) {
  markMembers(l, shm::EntryState::kCompleted, 0, 0, false);
  l.phase = Phase::kDone;
  l.outcome = shm::EntryState::kCompleted;
}

void WatchdogLoop::queuePairless(Launch& l) {
  l.pairless = true;
  if (streamDoneBound(l.stream) > l.leader) {
    // A later launch on its stream has already completed (stream order): so has this one.
    completePairless(l);
    return;
  }
  queueOnStream(l);
}

void WatchdogLoop::advanceOpenLaunches() {
  // In ring order, so that launches reach their stream's queue in order (queueOnStream sorts too:
  // holes are adopted late).
  for (auto it = open_.begin(); it != open_.end();) {
    auto lt = launches_.find(*it);
    if (lt == launches_.end() || lt->second.phase != Phase::kOpen) {
      it = open_.erase(it);
      continue;
    }
    Launch& l = lt->second;
    if (l.pairless) {
      // Its one call: queued once it has returned, unless it failed (nothing was launched).
      shm::RingEntry* slot = &ring_.entries[l.leader & ring_.ringMask];
      uint64_t c = ld(slot->commit, std::memory_order_acquire);
      uint64_t word = ld(entryWords(slot)[kWordReturned], std::memory_order_acquire);
      bool gone = shm::commitIndex(c) != l.leader;
      bool returned = shm::hasReturned(word) && (word >> 48) == shm::lapTag(l.leader, ring_.ringMask + 1);
      if (!gone && !returned) {
        ++it;
        continue;
      }
      int32_t result = shm::returnedResult(word);
      if (gone) {
        l.phase = Phase::kDone;  // nothing left to mark; pruneDone drops it
      } else if (result != ncclSuccess && result != ncclInProgress) {
        l.phase = Phase::kDone;
        l.outcome = shm::EntryState::kError;
      } else {
        queuePairless(l);
      }
      it = open_.erase(it);
      continue;
    }
    uint32_t state = 0, pair = 0;
    if (!takeLaunch(l.leader, &state, &pair)) {
      // The ring took the leader before the launch was known to have launched (a group longer
      // than the ring, a call still inside NCCL): without its events, its members still in the
      // ring complete when a later timed launch on the stream does.
      becomeUntracked(l);
      queuePairless(l);
      it = open_.erase(it);
      continue;
    }
    if (state == kLaunchNone || state == kLaunchOpen || state == kLaunchInCall) {
      ++it;  // its group has not ended, or the call has not returned
      continue;
    }
    l.pair = pair;
    switch (state) {
      case kLaunchRecorded:
      case kLaunchDeferred:
        l.deferred = state == kLaunchDeferred;
        if (l.pair == 0) {
          becomeUntracked(l);
          queuePairless(l);
        } else {
          queueOnStream(l);
        }
        break;
      case kLaunchFailed:
        finishLaunch(l, shm::EntryState::kError, 0, 0, false);
        break;
      case kLaunchCancelled:
        finishLaunch(l, shm::EntryState::kCompleted, 0, 0, true);
        break;
      default:  // kLaunchUntracked
        becomeUntracked(l);
        queuePairless(l);
        break;
    }
    it = open_.erase(it);
  }
}

// A timed launch (pairless ones complete by stream order, in advanceStreams).
bool WatchdogLoop::pollLaunch(Launch& l, int64_t now) {
  if (l.deferred) {
    // Non-blocking: the end event goes on the stream when ncclCommGetAsyncError reports success.
    uint32_t state = 0;
    if (!readLeader(l.leader, &state)) {
      // Replaced by the ring while we thought it deferred. Its end event may or may not have been
      // recorded before that (the slot said which), so the pair tells nothing: back to the pool
      // (the resolver records only under the leader's update lock, which it can no longer take),
      // and the members still in the ring complete when a later timed launch does.
      becomeUntracked(l);
      return false;
    }
    if (state == kLaunchRecorded) {
      l.deferred = false;
    } else if (state != kLaunchDeferred) {
      becomeUntracked(l);
      return false;
    }
  }
  if (l.pairless) return false;
  EventPair& events = gpu_.pairOf(l.pair);
  bool full = gpu_.timing == shm::TimingMode::kFull;
  if (full && !l.started && queryEvent(l.ctx, events.start) == 1) {
    l.started = true;
    l.startNs = eventHostNs(l.ctx, events.start, now);
    markMembers(l, shm::EntryState::kStarted, l.startNs, 0, false);
  }
  if (l.deferred) return false;  // its end is not on the stream yet
  int e = queryEvent(l.ctx, events.end);
  if (e == 0) return false;
  StreamDone& done = streamDone_[l.stream];
  if (e < 0) {
    finishLaunch(l, shm::EntryState::kError, 0, 0, false);
  } else {
    int64_t startNs = l.startNs;
    if (full && !l.started && queryEvent(l.ctx, events.start) == 1) startNs = eventHostNs(l.ctx, events.start, now);
    finishLaunch(l, shm::EntryState::kCompleted, startNs, eventHostNs(l.ctx, events.end, now), false);
    // An aborted launch proves nothing about the untimed ones before it.
    if (l.outcome == shm::EntryState::kCompleted) done.completedBound = std::max(done.completedBound, l.leader + 1);
  }
  done.lastDoneNs = now;
  return true;
}

void WatchdogLoop::advanceStreams(int64_t now, bool exhaustive) {
  for (auto& [stream, q] : streams_) {
    // In stream order: once one launch is pending, the ones behind it are too. A run of pairless
    // launches at the front completes with the first timed launch behind it, in one pass.
    while (!q.empty()) {
      auto it = launches_.find(q.front());
      if (it == launches_.end() || it->second.phase == Phase::kDone) {
        q.pop_front();
        continue;
      }
      Launch& l = it->second;
      if (!l.pairless) {
        if (pollLaunch(l, now)) {
          q.pop_front();
          continue;
        }
        if (!l.pairless) break;
        // It lost its events just now: from here on it is one of the pairless run.
      }
      uint64_t bound = streamDoneBound(stream);
      if (bound <= l.leader) {
        for (size_t k = 1; k < q.size(); ++k) {
          auto jt = launches_.find(q[k]);
          if (jt == launches_.end() || jt->second.phase == Phase::kDone || jt->second.pairless) continue;
          pollLaunch(jt->second, now);
          break;
        }
        bound = streamDoneBound(stream);
      }
      bool moved = false;
      while (!q.empty()) {
        auto jt = launches_.find(q.front());
        if (jt == launches_.end() || jt->second.phase == Phase::kDone) {
          q.pop_front();
          continue;
        }
        if (!jt->second.pairless || jt->second.leader >= bound) break;
        completePairless(jt->second);
        q.pop_front();
        moved = true;
      }
      if (!moved) break;
    }
    if (!exhaustive || q.size() < 2) continue;
    // The dump's final look at everything behind the pending front: a launch is what its own
    // events say, and a pairless one completes when a later timed one has.
    for (size_t k = 1; k < q.size(); ++k) {
      auto it = launches_.find(q[k]);
      if (it == launches_.end() || it->second.phase == Phase::kDone || it->second.pairless) continue;
      pollLaunch(it->second, now);
    }
    uint64_t bound = streamDoneBound(stream);
    for (uint64_t leader : q) {
      auto it = launches_.find(leader);
      if (it == launches_.end() || it->second.phase == Phase::kDone || !it->second.pairless) continue;
      if (leader < bound) completePairless(it->second);
    }
    std::erase_if(q, [&](uint64_t leader) {
      auto it = launches_.find(leader);
      return it == launches_.end() || it->second.phase == Phase::kDone;
    });
  }
}

void WatchdogLoop::checkReturned() {
  for (auto it = inCall_.begin(); it != inCall_.end();) {
    shm::RingEntry* slot = &ring_.entries[it->first & ring_.ringMask];
    uint64_t c = ld(slot->commit, std::memory_order_acquire);
    bool gone = shm::commitIndex(c) != it->first;
    uint64_t word = ld(entryWords(slot)[kWordReturned], std::memory_order_acquire);
    bool returned = shm::hasReturned(word) && (word >> 48) == shm::lapTag(it->first, ring_.ringMask + 1);
    if (gone || returned) {
      if (!gone && !gpu_.gpuTiming()) progressNs_ = std::max(progressNs_, it->second);
      it = inCall_.erase(it);
    } else {
      ++it;
    }
  }
}

void WatchdogLoop::pruneDone() {
  uint64_t capacity = uint64_t{ring_.ringMask} + 1;
  uint64_t oldest = drained_ > capacity ? drained_ - capacity : 0;
  // Keep finished launches around while late members may still be drained (they were appended
  // before their launch finished, so at most a ring's length behind).
  // A timed launch still queued when the ring replaces its entries is kept until it finishes (or
  // too many are kept): its communicator's counters must still move when it does.
  bool crowded = launches_.size() > 4 * capacity;
  for (auto it = launches_.begin(); it != launches_.end();) {
    Launch& l = it->second;
    bool lapped = l.leader < oldest;
    bool erase = false;
    if (l.phase == Phase::kDone) {
      erase = lapped || crowded;
    } else if (l.pairless) {
      // Only a later timed launch can complete it, and that one moves the counters anyway: once
      // the ring holds none of its members, there is nothing left to mark.
      uint64_t newest = 0;
      for (const Member& m : l.members) newest = std::max(newest, m.index);
      erase = newest < oldest;
    } else if (l.deferred) {
      // "Lapped" from drained_ is a guess (an idle thread's reserved block can leave the leader in
      // its slot), and the resolver may still record on a deferred pair: it is returned only once
      // the slot really holds another entry.
      uint32_t state = 0;
      if (lapped && !readLeader(l.leader, &state)) becomeUntracked(l);
    } else {
      erase = lapped && crowded;
    }
    if (erase) {
      releasePair(l);
      it = launches_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = streams_.begin(); it != streams_.end();) {
    it = it->second.empty() ? streams_.erase(it) : std::next(it);
  }
  for (auto it = streamDone_.begin(); it != streamDone_.end();) {
    bool idle = !streams_.count(it->first);
    it = idle && it->second.completedBound <= oldest ? streamDone_.erase(it) : std::next(it);
  }
  for (auto it = orphans_.begin(); it != orphans_.end();) {
    if (holes_.count(it->first)) {
      ++it;
      continue;
    }
    // The leader's position was lapped before it was ever written whole: each follower goes on
    // alone, without events.
    for (const Member& m : it->second) {
      markMember(m, shm::EntryState::kUntracked, 0, 0, false);
      adoptPairless(m, shm::Op::kUnknown);
    }
    it = orphans_.erase(it);
  }
}

// The last communicator has just been destroyed or aborted, but the GPU may still be finishing the
// work queued before (ncclCommDestroy and ncclCommAbort do not wait for the application's streams;
// after an abort the cut kernels exit a moment later). The exit dump waits for those launches to
// end, for at most kExitSettleNs on this thread (a stream held by a hung kernel never drains), so
// that it shows how they ended rather than a "started" that was already over.
void WatchdogLoop::settleBeforeExitDump() {
  int64_t deadline = monoNowNs() + kExitSettleNs;
  for (;;) {
    drainRing();
    advanceOpenLaunches();
    advanceStreams(monoNowNs(), true);
    if (!anyPending() || monoNowNs() >= deadline || w_->stopping_.load()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

bool WatchdogLoop::anyPending() const {
  if (!inCall_.empty() || !open_.empty()) return true;
  for (const auto& [stream, q] : streams_) {
    for (uint64_t leader : q) {
      auto it = launches_.find(leader);
      if (it != launches_.end() && it->second.phase != Phase::kDone && !it->second.pairless) return true;
    }
  }
  return false;
}

std::string WatchdogLoop::describeComm(uint32_t slot) const {
  if (slot >= ld(ring_.header->commCount, std::memory_order_acquire)) return "an unknown communicator";
  const shm::CommSlot& c = ring_.comms[slot];
  return "comm " + hex(c.id) + " (rank " + std::to_string(ld(c.rank)) + " of " + std::to_string(ld(c.size)) + ")";
}

bool WatchdogLoop::findOldestPending(int64_t now, Pending* out) const {
  bool found = false;
  auto consider = [&](int64_t since, auto&& describe) {
    if (since <= 0) return;
    if (!found || since < out->sinceNs) {
      found = true;
      out->sinceNs = since;
      out->what = describe();
    }
  };
  for (const auto& [stream, q] : streams_) {
    for (uint64_t leader : q) {
      auto it = launches_.find(leader);
      if (it == launches_.end() || it->second.phase == Phase::kDone || it->second.pairless) continue;
      const Launch& l = it->second;
      auto done = streamDone_.find(stream);
      int64_t since = std::max(l.firstEnqueueNs, done != streamDone_.end() ? done->second.lastDoneNs : 0);
      consider(since, [&] {
        const Member& m = l.members.front();
        std::string s = std::string(workOpName(l.op)) + (m.p2p ? " p2pSeq " + std::to_string(m.p2pSeq) : " seq " + std::to_string(m.seq)) +
                        " on " + describeComm(m.comm) + (l.started ? " started but not finished" : " not finished") +
                        " on the GPU (stream " + hex(stream) + ")";
        return s;
      });
      break;  // only the oldest of each stream can be the one that is stuck
    }
  }
  for (uint64_t leader : open_) {
    auto it = launches_.find(leader);
    if (it == launches_.end() || it->second.phase != Phase::kOpen) continue;
    const Launch& l = it->second;
    consider(l.firstEnqueueNs, [&] {
      const Member& m = l.members.front();
      return std::string(workOpName(l.op)) + " seq " + std::to_string(m.seq) + " on " + describeComm(m.comm) +
             " not launched (its group has not ended or the call has not returned)";
    });
  }
  for (const auto& [index, since] : inCall_) {
    consider(since, [&] {
      shm::RingEntry e{};
      if (readSlot(ring_, index, &e) != SlotRead::kOk) return std::string("a call that has not returned");
      return std::string("nccl") + workOpName(static_cast<shm::Op>(e.op)) + " call on " + describeComm(e.comm) +
             " has not returned";
    });
  }
  uint32_t comms = ld(ring_.header->commCount, std::memory_order_acquire);
  for (uint32_t i = 0; i < comms; ++i) {
    int64_t since = ld(ring_.comms[i].busySinceMonoNs);
    if (since == 0) continue;
    consider(since, [&] {
      static const char* const kOps[] = {"a call", "initialization", "ncclCommSplit", "ncclCommShrink",
                                         "ncclCommFinalize", "ncclCommDestroy"};
      uint32_t op = ld(ring_.comms[i].busyOp);
      return std::string(kOps[op < 6 ? op : 0]) + " of " + describeComm(i) + " has not finished";
    });
  }
  (void)now;
  return found;
}

void WatchdogLoop::detectStall(int64_t now) {
  if (incident_.active && !incident_.resolved) return;
  Pending p;
  if (!findOldestPending(now, &p)) return;
  int64_t age = now - p.sinceNs;
  if (age < r_->config.timeoutNs) return;
  incident(DumpCause::kStall, p.what + " after " + seconds(age) + " (NCCLFR_TIMEOUT " +
                                  formatDuration(r_->config.timeoutNs) + ")",
           true);
}

void WatchdogLoop::checkErrors(int64_t now) {
  uint64_t errors = ld(r_->callErrors, std::memory_order_acquire);
  if (errors != seenCallErrors_) {
    seenCallErrors_ = errors;
    uint32_t slot = ld(r_->lastErrorComm);
    int32_t res = ld(r_->lastErrorResult);
    auto op = static_cast<shm::Op>(ld(r_->lastErrorOp));
    std::string what = op == shm::Op::kUnknown ? std::string("NCCL reported ") + resultName(res)
                                               : std::string("nccl") + workOpName(op) + " returned " + resultName(res);
    if (!(incident_.active && !incident_.resolved)) {
      incident(DumpCause::kNcclError, what + (slot != kNoSlot ? " on " + describeComm(slot) : std::string()), true);
    }
  }
  if (now < nextErrorPoll_) return;
  nextErrorPoll_ = now + kAsyncErrorPollNs;
  auto getAsyncError = real::CommGetAsyncError();
  if (getAsyncError == nullptr) return;
  uint32_t comms = ld(ring_.header->commCount, std::memory_order_acquire);
  for (uint32_t i = 0; i < comms && i < seenAsyncError_.size(); ++i) {
    shm::CommSlot& c = ring_.comms[i];
    // Only live blocking communicators: for a non-blocking one, ncclCommGetAsyncError also
    // completes pending group work, which belongs to the application's thread.
    if (ld(c.state) != static_cast<uint32_t>(shm::CommState::kLive) || ld(c.blocking) != 1) continue;
    uint64_t handle = ld(c.handle);
    if (handle == 0) continue;
    std::atomic_ref<uint32_t> using_(r_->watchdogUsing[i]);
    using_.store(1, std::memory_order_seq_cst);
    ncclResult_t e = ncclSuccess;
    bool asked = false;
    if (std::atomic_ref<uint32_t>(r_->closing[i]).load(std::memory_order_seq_cst) == 0 &&
        ld(c.state) == static_cast<uint32_t>(shm::CommState::kLive)) {
      asked = getAsyncError(reinterpret_cast<ncclComm_t>(handle), &e) == ncclSuccess;
    }
    using_.store(0, std::memory_order_seq_cst);
    if (!asked || e == ncclSuccess || e == ncclInProgress || seenAsyncError_[i] == e) continue;
    seenAsyncError_[i] = e;
    st(c.lastAsyncError, static_cast<int32_t>(e));
    st(c.lastAsyncErrorMonoNs, now);
    if (!(incident_.active && !incident_.resolved)) {
      incident(DumpCause::kNcclError, std::string("ncclCommGetAsyncError reported ") + resultName(e) + " on " + describeComm(i),
               true);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Incidents.

void WatchdogLoop::snapshotPending() {
  incident_.pendingLaunches.clear();
  incident_.pendingCalls.clear();
  incident_.busyComms.clear();
  for (const auto& [leader, l] : launches_) {
    if (l.phase != Phase::kDone && !l.pairless) incident_.pendingLaunches.push_back(leader);
  }
  for (const auto& [index, since] : inCall_) incident_.pendingCalls.push_back(index);
  uint32_t comms = ld(ring_.header->commCount, std::memory_order_acquire);
  for (uint32_t i = 0; i < comms; ++i) {
    if (ld(ring_.comms[i].busySinceMonoNs) != 0) incident_.busyComms.push_back(i);
  }
  incident_.dumpMonoNs = monoNowNs();
  incident_.resolved = false;
}

void WatchdogLoop::checkResolved() {
  if (!incident_.active || incident_.resolved) return;
  for (uint64_t leader : incident_.pendingLaunches) {
    auto it = launches_.find(leader);
    if (it != launches_.end() && it->second.phase != Phase::kDone) return;
  }
  for (uint64_t index : incident_.pendingCalls) {
    if (inCall_.count(index)) return;
  }
  for (uint32_t slot : incident_.busyComms) {
    if (ld(ring_.comms[slot].busySinceMonoNs) != 0) return;
  }
  // A rank with nothing pending at its dump (the one stuck on the host, say) is over the incident
  // only once it makes progress again: a call issued after the dump has finished.
  if (progressNs_ <= incident_.dumpMonoNs) return;
  // Everything that was stuck has moved: a later stall is a new incident.
  incident_.resolved = true;
  logInfo("incident %s is over: the calls pending at its dump have finished", incident_.id.c_str());
}

bool WatchdogLoop::incident(DumpCause cause, const std::string& detail, bool propagate) {
  joinOrStart(cause, detail, propagate);
  bool ok = writeDump(cause, detail);
  w_->incidents_.fetch_add(1);
  return ok;
}

bool WatchdogLoop::joinOrStart(DumpCause cause, const std::string& detail, bool propagate) {
  int64_t wall = wallNowNs();
  const std::string& dir = r_->jobDir;
  int32_t rank = r_->identity.globalRank;
  // A fresh incident another rank started since we last looked is the same hang seen from there.
  uint64_t latest = trigger::latestGeneration(dir);
  if (latest > handledGeneration_) {
    trigger::Request q;
    std::string error;
    int64_t freshNs = 2 * r_->config.triggerPollNs + r_->config.timeoutNs + 10 * kSec;
    if (trigger::read(dir, latest, &q, &error) && wall - q.wallNs < freshNs) {
      handledGeneration_ = latest;
      incident_ = Incident{};
      incident_.active = true;
      incident_.id = q.incidentId;
      incident_.wallNs = q.wallNs;
      incident_.triggerRank = q.triggerRank;
      return true;
    }
  }
  trigger::Request mine;
  mine.incidentId = trigger::makeIncidentId(wall, rank >= 0 ? "r" + std::to_string(rank) : "p" + std::to_string(r_->identity.pid));
  mine.reason = reasonWord(cause);
  mine.triggerRank = rank;
  mine.wallNs = wall;
  mine.host = r_->identity.host;
  mine.pid = r_->identity.pid;
  mine.propagate = propagate;
  mine.detail = detail;
  incident_ = Incident{};
  incident_.active = true;
  incident_.id = mine.incidentId;
  incident_.wallNs = wall;
  incident_.triggerRank = rank;
  uint64_t generation = 0;
  trigger::Request winner;
  std::string error;
  switch (trigger::publish(dir, mine, std::max(handledGeneration_, latest), &generation, &winner, &error)) {
    case trigger::PublishResult::kCreated:
      handledGeneration_ = std::max(handledGeneration_, generation);
      break;
    case trigger::PublishResult::kJoined:
      handledGeneration_ = std::max(handledGeneration_, generation);
      incident_.id = winner.incidentId;
      incident_.wallNs = winner.wallNs;
      incident_.triggerRank = winner.triggerRank;
      break;
    case trigger::PublishResult::kFailed:
      // Reported at info level only: the dump, written to the same folder, fails too and says so.
      if (!triggerWriteWarned_) {
        triggerWriteWarned_ = true;
        logInfo("cannot ask the other ranks to dump: %s", error.c_str());
      }
      break;
  }
  return true;
}

bool WatchdogLoop::writeDump(DumpCause cause, const std::string& detail) {
  // The freshest view: every outstanding event is polled once more, so whatever completed up to
  // now is in the dump as completed (and what started, as started).
  drainRing();
  advanceOpenLaunches();
  advanceStreams(monoNowNs(), true);
  snapshotPending();
  DumpRequest q;
  q.reason = reasonOf(cause);
  q.detail = detail;
  q.incidentId = incident_.id;
  q.incidentWallNs = incident_.wallNs;
  q.triggerRank = incident_.triggerRank;
  q.timeoutNs = r_->config.timeoutNs;
  if (r_->config.stacks) q.symbolize = symbolizeAddress;
  capnp::MallocMessageBuilder message;
  DumpStats stats;
  std::string error;
  bool ok = ringToDump(ring_, q, message, &stats, &error);
  std::string path;
  if (ok) {
    std::string rank = r_->identity.globalRank >= 0 ? std::to_string(r_->identity.globalRank) : "x";
    std::string base = r_->jobDir + "/" + incident_.id + "_r" + rank + "_" + sanitizeFileComponent(r_->identity.host) +
                       "_p" + std::to_string(r_->identity.pid);
    ok = fs::makeDirs(r_->jobDir, 0700, &error);
    if (ok) {
      path = base + std::string(kDumpSuffix);
      for (int n = 2; fs::pathExists(path) && n < 1000; ++n) path = base + "-" + std::to_string(n) + std::string(kDumpSuffix);
      ok = writeDumpFile(path, message, &error);
    }
  }
  shm::ProcessHeader* h = ring_.header;
  fetchAdd(h->incidents, uint64_t{1});
  char id[sizeof h->lastIncidentId] = {};
  std::snprintf(id, sizeof id, "%s", incident_.id.c_str());
  for (size_t i = 0; i < sizeof id; ++i) st(h->lastIncidentId[i], id[i]);
  if (!ok) {
    w_->dumpFailures_.fetch_add(1);
    if (!dumpWriteWarned_) {
      dumpWriteWarned_ = true;
      logWarn("cannot write the %s dump of incident %s: %s (the job runs on%s%s; further failures are not reported)",
              reasonWord(cause), incident_.id.c_str(), error.c_str(),
              ring_.anonymous ? "" : "; its ring stays in ", ring_.anonymous ? "" : ring_.path.c_str());
    }
    return false;
  }
  logInfo("dumped %llu calls (%s: %s) to %s", static_cast<unsigned long long>(stats.writtenEntries), reasonWord(cause),
          detail.c_str(), path.c_str());
  return true;
}

void WatchdogLoop::pollTriggers(int64_t now) {
  if (now < nextTriggerPoll_) return;
  nextTriggerPoll_ = now + r_->config.triggerPollNs;
  const std::string& dir = r_->jobDir;
  if (!trigger::exists(dir, handledGeneration_ + 1)) return;
  uint64_t g = handledGeneration_ + 1;
  while (trigger::exists(dir, g + 1)) ++g;
  handledGeneration_ = g;
  trigger::Request q;
  std::string error;
  if (!trigger::read(dir, g, &q, &error)) {
    logWarn("ignoring a trigger file: %s", error.c_str());
    return;
  }
  if (!q.propagate || (incident_.active && incident_.id == q.incidentId)) return;
  incident_ = Incident{};
  incident_.active = true;
  incident_.id = q.incidentId;
  incident_.wallNs = q.wallNs;
  incident_.triggerRank = q.triggerRank;
  bool person = q.reason == "onDemand";
  std::string detail = person ? "requested with `ncclfr trigger`" + (q.detail.empty() ? "" : ": " + q.detail)
                              : "rank " + std::to_string(q.triggerRank) + " on " + q.host + " dumped (" + q.reason +
                                    (q.detail.empty() ? "" : ": " + q.detail) + ")";
  writeDump(person ? DumpCause::kOnDemand : DumpCause::kPeer, detail);
  w_->incidents_.fetch_add(1);
}

void WatchdogLoop::reportHotWarnings() {
  uint32_t raised = hotWarnings();
  uint32_t fresh = raised & ~reportedWarnings_;
  if (fresh == 0) return;
  reportedWarnings_ |= fresh;
  if (fresh & kWarnCommTableFull) logWarn("the communicator table is full; calls on further communicators pass through unrecorded");
  if (fresh & kWarnP2PTableFull) logWarn("the point-to-point counter table is full; further peers get no p2p sequence numbers");
  if (fresh & kWarnEventPoolEmpty) logWarn("CUDA events ran short; some calls are recorded without GPU times");
  if (fresh & kWarnTooManyContexts) logWarn("more than %d CUDA contexts; calls on further ones are recorded without GPU times", kMaxContexts);
  if (fresh & kWarnGroupStreams) logWarn("a group used more than %d streams; calls on further streams are recorded without GPU times", kMaxGroupStreams);
  if (fresh & kWarnStackTableFull) logWarn("the call stack table is full; further distinct stacks are not recorded");
  if (fresh & kWarnMissingFunction) logWarn("the loaded NCCL lacks a function the application called (it got ncclInvalidUsage)");
  if (fresh & kWarnPendingChildren) {
    logWarn("more than %d splits waited for their parent at once; calls on the oldest are recorded under an unknown communicator",
            Recorder::kMaxPendingHandles);
  }
}

}  // namespace ncclfr::recorder
