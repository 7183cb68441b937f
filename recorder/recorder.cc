#include "recorder.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "log.h"
#include "ncclfr/version.h"
#include "real_nccl.h"
#include "signals.h"
#include "stacks.h"
#include "watchdog.h"

namespace ncclfr::recorder {

thread_local ThreadState tThread __attribute__((tls_model("initial-exec")));

namespace {

// 0: not set up yet, 1: active, 2: passthrough (disabled, failed, or a forked child).
std::atomic<int> gMode{0};
std::atomic<Recorder*> gRecorder{nullptr};
std::atomic<bool> gForkedChild{false};
std::atomic<uint32_t> gNextGroupId{0};
std::atomic<pid_t> gOwnerPid{0};
std::mutex gSetupMutex;

uint64_t mixPointer(uintptr_t p) {
  uint64_t x = p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

void copyText(char* dst, size_t size, const std::string& src) {
  size_t n = std::min(size - 1, src.size());
  std::memcpy(dst, src.data(), n);
  dst[n] = '\0';
}

void onForkChild() {
  // The child shares the parent's ring mapping (MAP_SHARED) but not its watchdog: it must neither
  // write the ring nor believe the watchdog exists. It records nothing; an exec'd child, which
  // loads this library afresh, records on its own.
  gForkedChild.store(true);
  gMode.store(2);
  gRecorder.store(nullptr);
}

void onExit() {
  Recorder* r = gRecorder.load(std::memory_order_acquire);
  if (r == nullptr || gForkedChild.load() || getpid() != gOwnerPid.load()) return;
  try {
    if (r->watchdog != nullptr) r->watchdog->shutdownAtExit();
    bool keep = r->watchdog != nullptr && r->watchdog->incidentDumpFailed();
    if (ld(r->ring.header->crashSignal) != 0) keep = true;
    st(r->ring.header->state, static_cast<uint32_t>(shm::ProcessState::kExiting), std::memory_order_release);
    // Clean exit: the ring has nothing salvage could add to the dumps already written.
    if (!keep && !r->ring.anonymous && !r->ring.path.empty()) ::unlink(r->ring.path.c_str());
    else if (keep) logInfo("keeping %s for `ncclfr salvage`", r->ring.path.c_str());
  } catch (...) {
  }
}

bool detectSimulated() {
  // ncclfr-simrun names the job for sim/'s libraries; without it, the libnccl.so.2 in use lives in
  // a sim/lib folder.
  if (const char* job = getenv("NCCLFR_SIM_JOB"); job != nullptr && *job != '\0') return true;
  void* f = reinterpret_cast<void*>(real::GetVersion());
  Dl_info info{};
  if (f == nullptr || dladdr(f, &info) == 0 || info.dli_fname == nullptr) return false;
  return std::strstr(info.dli_fname, "/sim/lib/") != nullptr;
}

// Reads NCCL's blocking default the way NCCL does for communicators made without a config.
int32_t envBlockingDefault() {
  const char* v = getenv("NCCL_COMM_BLOCKING");
  return (v != nullptr && std::strcmp(v, "0") == 0) ? 0 : 1;
}

Recorder* setUpLocked() {
  std::string cwd;
  {
    char buf[4096];
    if (getcwd(buf, sizeof buf) != nullptr) cwd = buf;
  }
  RecorderConfig config = parseConfig([](const char* n) { return getenv(n); }, cwd);
  setLogLevel(config.log);
  if (!config.enable) return nullptr;

  auto* r = new Recorder;
  r->config = std::move(config);
  r->identity = detectIdentity([](const char* n) { return getenv(n); });
  r->setupMonoNs = monoNowNs();
  r->clock.start();
  r->jobDir = r->config.dumpDir + "/" + sanitizeFileComponent(r->identity.jobId);
  for (const auto& w : r->config.warnings) logWarn("%s", w.c_str());

  RingCapacities caps;
  caps.ring = r->config.bufferEntries;
  caps.stacks = r->config.stacks ? 4096 : 0;
  caps.modules = r->config.stacks ? 512 : 0;
  std::string error;
  if (!createRingFile(r->config.shmDir, r->identity.pid, r->identity.startTicks, caps, &r->ring, &error)) {
    logWarn("%s; recording in private memory instead (dumps work, `ncclfr salvage` cannot recover this "
            "process after a SIGKILL)",
            error.c_str());
    std::string error2;
    if (!createAnonymousRing(caps, &r->ring, &error2)) {
      logWarn("%s; NCCL calls pass through unrecorded", error2.c_str());
      return nullptr;
    }
  }
  shm::ProcessHeader* h = r->ring.header;
  h->pid = r->identity.pid;
  h->globalRank = r->identity.globalRank;
  h->worldSize = r->identity.worldSize;
  h->localRank = r->identity.localRank;
  h->startWallNs = r->identity.startWallNs;
  h->startTicks = r->identity.startTicks;
  h->clockWallNs = wallNowNs();
  h->clockMonoNs = monoNowNs();
  copyText(h->host, sizeof h->host, r->identity.host);
  copyText(h->bootId, sizeof h->bootId, r->identity.bootId);
  copyText(h->jobId, sizeof h->jobId, r->identity.jobId);
  copyText(h->jobIdSource, sizeof h->jobIdSource, r->identity.jobIdSource);
  copyText(h->rankSource, sizeof h->rankSource, r->identity.rankSource);
  copyText(h->recorderVersion, sizeof h->recorderVersion, NCCLFR_VERSION_STRING);
  copyText(h->cmdline, sizeof h->cmdline, r->identity.cmdline);

  // CUDA: events for GPU timing, and in every mode the capture check.
  std::string cudaError;
  const CudaDriver* cu = loadCudaDriver(&cudaError);
  shm::TimingMode timing = r->config.timing;
  if (cu == nullptr && timing != shm::TimingMode::kHostOnly) {
    logWarn("%s; recording host-side only (NCCLFR_TIMING=host)", cudaError.c_str());
    timing = shm::TimingMode::kHostOnly;
  }
  r->gpu.cu = cu;
  r->gpu.timing = timing;
  h->timingMode = static_cast<uint32_t>(timing);
  h->cudaDriverVersion = cu != nullptr ? cu->version : 0;
  r->gpu.track = static_cast<TrackSlot*>(std::aligned_alloc(alignof(TrackSlot), caps.ring * sizeof(TrackSlot)));
  if (r->gpu.track != nullptr) std::memset(static_cast<void*>(r->gpu.track), 0, caps.ring * sizeof(TrackSlot));
  r->gpu.trackMask = caps.ring - 1;
  r->watchdogUsing = static_cast<uint32_t*>(std::calloc(r->ring.header->commCapacity, sizeof(uint32_t)));
  r->closing = static_cast<uint32_t*>(std::calloc(r->ring.header->commCapacity, sizeof(uint32_t)));
  r->asyncOkGeneration = static_cast<uint32_t*>(std::calloc(r->ring.header->commCapacity, sizeof(uint32_t)));
  r->abortMonoNs = static_cast<int64_t*>(std::calloc(r->ring.header->commCapacity, sizeof(int64_t)));
  if (r->gpu.track == nullptr || r->watchdogUsing == nullptr || r->closing == nullptr ||
      r->asyncOkGeneration == nullptr || r->abortMonoNs == nullptr) {
    logWarn("out of memory setting up; NCCL calls pass through unrecorded");
    return nullptr;
  }
  int version = 0;
  if (auto getVersion = real::GetVersion(); getVersion != nullptr && getVersion(&version) == ncclSuccess) {
    h->ncclVersion = version;
  }
  r->simulated = detectSimulated();
  h->simulated = r->simulated ? 1 : 0;
  if (r->config.stacks) recordModules(r->ring);

  gOwnerPid.store(getpid());
  r->watchdog = Watchdog::start(r, &error);
  if (r->watchdog == nullptr) {
    logWarn("%s; recording without stall detection or dumps", error.c_str());
  } else {
    installSignalHandlers(r);
  }
  pthread_atfork(nullptr, nullptr, onForkChild);
  std::atexit(onExit);
  logInfo("recording into %s (%u entries, timing %s), dumps to %s", r->ring.anonymous ? "private memory" : r->ring.path.c_str(),
          caps.ring, timing == shm::TimingMode::kFull ? "full" : timing == shm::TimingMode::kEndOnly ? "end" : "host",
          r->jobDir.c_str());
  return r;
}

}  // namespace

Recorder* activeRecorder() { return gRecorder.load(std::memory_order_acquire); }

bool isForkedChild() { return gForkedChild.load(std::memory_order_relaxed); }

uint32_t nextGroupId() { return gNextGroupId.fetch_add(1, std::memory_order_relaxed) + 1; }

uint32_t readTid() { return static_cast<uint32_t>(syscall(SYS_gettid)); }

Recorder* setUpRecorder() {
  Recorder* r = gRecorder.load(std::memory_order_acquire);
  if (r != nullptr) return r;
  if (gMode.load(std::memory_order_acquire) == 2) return nullptr;
  std::lock_guard<std::mutex> lock(gSetupMutex);
  if (gMode.load() != 0) return gRecorder.load();
  try {
    r = setUpLocked();
  } catch (...) {
    logWarn("setting up failed; NCCL calls pass through unrecorded");
    r = nullptr;
  }
  gRecorder.store(r, std::memory_order_release);
  gMode.store(r != nullptr ? 1 : 2, std::memory_order_release);
  return r;
}

uint32_t Recorder::lookupComm(ncclComm_t comm) const {
  uintptr_t key = reinterpret_cast<uintptr_t>(comm);
  if (key == 0) return kNoSlot;
  uint32_t i = static_cast<uint32_t>(mixPointer(key)) & (kCommMapSize - 1);
  for (uint32_t n = 0; n < kCommMapSize; ++n, i = (i + 1) & (kCommMapSize - 1)) {
    uintptr_t k = ld(mapKeys[i], std::memory_order_acquire);
    if (k == key) return ld(mapSlots[i], std::memory_order_acquire);
    if (k == 0) return kNoSlot;
  }
  return kNoSlot;
}

void Recorder::mapComm(ncclComm_t comm, uint32_t slot) {
  uintptr_t key = reinterpret_cast<uintptr_t>(comm);
  if (key == 0 || slot == kNoSlot) return;
  std::lock_guard<std::mutex> lock(setupMutex);
  uint32_t i = static_cast<uint32_t>(mixPointer(key)) & (kCommMapSize - 1);
  for (uint32_t n = 0; n < kCommMapSize; ++n, i = (i + 1) & (kCommMapSize - 1)) {
    uintptr_t k = ld(mapKeys[i], std::memory_order_relaxed);
    if (k == key || k == 0) {
      // A handle NCCL reuses after a destroy now names the new communicator.
      st(mapSlots[i], slot, std::memory_order_release);
      if (k == 0) st(mapKeys[i], key, std::memory_order_release);
      fetchAdd(mapGeneration, uint32_t{1}, std::memory_order_release);
      st(ring.comms[slot].handle, static_cast<uint64_t>(key));
      return;
    }
  }
  raiseHotWarning(kWarnCommTableFull);
}

uint32_t Recorder::beginComm(const CommCreate& c, int64_t nowNs) {
  std::lock_guard<std::mutex> lock(setupMutex);
  uint32_t slot = ld(ring.header->commCount);
  if (slot >= ring.header->commCapacity) {
    raiseHotWarning(kWarnCommTableFull);
    return kNoSlot;
  }
  shm::CommSlot& s = ring.comms[slot];
  s.id = c.id;
  s.parentId = c.parentId;
  s.splitColor = c.splitColor;
  s.splitKey = c.splitKey;
  s.rank = c.rank;
  s.size = c.size;
  s.cudaDevice = c.cudaDevice;
  s.origin = static_cast<uint32_t>(c.origin);
  s.blocking = c.blocking;
  s.createdMonoNs = nowNs;
  s.nextSeq = 0;
  s.lastStartedSeq = -1;
  s.lastCompletedSeq = -1;
  s.busySinceMonoNs = c.busy != shm::BusyOp::kNone ? nowNs : 0;
  s.busyOp = static_cast<uint32_t>(c.busy);
  s.state = static_cast<uint32_t>(c.busy == shm::BusyOp::kNone ? shm::CommState::kLive : shm::CommState::kInitializing);
  copyText(s.name, sizeof s.name, c.name);
  st(s.published, uint32_t{1}, std::memory_order_release);
  st(ring.header->commCount, slot + 1, std::memory_order_release);
  fetchAdd(liveComms, int32_t{1});
  return slot;
}

void Recorder::commLive(uint32_t slot, ncclComm_t comm, int64_t nowNs, bool waitForEvents) {
  if (slot == kNoSlot) return;
  shm::CommSlot& s = ring.comms[slot];
  int v = 0;
  if (auto f = real::CommUserRank(); f && comm && f(comm, &v) == ncclSuccess) st(s.rank, v);
  if (auto f = real::CommCount(); f && comm && f(comm, &v) == ncclSuccess) st(s.size, v);
  if (auto f = real::CommCuDevice(); f && comm && f(comm, &v) == ncclSuccess) st(s.cudaDevice, v);
  if (ld(s.initDurationNs) == 0) st(s.initDurationNs, std::max<int64_t>(1, nowNs - s.createdMonoNs));
  uint32_t initializing = static_cast<uint32_t>(shm::CommState::kInitializing);
  std::atomic_ref<uint32_t>(s.state).compare_exchange_strong(initializing, static_cast<uint32_t>(shm::CommState::kLive));
  st(s.busySinceMonoNs, int64_t{0});
  st(s.busyOp, static_cast<uint32_t>(shm::BusyOp::kNone));
  // The CUDA context NCCL runs in gets an event pool before the first collective, so that it is
  // timed too (the watchdog sets pools up; wait for it: creating a communicator is slow anyway, and
  // calls made before the pool exists go untracked). Up to 2 s: on a loaded machine the watchdog
  // thread may wait a while for a core.
  if (!gpu.gpuTiming() || comm == nullptr) return;
  CUcontext ctx = nullptr;
  int dev = ld(s.cudaDevice);
  if (dev >= 0 && gpu.cu->deviceGet != nullptr && gpu.cu->devicePrimaryCtxRetain != nullptr) {
    CUdevice d = 0;
    if (gpu.cu->deviceGet(&d, dev) == CUDA_SUCCESS && gpu.cu->devicePrimaryCtxRetain(&ctx, d) == CUDA_SUCCESS) {
      if (gpu.cu->devicePrimaryCtxRelease != nullptr) gpu.cu->devicePrimaryCtxRelease(d);
    } else {
      ctx = nullptr;
    }
  }
  if (ctx == nullptr && gpu.cu->ctxGetCurrent(&ctx) != CUDA_SUCCESS) ctx = nullptr;
  int index = gpu.registerContext(reinterpret_cast<uintptr_t>(ctx));
  if (index < 0 || watchdog == nullptr || ld(gpu.ctxs[index].state, std::memory_order_acquire) != kCtxRequested) return;
  watchdog->wake();  // even without waiting: otherwise the pool waits for the watchdog's next idle tick
  if (!waitForEvents) return;
  for (int i = 0; i < 2000 && !watchdog->stopped() &&
                  ld(gpu.ctxs[index].state, std::memory_order_acquire) == kCtxRequested;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Recorder::commInitFailed(uint32_t slot, int32_t result) {
  if (slot == kNoSlot) return;
  shm::CommSlot& s = ring.comms[slot];
  st(s.state, static_cast<uint32_t>(shm::CommState::kInitFailed));
  st(s.lastAsyncError, result);
  st(s.lastAsyncErrorMonoNs, monoNowNs());
  st(s.busySinceMonoNs, int64_t{0});
  st(s.busyOp, static_cast<uint32_t>(shm::BusyOp::kNone));
  fetchAdd(liveComms, int32_t{-1});
}

void Recorder::notePendingHandle(ncclComm_t* where, uint32_t slot, uint32_t parent) {
  if (where == nullptr || slot == kNoSlot) return;
  std::lock_guard<std::mutex> lock(pendingMutex);
  int n = 0;
  for (int i = 0; i < pendingHandleCount; ++i) {
    // The same variable for another split before NCCL wrote the first one: only the last counts.
    if (pendingHandles[i].where != where) {
      pendingHandles[n++] = pendingHandles[i];
    } else {
      st(ring.comms[pendingHandles[i].slot].busySinceMonoNs, int64_t{0});
    }
  }
  if (n == kMaxPendingHandles) {  // the oldest gives way: its calls will show as an unknown communicator
    st(ring.comms[pendingHandles[0].slot].busySinceMonoNs, int64_t{0});
    std::memmove(&pendingHandles[0], &pendingHandles[1], sizeof(PendingHandle) * (kMaxPendingHandles - 1));
    --n;
    raiseHotWarning(kWarnPendingChildren);
  }
  pendingHandles[n] = PendingHandle{where, slot, parent};
  st(pendingHandleCount, n + 1, std::memory_order_release);
}

void Recorder::resolveChildrenOf(uint32_t parent, ncclResult_t result) {
  if (ld(pendingHandleCount, std::memory_order_acquire) == 0 || parent == kNoSlot) return;
  struct Ready {
    uint32_t slot;
    ncclComm_t handle;
  };
  Ready ready[kMaxPendingHandles];
  int nReady = 0, kept = 0;
  {
    std::lock_guard<std::mutex> lock(pendingMutex);
    for (int i = 0; i < pendingHandleCount; ++i) {
      PendingHandle p = pendingHandles[i];
      if (p.parent != parent) {
        pendingHandles[kept++] = p;
        continue;
      }
      shm::CommSlot& c = ring.comms[p.slot];
      if (result != ncclSuccess) {
        commInitFailed(p.slot, result);
        continue;
      }
      // Written by NCCL before the parent reported success; still the application's until it
      // has seen this success, which it has not yet.
      ncclComm_t handle = *p.where;
      if (handle == nullptr) {
        st(c.busySinceMonoNs, int64_t{0});  // nothing came of it that we can see
        continue;
      }
      mapComm(handle, p.slot);  // under pendingMutex: a thread that misses the entry finds the map
      ready[nReady++] = Ready{p.slot, handle};
    }
    st(pendingHandleCount, kept, std::memory_order_release);
  }
  for (int i = 0; i < nReady; ++i) commLive(ready[i].slot, ready[i].handle, monoNowNs(), false);
}

void Recorder::childReady(uint32_t slot, ncclComm_t handle, bool waitForEvents) {
  mapComm(handle, slot);
  commLive(slot, handle, monoNowNs(), waitForEvents);
}

uint32_t Recorder::slotForWorkSlow(ThreadState& t, ncclComm_t comm) {
  uintptr_t key = reinterpret_cast<uintptr_t>(comm);
  uint32_t gen = ld(mapGeneration, std::memory_order_acquire);
  uint32_t slot = lookupComm(comm);
  if (slot == kNoSlot && comm != nullptr) {
    // Created where we could not see it (another interposer, a private handle): record it with
    // what NCCL can tell; its id stays 0 (unknown).
    CommCreate c;
    c.busy = shm::BusyOp::kNone;
    c.blocking = envBlockingDefault();
    int64_t now = monoNowNs();
    slot = beginComm(c, now);
    if (slot == kNoSlot) return kNoSlot;
    mapComm(comm, slot);
    commLive(slot, comm, now, false);
    gen = ld(mapGeneration, std::memory_order_acquire);
  }
  t.cachedComm = key;
  t.cachedSlot = slot;
  t.cachedGeneration = gen;
  return slot;
}

void Recorder::noteCallError(uint32_t slot, ncclResult_t result, shm::Op op) {
  st(lastErrorComm, slot);
  st(lastErrorResult, static_cast<int32_t>(result));
  st(lastErrorOp, static_cast<uint32_t>(op));
  fetchAdd(callErrors, uint64_t{1}, std::memory_order_release);
  if (slot != kNoSlot) {
    st(ring.comms[slot].lastAsyncError, static_cast<int32_t>(result));
    st(ring.comms[slot].lastAsyncErrorMonoNs, monoNowNs());
  }
}

void Recorder::closeForWatchdog(uint32_t slot) {
  if (slot == kNoSlot) return;
  std::atomic_ref<uint32_t>(closing[slot]).store(1, std::memory_order_seq_cst);
  int spins = 0;
  while (std::atomic_ref<uint32_t>(watchdogUsing[slot]).load(std::memory_order_seq_cst) != 0) spinPause(&spins);
}

int32_t Recorder::stackIndexForCaller() { return captureStack(ring); }

}  // namespace ncclfr::recorder
