// The analysis: per communicator alignment, the frontier, mismatches, point-to-point matching,
// chains across communicators, and the verdict that names the root-cause rank.
//
// docs/analyzer.md explains the method and documents the JSON form of Verdict (render.h) field by
// field; that JSON is a stable contract.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ncclfr/analysis/load.h"

namespace ncclfr::analysis {

enum class Status { kOk, kHang, kDesync, kIncomplete };
const char* statusName(Status s);  // "ok", "hang", "desync", "incomplete"

enum class Reason {
  kHostStall,     // never issued the call its peers wait in
  kDeviceStall,   // issued it, its stream never started it
  kMismatch,      // its call at a sequence number differs from its peers' (op, dtype, count, root, redOp)
  kUnmatchedP2P,  // a send or receive with no counterpart
  kMissing,       // no dump
  kDied,          // the process died (salvaged ring)
  kError,         // its communicator or call reported an NCCL error where its peers are stuck
};
const char* reasonName(Reason r);  // "host_stall", "device_stall", "mismatch", "unmatched_p2p", ...

// Where a rank stands at its communicator's frontier.
enum class RankState {
  kCompleted,      // completed the frontier call
  kNotEnqueued,    // never issued it (host)
  kQueued,         // issued, its stream has not started it (full timing only)
  kStarted,        // started on the GPU, not completed
  kPending,        // issued, not completed, start not measured (endOnly timing)
  kUnknown,        // issued; completion not measured (hostOnly timing)
  kMissing,        // no dump
};
const char* rankStateName(RankState s);

// One rank (process) of the job, as the verdict names it.
struct RankRef {
  int32_t rank = -1;  // global rank, -1 when unknown
  std::string host;   // "" for a missing rank
  uint32_t pid = 0;
  std::string label;  // "rank 5", "node3:4242", "comm 0x.. rank 3" for a missing rank of unknown global rank
};

// One link of a chain: `who` waits in `op` #seq on communicator `comm` for `waitsFor`.
struct ChainLink {
  RankRef who;
  uint64_t comm = 0;
  int32_t commRank = -1;
  int64_t seq = -1;  // collective sequence number; for send/recv the p2p sequence number
  std::string op;    // as Suspect::op
  RankState state = RankState::kUnknown;  // who's state in that call
  std::string why;                        // one sentence
};

struct Suspect {
  RankRef who;
  uint64_t comm = 0;  // the communicator of the call in question; commRank, seq and op are that call's
  int32_t commRank = -1;
  int64_t seq = -1;   // collective sequence number; for a send or recv its p2p sequence number
  std::string op;     // "allReduce", ..., "send" or "recv" (the side this rank issued, or never issued)
  // A send or recv: the rank it sends to or receives from (label "" otherwise).
  RankRef peer;
  Reason reason = Reason::kHostStall;
  std::string evidence;
  // Ranks that wait, directly or along a chain, on this one (how much of the job it holds up).
  int64_t blocking = 0;
  // The chain from a stalled call to this rank, head first; empty when it is blocked directly.
  std::vector<ChainLink> chain;
  // Other ranks named together with this one (the other side of a 2-rank mismatch, a p2p peer).
  std::vector<RankRef> with;
  // Reason kError: the ncclResult_t reported and when (wall ns; 0 unknown). A remote error
  // (ncclRemoteError, 6) is usually the echo of another rank's failure, so it sorts after local ones.
  int32_t errorCode = 0;
  int64_t errorWallNs = 0;
  // The evidence comes from a salvaged ring (less sure than a dump the process wrote itself).
  bool fromSalvage = false;
};

struct CommRankStatus {
  int32_t commRank = -1;
  RankRef who;
  int64_t lastEnqueuedSeq = -1;
  int64_t lastStartedSeq = -1;
  int64_t lastCompletedSeq = -1;
  RankState state = RankState::kCompleted;  // at the frontier (kCompleted when there is none)
  std::string timing;                       // "full" | "endOnly" | "hostOnly"
  int32_t asyncError = 0;
  std::string commState;  // "live", "aborted", ...
};

struct P2PLeftover {
  uint64_t comm = 0;
  int32_t srcCommRank = -1;
  int32_t dstCommRank = -1;
  RankRef src;
  RankRef dst;
  int64_t sends = 0;     // sends ever issued src -> dst
  int64_t receives = 0;  // receives ever issued on dst from src
  int64_t pending = 0;   // matched pairs not completed on both sides
};

// A send/recv pair where a wait-for chain ended: both sides started it and neither completed it
// (stuck in the transport, like a collective every rank started).
struct P2PStuck {
  uint64_t comm = 0;
  int32_t srcCommRank = -1;
  int32_t dstCommRank = -1;
  RankRef src;
  RankRef dst;
  int64_t p2pSeq = -1;  // the send's (and its receive's) p2p sequence number
};

struct CommReport {
  uint64_t id = 0;
  std::string name;
  int32_t size = 0;
  std::vector<CommRankStatus> ranks;  // by comm rank, missing ranks included
  int64_t frontierSeq = -1;           // first collective not completed on all ranks; -1 = none
  std::string frontierOp;             // its op, when a rank still holds the entry
  int64_t divergeSeq = -1;            // first seq where ranks differ (content or progress); -1 = none
  int64_t mismatchSeq = -1;           // first seq with a content mismatch; -1 = none
  int64_t alignedFrom = -1;           // the sequence numbers every present rank's ring still holds
  int64_t alignedTo = -1;
  bool stalled = false;
  std::string summary;  // one line
};

struct Verdict {
  Status status = Status::kOk;
  std::string jobId;
  std::string incidentId;
  std::string summary;  // one line for people
  std::vector<Suspect> suspects;
  std::vector<CommReport> comms;
  std::vector<P2PLeftover> p2pLeftovers;
  std::vector<P2PStuck> p2pStuck;
  std::vector<std::string> notes;
  std::vector<Problem> unreadable;
  int64_t ranksExpected = -1;  // world size, when known
  int64_t ranksFound = 0;
  std::vector<RankRef> missingRanks;
  std::vector<RankRef> diedRanks;
};

struct AnalyzeOptions {
  // Ranks listed per communicator in CommReport::ranks for communicators that are not stalled (large
  // jobs have tens of thousands); stalled communicators always list every rank.
  size_t maxHealthyCommRanks = SIZE_MAX;
};

Verdict analyze(const Job& job, const AnalyzeOptions& options = {});

}  // namespace ncclfr::analysis
