// A communicator of sim/'s libnccl: one rank's view of a group of processes that meet in a Segment.
// The user's ncclComm_t points to a Comm. Work launched on the communicator (batches, see engine.h)
// holds references, so a Comm stays valid until its last queued batch has run even after
// ncclCommAbort or ncclCommDestroy; after that the (small) object is kept, poisoned, so that a
// second destroy is reported instead of crashing.
#pragma once

#include <nccl.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "reduce.h"
#include "segment.h"

namespace ncclfr::sim::nccl {

constexpr uint64_t kCommMagic = 0x4d4d4f435246434eULL;  // "NCFRCOMM"
constexpr uint64_t kDeadCommMagic = 0x444145444d4d4f43ULL;  // "COMMDEAD"

struct CommConfig {
  int blocking = 1;
  int splitShare = 0;
  int shrinkShare = 0;
  std::string commName;
};

struct UserRedOp {
  bool live = false;
  ncclDataType_t type = ncclFloat32;
  RedOp op;
};

struct Comm {
  uint64_t magic = kCommMagic;
  std::atomic<int> refs{1};

  Segment* seg = nullptr;
  int rank = -1;
  int nranks = 0;
  int cudaDev = 0;
  uint64_t commHash = 0;
  CommConfig config;

  // ncclCommGetAsyncError's value: ncclInProgress while a non-blocking operation runs, an error
  // once one happened (e.g. ncclRemoteError after a peer died), else ncclSuccess.
  std::atomic<int> asyncError{ncclSuccess};
  // Set to stop in-flight work (abort, revoke, shrink with NCCL_SHRINK_ABORT); `aborted` is final.
  std::atomic<bool> abortFlag{false};
  std::atomic<bool> aborted{false};
  std::atomic<bool> revoked{false};
  bool finalizeCalled = false;
  std::atomic<bool> initialized{false};  // set once the rendezvous completed: seg, rank, peers are valid
  // 1 while a blocking initialisation of this comm runs on a program thread (until it has returned,
  // cleanup included): ncclCommAbort from another thread waits for it (a futex word), as NCCL joins
  // the init before tearing the communicator down. A non-blocking one is the `job` below.
  std::atomic<uint32_t> initPending{0};

  // Batches are numbered at launch; batch k runs once batches 0..k-1 have finished, whatever
  // streams they were launched on, because NCCL serialises a communicator's kernels.
  std::mutex launchMu;
  uint64_t launched = 0;
  std::atomic<uint64_t> completed{0};
  std::atomic<int> executing{0};

  // Protocol state, touched only by the batch that is running (batches are serialised).
  uint64_t collRound = 0;
  uint64_t collIndex = 0;
  std::vector<uint64_t> sendSeq;
  std::vector<uint64_t> recvSeq;
  // Host-side protocol state (init, split, shrink), touched by the thread doing those.
  uint64_t bootSeq = 0;
  int splitCount = 0;

  // Peers, watched by the process's monitor thread.
  std::vector<int> peerPidfd;
  std::vector<int32_t> peerPid;
  std::vector<uint8_t> peerGone;

  // The background job of a non-blocking operation (init, finalize, revoke, group launch, split).
  std::mutex jobMu;
  std::thread job;

  std::mutex redOpMu;
  std::vector<UserRedOp> userOps;

  uint64_t magicEnd = kCommMagic;

  RankSlot* mySlot() const { return seg->slot(rank); }
  void ref() { refs.fetch_add(1); }
  void unref();
  bool valid() const { return magic == kCommMagic && magicEnd == kCommMagic; }
};

Comm* newComm(int cudaDev, const CommConfig& config);

// Stores a handle into the program's ncclComm_t. NCCL sets it before the rendezvous, so another
// thread may read it to abort a waiting initialisation: the store is atomic, like NCCL's for a child.
inline void publishComm(ncclComm_t* out, Comm* c) {
  __atomic_store_n(out, reinterpret_cast<ncclComm_t>(c), __ATOMIC_RELEASE);
}
// Ends a blocking initialisation's initPending and wakes an abort waiting for it.
void initDone(Comm* comm);

// Rendezvous in the segment `name` as `rank` of `nranks`. Blocks until every rank has joined (or
// the comm is aborted, or a rank that had joined dies). On success the comm is registered with the
// monitor thread.
ncclResult_t joinSegment(Comm* comm, const std::string& name, int nranks, int rank, uint64_t commHash);

// Split and shrink: the protocol runs over the parent's segment among `participants` (parent ranks).
// `child` is null for a rank that passed NCCL_SPLIT_NOCOLOR (it takes part but gets no communicator).
ncclResult_t splitJoin(Comm* parent, Comm* child, int color, int key, const std::vector<int>& participants,
                       bool isShrink);

// Waits until every batch launched so far has finished (or, with `stopping`, has been abandoned).
void waitQuiescent(Comm* comm);
// Stops in-flight batches and waits until none is executing.
void stopInflight(Comm* comm);

void setAsyncError(Comm* comm, ncclResult_t r);
// Joins a finished background job; with `wait`, waits for it.
void joinJob(Comm* comm, bool wait);
// Runs `fn` as the comm's background job (a non-blocking operation), replacing a finished one.
template <typename Fn>
void startJob(Comm* comm, Fn fn) {
  joinJob(comm, true);
  std::lock_guard<std::mutex> lock(comm->jobMu);
  comm->job = std::thread(std::move(fn));
}

void monitorAdd(Comm* comm);
void monitorRemove(Comm* comm);

// Parses a user's ncclConfig_t the way NCCL does (size/magic/version checked); config may be null.
ncclResult_t parseConfig(const ncclConfig_t* config, CommConfig* out);
void applyEnvOverrides(CommConfig* cfg);

}  // namespace ncclfr::sim::nccl
