// Reading a window of entries back out of a dump. The analysis model (ncclfr/analysis/model.h)
// keeps only the entries a verdict needs; the report and the trace export need more, so they
// re-open the file (mmap, zero copy) and read what they need, newest first, stopping as soon as
// every communicator's window is complete: a stalled job's windows sit at the ring's tail, so a
// 24,576-rank report touches a few pages of each dump.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ncclfr/analysis/model.h"

namespace ncclfr::viewer {

// One communicator's window, by its index in the dump's comm list.
struct WindowRequest {
  uint32_t comm = 0;
  // Collectives with lo <= seq <= hi. A send or receive carries the seq of the last collective
  // before it, so point-to-point calls with lo - 1 <= seq <= hi are taken too. hi < 0: the
  // communicator has no collectives; only point-to-point calls are taken.
  int64_t lo = 0;
  int64_t hi = -1;
  // At most this many point-to-point calls (the newest); at most hi - lo + 1 collectives.
  size_t maxP2P = 8;
};

// Fills out[i] with the entries of requests[i], oldest first. False with *error (one line naming
// the file) when the file cannot be read; never throws.
bool readWindows(const std::string& path, const std::vector<WindowRequest>& requests,
                 std::vector<std::vector<analysis::EntryView>>* out, std::string* error);

// An entry with what the trace export shows beyond the model's copy.
struct FullEntry : analysis::EntryView {
  uint32_t callDurationNs = 0;
};

// What the export needs of a dump besides the model (load.h does not keep these).
struct DumpExtras {
  int32_t ncclVersion = 0;
  uint32_t cudaDriverVersion = 0;
};

// Every entry of the dump (oldest first), or only the newest `last` (0 = all).
bool readAllEntries(const std::string& path, size_t last, std::vector<FullEntry>* out, DumpExtras* extras,
                    std::string* error);

}  // namespace ncclfr::viewer
