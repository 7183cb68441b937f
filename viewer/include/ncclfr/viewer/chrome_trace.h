// `ncclfr export --format chrome-trace`: the Trace Event Format that Perfetto UI, chrome://tracing
// and Holistic Trace Analysis read (docs/viewer.md). A process per rank, a thread per
// communicator and stream, every recorded call a complete ("X") event; calls still pending at the
// dump run to the dump time. All hosts are placed on one wall-clock axis through each dump's
// clock base.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "ncclfr/analysis/analyze.h"
#include "ncclfr/analysis/load.h"

namespace ncclfr::viewer {

struct TraceOptions {
  std::set<int32_t> ranks;  // global ranks to export; empty = all
  size_t last = 0;          // newest entries per rank; 0 = every entry the dumps hold
  unsigned threads = 2;
};

struct TraceStats {
  size_t processes = 0;
  size_t events = 0;  // complete events (calls)
};

// Writes one trace holding every selected process. `verdict` may be null; when given, suspects
// are labelled. Dumps that cannot be re-read become problems. Never throws for bad input.
bool writeChromeTrace(const analysis::Job& job, const analysis::Verdict* verdict, const TraceOptions& options,
                      std::ostream& out, std::vector<analysis::Problem>* problems, TraceStats* stats,
                      std::string* error);

// Writes one file per selected process into `dir` (created), named rank<R>.json (host-pid.json
// without a rank): the layout HTA's TraceAnalysis(trace_dir=...) reads, each file with its own
// distributedInfo.rank.
bool writeChromeTracePerRank(const analysis::Job& job, const analysis::Verdict* verdict,
                             const TraceOptions& options, const std::string& dir,
                             std::vector<analysis::Problem>* problems, TraceStats* stats, std::string* error);

// Parses rank lists such as "0-7,12,100-103" (for --ranks). False on bad syntax.
bool parseRankList(const std::string& text, std::set<int32_t>* ranks);

}  // namespace ncclfr::viewer
