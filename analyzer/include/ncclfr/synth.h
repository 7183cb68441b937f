// Synthetic dumps (`ncclfr synth`): a training job of N ranks in TP/PP/DP groups, healthy or with
// one planted fault, written with the recorder's conventions (dump.capnp): exact counters, seq /
// p2pSeq / opSeq numbering, rings that wrapped (so no dump holds seq 0), entry states and times
// per timing mode. The fault step is computed by a small fixpoint simulation of hosts, streams and
// collectives, so every rank's state is one a real job could be in.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ncclfr/dump.capnp.h"

namespace ncclfr::synth {

// The scenarios, by name: "healthy", "host_stall", "device_stall", "mismatch", "unmatched_p2p",
// "died", "missing", "error", "transport".
const std::vector<std::string>& scenarioNames();

struct Options {
  int32_t ranks = 8;
  // Group sizes; 0 = choose (tp = 8 or less, pp = 4 when it divides, else 2 or 1). ranks must be
  // divisible by tp * pp; dp = ranks / (tp * pp).
  int32_t tp = 0;
  int32_t pp = 0;
  std::string scenario = "healthy";
  // The rank with the fault; -1 = ranks / 2 + 1 (mod ranks), never rank 0 by default.
  int32_t faultRank = -1;
  // Ring capacity = entries each dump holds once the ring has wrapped.
  uint32_t entries = 4096;
  // Training steps recorded; 0 = enough that every ring wrapped (so no dump holds seq 0).
  int64_t steps = 0;
  schema::TimingMode timing = schema::TimingMode::FULL;
  std::string jobId = "synth-job";
  // Empty: derived from the scenario ("20261121T203400.000Z-r<trigger>").
  std::string incidentId;
  unsigned threads = 2;
  // Also write a stale copy of this rank's ring, as `ncclfr salvage` would after it ran on a node
  // too early (fewer steps, reason salvaged, no incident id). -1 = none.
  int32_t staleCopyOfRank = -1;
  // Drop the global rank from every dump (launchers that set no RANK): processes are host+pid.
  bool noGlobalRank = false;
  // This rank's recorder could attach no GPU events to its calls of the fault step (of the last
  // step when healthy): they are recorded `untracked` (format 1.1) and its counters never see them
  // start or finish. Ignored with hostOnly timing (nothing is tracked there). -1 = none.
  int32_t untrackedRank = -1;
  // The dumps are a snapshot a person asked for (`ncclfr trigger`): every rank's reason onDemand,
  // no trigger rank, the incident detected when the dumps were written.
  bool onDemand = false;
  // Time from the start of the fault step (healthy: the end of the last step) to the dumps; -1 =
  // the scenario's (1 s healthy, NCCLFR_TIMEOUT (60 s) + 0.5 s with a fault). A short delay with a
  // fault scenario and onDemand is a snapshot of calls in flight.
  int64_t dumpDelayNs = -1;
  // The NCCLFR_TIMEOUT the live dumps carry (DumpInfo.timeoutNs, format 1.2); 0 = not carried, as
  // in dumps older than 1.2 (salvaged dumps never carry it).
  int64_t timeoutNs = 0;
  std::function<void(size_t, size_t)> progress;
};

struct Result {
  std::vector<std::string> files;
  int32_t faultRank = -1;
  int32_t tp = 1, pp = 1, dp = 1;
  uint64_t entriesWritten = 0;
};

// Writes one dump per rank into `dir` (created if needed) and fills *result (replacing what it
// held). False with *error on bad options or a write failure.
bool writeJob(const Options& options, const std::string& dir, Result* result, std::string* error);

}  // namespace ncclfr::synth
