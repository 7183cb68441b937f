// The loaded-job model: what the analyzer keeps of each dump after reading it once.
//
// Dumps are mmapped, read in place and unmapped again (a job can have more dumps than a process may
// hold mappings), so everything later passes need is copied out here, compactly: the exact
// counters of every communicator, one 32-bit fingerprint per collective the ring still holds (for
// the mismatch check at every aligned sequence number), and full copies of only the entries that
// can matter for a verdict (the oldest pending calls of each communicator and the newest calls of
// the process). The viewer (HTML report, Perfetto export) builds on the same model; it re-opens
// `ProcessDump::paths` when it needs every entry.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ncclfr/dump.capnp.h"

namespace ncclfr::analysis {

// One line about an input that could not be used (or was used only partly).
struct Problem {
  std::string path;
  std::string message;  // already names the file; print as is
};

// A call's identity for the mismatch check: what every rank of a communicator must agree on at one
// sequence number. Fields that NCCL ignores for an op are normalized (root only for rooted ops,
// reduction op only for reductions) so they never cause a false mismatch.
struct CallSignature {
  schema::Op op = schema::Op::UNKNOWN;
  schema::DataType dtype = schema::DataType::INT8;
  schema::RedOp redOp = schema::RedOp::SUM;
  int32_t root = -1;
  uint64_t count = 0;

  bool operator==(const CallSignature&) const = default;
  // Never 0: 0 marks "the ring does not hold this sequence number".
  uint32_t fingerprint() const;
  std::string describe() const;  // "allReduce float32 sum count=1024"
};
CallSignature normalizedSignature(schema::Op op, schema::DataType dtype, schema::RedOp redOp, int32_t root,
                                  uint64_t count);

// One recorded call, copied out of a dump.
struct EntryView {
  uint32_t index = 0;  // position in Dump.entries
  uint32_t comm = 0;   // index into ProcessDump::comms
  schema::Op op = schema::Op::UNKNOWN;
  schema::EntryState state = schema::EntryState::SCHEDULED;
  schema::DataType dtype = schema::DataType::INT8;
  schema::RedOp redOp = schema::RedOp::SUM;
  int32_t root = -1;
  int64_t seq = -1;
  int64_t p2pSeq = -1;
  uint32_t opSeq = 0;
  uint32_t groupId = 0;
  uint64_t count = 0;
  uint64_t stream = 0;
  int64_t enqueueMonoNs = 0;
  int64_t startMonoNs = 0;
  int64_t endMonoNs = 0;
  uint32_t threadId = 0;
  int32_t result = 0;

  bool isP2P() const { return op == schema::Op::SEND || op == schema::Op::RECV; }
  CallSignature signature() const { return normalizedSignature(op, dtype, redOp, root, count); }
};

struct P2PCounterView {
  int32_t peer = -1;
  bool send = false;
  int64_t lastEnqueuedSeq = -1;
  int64_t lastStartedSeq = -1;
  int64_t lastCompletedSeq = -1;
};

// One communicator as one process saw it.
struct CommView {
  uint64_t id = 0;
  uint64_t parentId = 0;
  int32_t splitColor = -1;
  int32_t rank = -1;
  int32_t size = 0;
  int32_t cudaDevice = -1;
  schema::CommState state = schema::CommState::LIVE;
  schema::CommOrigin createdBy = schema::CommOrigin::UNKNOWN;
  int32_t lastAsyncError = 0;
  int64_t lastAsyncErrorMonoNs = 0;
  int64_t lastEnqueuedSeq = -1;
  int64_t lastStartedSeq = -1;
  int64_t lastCompletedSeq = -1;
  uint64_t evictedEntries = 0;
  uint64_t totalEntries = 0;
  bool blocking = true;
  std::string name;
  std::vector<P2PCounterView> p2p;  // sorted by (peer, send)

  // Fingerprints of the collectives the ring still holds: fingerprints[i] is sequence number
  // firstHeldSeq + i; 0 where the ring does not hold it (a torn entry, a gap).
  int64_t firstHeldSeq = -1;
  std::vector<uint32_t> fingerprints;
  // Distinct signatures seen, for evidence (bounded; a hostile dump cannot make it large).
  std::vector<CallSignature> signatures;

  int64_t lastHeldSeq() const { return firstHeldSeq + static_cast<int64_t>(fingerprints.size()) - 1; }
  uint32_t fingerprintAt(int64_t seq) const {
    if (firstHeldSeq < 0 || seq < firstHeldSeq || seq > lastHeldSeq()) return 0;
    return fingerprints[static_cast<size_t>(seq - firstHeldSeq)];
  }
  const CallSignature* signatureFor(uint32_t fingerprint) const;
  const P2PCounterView* p2pCounter(int32_t peer, bool send) const;
};

// A dump's monotonic time as wall-clock ns (mono + clockWall - clockMono); 0 stays 0 ("not known").
// Saturates at the int64 limits: a damaged dump's clock base must not overflow (a result at either
// limit is no real time).
inline int64_t wallFromMono(int64_t monoNs, int64_t clockWallNs, int64_t clockMonoNs) {
  if (monoNs == 0) return 0;
  int64_t offset = 0, wall = 0;
  if (__builtin_sub_overflow(clockWallNs, clockMonoNs, &offset)) {
    return clockWallNs < 0 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  }
  if (__builtin_add_overflow(monoNs, offset, &wall)) {
    return offset < 0 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  }
  return wall;
}

// What a process's recorder saw of one (issuing thread, stream): the ring positions of the newest
// call seen started (or completed) and the newest seen completed, with their ncclGroup ids. A stream
// runs its work in order, so every call issued before on the same stream by the same thread got at
// least as far (a call of the same group launched with it: at least started). Captured, refused and
// failed calls are no evidence.
struct StreamProgress {
  uint64_t stream = 0;
  uint32_t thread = 0;
  uint32_t lastStartedGroup = 0;
  int64_t lastStartedIndex = -1;  // started or completed
  int64_t lastCompletedIndex = -1;
  uint32_t lastCompletedGroup = 0;
};

// One process: its dump, or the merge of its own dump and a salvaged one.
struct ProcessDump {
  std::vector<std::string> paths;  // the file(s) it came from; paths[0] is the one whose content is kept
  uint16_t formatMajor = 0;
  uint16_t formatMinor = 0;

  // Process
  std::string host;
  uint32_t pid = 0;
  int32_t globalRank = -1;
  int32_t worldSize = -1;
  int32_t localRank = -1;
  std::string jobId;
  schema::TimingMode timing = schema::TimingMode::FULL;
  bool simulated = false;
  int64_t clockWallNs = 0;
  int64_t clockMonoNs = 0;
  uint32_t ringCapacity = 0;
  std::string cmdline;

  // DumpInfo
  schema::DumpReason reason = schema::DumpReason::UNKNOWN;
  std::string detail;
  int64_t dumpWallNs = 0;
  int64_t dumpMonoNs = 0;
  std::string incidentId;
  int64_t incidentWallNs = 0;
  int32_t triggerRank = -1;
  bool processDied = false;
  uint64_t totalEntries = 0;
  uint64_t evictedEntries = 0;
  uint64_t tornEntries = 0;
  // The recorder's NCCLFR_TIMEOUT when it wrote the dump (format 1.2); 0 when not known (older
  // dumps, salvaged rings).
  int64_t timeoutNs = 0;
  uint64_t heldEntries = 0;  // entries the ring still held
  uint64_t untrackedEntries = 0;  // held entries in state untracked (no GPU events could be attached)

  std::vector<CommView> comms;
  // The entries kept for verdicts (see the top of this file), in ring order, no duplicates.
  std::vector<EntryView> entries;
  // Per (thread, stream) the recorder's newest evidence of progress over the whole ring (bounded).
  std::vector<StreamProgress> streams;

  // Host monotonic ns -> wall-clock ns since the epoch; 0 stays 0 ("not known"). Saturates
  // (wallFromMono).
  int64_t wallNs(int64_t monoNs) const { return wallFromMono(monoNs, clockWallNs, clockMonoNs); }
  const StreamProgress* streamProgress(uint32_t thread, uint64_t stream) const {
    for (const auto& s : streams) {
      if (s.thread == thread && s.stream == stream) return &s;
    }
    return nullptr;
  }
  bool startKnown() const { return timing == schema::TimingMode::FULL; }
  bool completionKnown() const { return timing != schema::TimingMode::HOST_ONLY; }
  // "rank 5", or "host:pid" when the launcher named no rank.
  std::string label() const;
  // The entry of communicator `comm` with collective sequence number `seq`, if kept.
  const EntryView* findCollective(uint32_t comm, int64_t seq) const;
  // The n-th send (send=true) or receive to/from `peer` on `comm`, if kept.
  const EntryView* findP2P(uint32_t comm, int32_t peer, bool send, int64_t p2pSeq) const;
  // The newest kept entry, or null.
  const EntryView* newest() const { return entries.empty() ? nullptr : &entries.back(); }
};

}  // namespace ncclfr::analysis
