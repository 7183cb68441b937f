// `ncclfr report`: one self-contained HTML file (docs/viewer.md): the verdict on top, below it a
// timeline per communicator. Everything (HTML, CSS, JS, data) is inline; the page makes no request
// and its Content-Security-Policy forbids any.
//
// The page shows a bounded window of calls around each communicator's frontier (not every entry of
// every ring: 24,576 ranks x 4,096 entries would be gigabytes), and says so.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ncclfr/analysis/analyze.h"
#include "ncclfr/analysis/load.h"

namespace ncclfr::viewer {

struct ReportOptions {
  // Collectives shown before and after each communicator's frontier (or its newest call when it
  // has none), per rank.
  int64_t before = 5;
  int64_t after = 3;
  // Point-to-point calls shown per rank and communicator (the newest in the window).
  size_t maxP2P = 8;
  // Entries the report may hold in all; when the windows would hold more, they shrink (down to one
  // collective on each side of the frontier) and the page says so. The default keeps a
  // 24,576-rank report well under 50 MB.
  size_t entryBudget = 1'500'000;
  // The page's size the windows aim to stay under, estimated from what each rank, communicator
  // membership and call costs in the page (0 = no aim). Jobs with many communicators per rank
  // narrow their windows to keep under it.
  size_t targetBytes = 45'000'000;
  unsigned threads = 2;  // dump readers
  std::string title;     // default: "ncclfr report: <job>"
};

struct ReportStats {
  size_t comms = 0;
  size_t members = 0;  // (rank, communicator) pairs
  size_t entries = 0;  // entries embedded
  int64_t before = 0;  // the window actually used
  int64_t after = 0;
  size_t bytes = 0;    // of the HTML
};

// The data the page renders (the JSON embedded in it; docs/viewer.md describes it). Dumps that
// cannot be re-read become problems (their lanes show counters only).
nlohmann::json buildReportData(const analysis::Job& job, const analysis::Verdict& verdict,
                               const ReportOptions& options, std::vector<analysis::Problem>* problems,
                               ReportStats* stats = nullptr);

// The whole HTML page for `data`.
std::string renderReportHtml(const nlohmann::json& data, const std::string& title);

// Builds and writes the report to `path` atomically (a temporary file beside it, then rename).
bool writeReport(const analysis::Job& job, const analysis::Verdict& verdict, const ReportOptions& options,
                 const std::string& path, std::vector<analysis::Problem>* problems, ReportStats* stats,
                 std::string* error);

}  // namespace ncclfr::viewer
