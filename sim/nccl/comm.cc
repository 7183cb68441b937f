#include "comm.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>

#include "debug.h"

namespace ncclfr::sim::nccl {
namespace {

// Destroyed communicators stay allocated (poisoned) so a second ncclCommDestroy is caught; they
// are small. Reachable from here, so leak checkers do not report them.
std::mutex gGraveyardMu;
std::vector<Comm*>* gGraveyard = new std::vector<Comm*>();

int pidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

bool processGone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

// Sleeps on the comm's doorbell until pred() holds. Every `checkMs` (and whenever woken) it also
// calls `check`, which may end the wait with an error (a dead peer, an abort).
template <typename Pred, typename Check>
ncclResult_t waitOnBell(RankSlot* slot, Pred pred, Check check, int checkMs) {
  for (;;) {
    uint32_t seen = slot->bell.read();
    if (pred()) return ncclSuccess;
    if (ncclResult_t r = check(); r != ncclSuccess) return r;
    slot->bell.sleep(seen, checkMs);
  }
}

}  // namespace

void Comm::unref() {
  if (refs.fetch_sub(1) != 1) return;
  for (int fd : peerPidfd) {
    if (fd >= 0) ::close(fd);
  }
  peerPidfd.clear();
  if (seg != nullptr) seg->release();
  seg = nullptr;
  // Keep the poisoned object (see gGraveyard).
  magic = kDeadCommMagic;
  magicEnd = kDeadCommMagic;
  std::lock_guard<std::mutex> lock(gGraveyardMu);
  gGraveyard->push_back(this);
}

Comm* newComm(int cudaDev, const CommConfig& config) {
  auto* c = new Comm();
  c->cudaDev = cudaDev;
  c->config = config;
  return c;
}

ncclResult_t joinSegment(Comm* comm, const std::string& name, int nranks, int rank, uint64_t commHash) {
  if (comm->abortFlag.load()) return ncclInternalError;  // aborted before it started: never joins
  Segment* seg = nullptr;
  if (ncclResult_t r = Segment::open(name, nranks, &seg); r != ncclSuccess) return r;
  RankSlot* me = seg->slot(rank);
  uint32_t expected = kSlotEmpty;
  if (!me->state.compare_exchange_strong(expected, kSlotClaimed)) {
    SIM_WARN(comm->cudaDev, "ncclCommInitRank: rank %d of %d joined twice (two processes passed the same rank)", rank,
             nranks);
    seg->release();
    return ncclInvalidUsage;
  }
  me->pid = static_cast<int32_t>(::getpid());
  me->cudaDev = comm->cudaDev;
  me->hostHash = hostHash();
  me->state.store(kSlotJoined, std::memory_order_release);  // publishes the fields above
  comm->seg = seg;
  comm->rank = rank;
  comm->nranks = nranks;
  comm->commHash = commHash;
  comm->sendSeq.assign(static_cast<size_t>(nranks), 0);
  comm->recvSeq.assign(static_cast<size_t>(nranks), 0);
  std::atomic<uint32_t>& joined = seg->header()->joined;
  uint32_t n = joined.fetch_add(1) + 1;
  futexWakeAll(&joined);
  if (n == static_cast<uint32_t>(nranks)) seg->unlinkName();
  // Wait for the others. Like NCCL's bootstrap this has no time limit, but a rank that joined and
  // then died fails the init (NCCL sees its socket close), and an abort ends the wait.
  for (;;) {
    uint32_t j = joined.load();
    if (j >= static_cast<uint32_t>(nranks)) break;
    if (comm->abortFlag.load()) return ncclInternalError;
    for (int r = 0; r < nranks; ++r) {
      RankSlot* s = seg->slot(r);
      if (r != rank && s->state.load() == kSlotJoined && s->pid > 0 && processGone(s->pid)) {
        SIM_WARN(comm->cudaDev, "ncclCommInitRank: rank %d (pid %d) exited during initialisation", r, s->pid);
        return ncclRemoteError;
      }
    }
    futexWait(&joined, j, 1000);
  }
  // Like NCCL, two ranks of one communicator may not share a GPU (unless NCCL_HOSTID tells them
  // apart as different hosts).
  for (int r = 0; r < nranks; ++r) {
    RankSlot* s = seg->slot(r);
    if (r != rank && s->hostHash == me->hostHash && s->cudaDev == me->cudaDev) {
      SIM_WARN(comm->cudaDev, "Duplicate GPU detected : rank %d and rank %d both on CUDA device %x", rank, r,
               static_cast<unsigned>((comm->cudaDev + 1) << 12));
      return ncclInvalidUsage;
    }
  }
  comm->peerPid.assign(static_cast<size_t>(nranks), 0);
  comm->peerPidfd.assign(static_cast<size_t>(nranks), -1);
  comm->peerGone.assign(static_cast<size_t>(nranks), 0);
  for (int r = 0; r < nranks; ++r) {
    int32_t pid = seg->slot(r)->pid;
    comm->peerPid[static_cast<size_t>(r)] = pid;
    if (r != rank && pid != static_cast<int32_t>(::getpid())) comm->peerPidfd[static_cast<size_t>(r)] = pidfdOpen(pid);
  }
  comm->initialized = true;
  SIM_INFO(comm->cudaDev, "ncclCommInitRank comm %p rank %d nranks %d cudaDev %d commId 0x%llx - Init COMPLETE",
           static_cast<void*>(comm), rank, nranks, comm->cudaDev, static_cast<unsigned long long>(commHash));
  monitorAdd(comm);
  return ncclSuccess;
}

namespace {

// An allgather of a small payload among `participants` of the parent, on the host (like NCCL's
// bootstrap): used by split and shrink, which are not stream operations.
ncclResult_t bootAllGather(Comm* c, const std::vector<int>& participants, const void* data, size_t size,
                           std::vector<std::vector<uint8_t>>* out) {
  Segment* s = c->seg;
  RankSlot* mine = c->mySlot();
  const uint64_t seq = ++c->bootSeq;
  auto check = [&]() -> ncclResult_t {
    if (c->abortFlag.load()) return ncclInternalError;
    for (int r : participants) {
      RankSlot* p = s->slot(r);
      if (r != c->rank && (p->state.load() == kSlotAborted || processGone(p->pid))) {
        SIM_WARN(c->cudaDev, "comm 0x%llx: rank %d (pid %d) is gone; cannot split or shrink with it",
                 static_cast<unsigned long long>(c->commHash), r, p->pid);
        return ncclRemoteError;
      }
    }
    return ncclSuccess;
  };
  ncclResult_t r = waitOnBell(
      mine,
      [&] {
        for (int p : participants) {
          if (s->slot(p)->bootConsumed.load(std::memory_order_acquire) + 1 < seq) return false;
        }
        return true;
      },
      check, 1000);
  if (r != ncclSuccess) return r;
  std::memcpy(mine->boot, data, std::min(size, kBootBytes));
  mine->bootPosted.store(seq, std::memory_order_release);
  for (int p : participants) s->slot(p)->bell.ring();
  r = waitOnBell(
      mine,
      [&] {
        for (int p : participants) {
          if (s->slot(p)->bootPosted.load(std::memory_order_acquire) < seq) return false;
        }
        return true;
      },
      check, 1000);
  if (r != ncclSuccess) return r;
  out->assign(static_cast<size_t>(c->nranks), {});
  for (int p : participants) {
    const uint8_t* b = s->slot(p)->boot;
    (*out)[static_cast<size_t>(p)].assign(b, b + kBootBytes);
  }
  mine->bootConsumed.store(seq, std::memory_order_release);
  for (int p : participants) s->slot(p)->bell.ring();
  return ncclSuccess;
}

}  // namespace

ncclResult_t splitJoin(Comm* parent, Comm* child, int color, int key, const std::vector<int>& participants,
                       bool isShrink) {
  int32_t mine[2] = {color, key};
  std::vector<std::vector<uint8_t>> info;
  if (ncclResult_t r = bootAllGather(parent, participants, mine, sizeof mine, &info); r != ncclSuccess) return r;
  // Members of my color ordered by key, ties by parent rank (NCCL's order).
  std::vector<int> members;
  if (color != NCCL_SPLIT_NOCOLOR) {
    for (int p : participants) {
      int32_t pk[2];
      std::memcpy(pk, info[static_cast<size_t>(p)].data(), sizeof pk);
      if (pk[0] != color) continue;
      auto pos = members.end();
      for (auto it = members.begin(); it != members.end(); ++it) {
        int32_t ok[2];
        std::memcpy(ok, info[static_cast<size_t>(*it)].data(), sizeof ok);
        if (ok[1] > pk[1]) {
          pos = it;
          break;
        }
      }
      members.insert(pos, p);
    }
  }
  const bool leader = !members.empty() && members[0] == parent->rank;
  char name[kBootBytes] = {};
  if (leader) {
    std::string created;
    if (ncclResult_t r = Segment::create(&created); r != ncclSuccess) return r;
    std::snprintf(name, sizeof name, "%s", created.c_str());
  }
  std::vector<std::vector<uint8_t>> names;
  if (ncclResult_t r = bootAllGather(parent, participants, name, sizeof name, &names); r != ncclSuccess) return r;
  if (color == NCCL_SPLIT_NOCOLOR) return ncclSuccess;
  const int newRank = static_cast<int>(std::find(members.begin(), members.end(), parent->rank) - members.begin());
  std::string childName(reinterpret_cast<const char*>(names[static_cast<size_t>(members[0])].data()));
  // NCCL: the child's hash digests (parent hash, split count, color); a shrink counts as split 0.
  int splitCount = isShrink ? 0 : ++parent->splitCount;
  uint64_t acc[2] = {1, 1};
  eatHash(acc, &parent->commHash, sizeof parent->commHash);
  eatHash(acc, &splitCount, sizeof splitCount);
  eatHash(acc, &color, sizeof color);
  return joinSegment(child, childName, static_cast<int>(members.size()), newRank, digestHash(acc));
}

void waitQuiescent(Comm* comm) {
  uint64_t target;
  {
    std::lock_guard<std::mutex> lock(comm->launchMu);
    target = comm->launched;
  }
  (void)waitOnBell(
      comm->mySlot(), [&] { return comm->completed.load() >= target; }, [] { return ncclSuccess; }, -1);
}

void stopInflight(Comm* comm) {
  comm->abortFlag.store(true);
  comm->mySlot()->bell.ring();
  (void)waitOnBell(
      comm->mySlot(), [&] { return comm->executing.load() == 0; }, [] { return ncclSuccess; }, -1);
}

void setAsyncError(Comm* comm, ncclResult_t r) { comm->asyncError.store(r); }

void initDone(Comm* comm) {
  if (comm->initPending.exchange(0) != 0) futexWakeAll(&comm->initPending);
}

void joinJob(Comm* comm, bool wait) {
  std::lock_guard<std::mutex> lock(comm->jobMu);
  if (!comm->job.joinable()) return;
  if (!wait && comm->asyncError.load() == ncclInProgress) return;
  if (comm->job.get_id() == std::this_thread::get_id()) return;
  comm->job.join();
}

// ---------------------------------------------------------------------------------------------
// The monitor: one thread per process watching the peers of every live communicator. A peer whose
// process ended while still a member (or that aborted) makes ncclCommGetAsyncError report
// ncclRemoteError on communicators that have work pending, as NCCL's proxy thread does when a
// connection drops; the stuck operation itself stays stuck until the program aborts the comm.
namespace {

class Monitor {
 public:
  static Monitor& get() {
    static Monitor* m = new Monitor();  // never destroyed: the thread may run during exit
    return *m;
  }
  void add(Comm* c) {
    c->ref();
    std::lock_guard<std::mutex> lock(mu_);
    comms_.push_back(c);
    if (!started_) {
      started_ = true;
      std::thread([this] { loop(); }).detach();
    }
    cv_.notify_all();
  }
  void remove(Comm* c) {
    bool found = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = std::find(comms_.begin(), comms_.end(), c);
      if (it != comms_.end()) {
        comms_.erase(it);
        found = true;
      }
    }
    if (found) c->unref();
  }

 private:
  void loop() {
    std::vector<Comm*> snapshot;
    std::vector<pollfd> fds;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return !comms_.empty(); });
        snapshot = comms_;
        for (Comm* c : snapshot) c->ref();
      }
      fds.clear();
      for (Comm* c : snapshot) {
        for (size_t r = 0; r < c->peerPidfd.size(); ++r) {
          if (c->peerPidfd[r] >= 0 && !c->peerGone[r]) fds.push_back(pollfd{c->peerPidfd[r], POLLIN, 0});
        }
      }
      // A peer's exit wakes the poll at once; the timeout covers peers that abort (no exit) and
      // kernels without pidfd.
      ::poll(fds.data(), fds.size(), 500);
      for (Comm* c : snapshot) {
        scan(c);
        c->unref();
      }
      snapshot.clear();
    }
  }

  static void scan(Comm* c) {
    if (c->seg == nullptr || c->aborted.load()) return;
    bool anyGone = false;
    for (int r = 0; r < c->nranks; ++r) {
      auto ur = static_cast<size_t>(r);
      if (r == c->rank) continue;
      if (c->peerGone[ur]) {
        anyGone = true;
        continue;
      }
      uint32_t st = c->seg->slot(r)->state.load();
      bool gone = st == kSlotAborted;
      if (!gone && st == kSlotJoined) {
        int fd = c->peerPidfd[ur];
        if (fd >= 0) {
          pollfd p{fd, POLLIN, 0};
          gone = ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
        } else {
          gone = processGone(c->peerPid[ur]);
        }
      }
      if (gone) {
        c->peerGone[ur] = 1;
        anyGone = true;
        SIM_WARN(c->cudaDev, "comm 0x%llx rank %d: peer rank %d (pid %d) %s",
                 static_cast<unsigned long long>(c->commHash), c->rank, r, c->peerPid[ur],
                 st == kSlotAborted ? "aborted its communicator" : "exited without destroying its communicator");
      }
    }
    if (!anyGone) return;
    uint64_t launched;
    {
      std::lock_guard<std::mutex> lock(c->launchMu);
      launched = c->launched;
    }
    int expected = ncclSuccess;
    if (c->completed.load() < launched && c->asyncError.compare_exchange_strong(expected, ncclRemoteError)) {
      SIM_WARN(c->cudaDev, "comm 0x%llx rank %d: remote process exited or there was a network error",
               static_cast<unsigned long long>(c->commHash), c->rank);
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Comm*> comms_;
  bool started_ = false;
};

}  // namespace

void monitorAdd(Comm* comm) { Monitor::get().add(comm); }
void monitorRemove(Comm* comm) { Monitor::get().remove(comm); }

// ---------------------------------------------------------------------------------------------
ncclResult_t parseConfig(const ncclConfig_t* config, CommConfig* out) {
  ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
  if (config != nullptr) {
    // Read only as many bytes as the caller's struct has: older headers have smaller configs.
    size_t size = 0;
    std::memcpy(&size, config, sizeof size);
    size = std::min(size, sizeof(ncclConfig_t));
    ncclConfig_t defaults = NCCL_CONFIG_INITIALIZER;
    cfg.magic = 0;
    std::memcpy(&cfg, config, size);
    if (cfg.magic != 0xcafebeef) {
      SIM_WARN(-1, "ncclConfig_t argument not initialized via NCCL_CONFIG_INITIALIZER");
      return ncclInvalidArgument;
    }
    if (cfg.version < NCCL_VERSION(2, 14, 0)) cfg.blocking = defaults.blocking;
    if (cfg.version < NCCL_VERSION(2, 17, 0)) {
      cfg.cgaClusterSize = defaults.cgaClusterSize;
      cfg.minCTAs = defaults.minCTAs;
      cfg.maxCTAs = defaults.maxCTAs;
      cfg.netName = defaults.netName;
    }
    if (cfg.version < NCCL_VERSION(2, 25, 0)) cfg.trafficClass = defaults.trafficClass;
    if (cfg.version < NCCL_VERSION(2, 27, 0)) {
      cfg.collnetEnable = defaults.collnetEnable;
      cfg.CTAPolicy = defaults.CTAPolicy;
      cfg.shrinkShare = defaults.shrinkShare;
      cfg.nvlsCTAs = defaults.nvlsCTAs;
    }
    if (cfg.version < NCCL_VERSION(2, 28, 0)) {
      cfg.nChannelsPerNetPeer = defaults.nChannelsPerNetPeer;
      cfg.nvlinkCentricSched = defaults.nvlinkCentricSched;
    }
  }
  constexpr int kUndef = NCCL_CONFIG_UNDEF_INT;
  auto bad = [](const char* what, int v) {
    SIM_WARN(-1, "Invalid config %s attribute value %d", what, v);
    return ncclInvalidArgument;
  };
  if (cfg.blocking != kUndef && cfg.blocking != 0 && cfg.blocking != 1) return bad("blocking", cfg.blocking);
  if (cfg.cgaClusterSize != kUndef && cfg.cgaClusterSize < 0) return bad("cgaClusterSize", cfg.cgaClusterSize);
  if ((cfg.minCTAs != kUndef && cfg.minCTAs <= 0) || (cfg.maxCTAs != kUndef && cfg.maxCTAs <= 0) ||
      (cfg.minCTAs != kUndef && cfg.maxCTAs != kUndef && cfg.minCTAs > cfg.maxCTAs)) {
    return bad("min/max channels", cfg.minCTAs);
  }
  if (cfg.splitShare != kUndef && cfg.splitShare != 0 && cfg.splitShare != 1) return bad("splitShare", cfg.splitShare);
  if (cfg.collnetEnable != kUndef && (cfg.collnetEnable < 0 || cfg.collnetEnable > 1)) {
    return bad("collnetEnable", cfg.collnetEnable);
  }
  if (cfg.CTAPolicy != kUndef && (cfg.CTAPolicy < NCCL_CTA_POLICY_DEFAULT || cfg.CTAPolicy > NCCL_CTA_POLICY_ZERO)) {
    return bad("policy", cfg.CTAPolicy);
  }
  if (cfg.shrinkShare != kUndef && cfg.shrinkShare != 0 && cfg.shrinkShare != 1) {
    return bad("shrinkShare", cfg.shrinkShare);
  }
  if (cfg.nvlsCTAs != kUndef && cfg.nvlsCTAs <= 0) return bad("nvlsCTAs", cfg.nvlsCTAs);
  out->blocking = cfg.blocking == kUndef ? 1 : cfg.blocking;
  out->splitShare = cfg.splitShare == kUndef ? 0 : cfg.splitShare;
  out->shrinkShare = cfg.shrinkShare == kUndef ? 0 : cfg.shrinkShare;
  out->commName = cfg.commName != nullptr ? cfg.commName : "";
  applyEnvOverrides(out);
  return ncclSuccess;
}

void applyEnvOverrides(CommConfig* cfg) {
  if (const char* v = std::getenv("NCCL_COMM_BLOCKING"); v != nullptr && *v != '\0') {
    int b = std::atoi(v);
    if (b == 0 || b == 1) cfg->blocking = b;
  }
}

}  // namespace ncclfr::sim::nccl
