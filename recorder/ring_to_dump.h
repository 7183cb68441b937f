// The one converter from a ring (a live process's, read by its watchdog, or one left in /dev/shm,
// read by `ncclfr salvage`) to a dump message of include/ncclfr/dump.capnp.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <capnp/message.h>

#include "ncclfr/dump.capnp.h"
#include "shm_ring.h"

namespace ncclfr::recorder {

struct DumpRequest {
  schema::DumpReason reason = schema::DumpReason::UNKNOWN;
  std::string detail;
  std::string incidentId;
  int64_t incidentWallNs = 0;
  int32_t triggerRank = -1;
  // The recorder's NCCLFR_TIMEOUT, for DumpInfo.timeoutNs. Live dumps set it; salvage leaves 0 (not
  // known), because the shared-memory header does not hold it.
  int64_t timeoutNs = 0;
  // Salvage: whether the recorded process was gone, and who writes the file.
  bool salvage = false;
  bool processDied = false;
  std::string writerHost;
  uint32_t writerPid = 0;
  // Names for return addresses, when the writer can give them cheaply (live dumps use dladdr).
  std::function<std::string(uint64_t)> symbolize;
};

struct DumpStats {
  uint64_t totalEntries = 0;   // calls ever appended
  uint64_t evictedEntries = 0; // overwritten by the ring's wrap-around
  uint64_t tornEntries = 0;    // half-written (dead process) or being written (live) and left out
  uint64_t writtenEntries = 0; // in the dump
};

// Fills `message`'s root Dump from `ring`. Live fields are read atomically, so the ring may be
// changing underneath (a live process): the dump is then a consistent-per-entry snapshot. Never
// throws; false with one line in *error on failure.
bool ringToDump(const RingRegion& ring, const DumpRequest& request, capnp::MessageBuilder& message,
                DumpStats* stats, std::string* error) noexcept;

}  // namespace ncclfr::recorder
