// `ncclfr report PATH... -o report.html`: the verdict and a per-communicator timeline in one HTML
// file that opens anywhere (docs/viewer.md).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands/command.h"
#include "commands/output_path.h"
#include "commands/progress.h"
#include "ncclfr/analysis/analyze.h"
#include "ncclfr/analysis/load.h"
#include "ncclfr/viewer/report.h"

namespace ncclfr::cli {
namespace {

struct ReportArgs {
  std::vector<std::string> paths;
  std::string out;
  std::string job;
  std::string incident;
  std::string title;
  int64_t before = 5;
  int64_t after = 3;
  size_t budget = 1'500'000;
  unsigned threads = 2;
};

int runReport(const ReportArgs& a) {
  using namespace ncclfr::analysis;
  std::vector<Problem> problems;
  auto files = findDumpFiles(a.paths, &problems);
  for (const auto& p : problems) std::fprintf(stderr, "ncclfr: %s\n", p.message.c_str());
  if (files.empty()) {
    std::fprintf(stderr, "ncclfr: no dump files (*.ncclfr) found in the given paths\n");
    return kExitBadInput;
  }
  if (!outputAllowed(a.out, a.paths, files, OutputKind::kAny)) return kExitBadInput;
  LoadOptions lo;
  lo.threads = a.threads;
  Progress progress("reading dumps");
  lo.progress = [&](size_t d, size_t t) { progress.update(d, t); };
  LoadedDumps loaded = loadDumps(files, lo);
  progress.finish();
  for (const auto& p : loaded.problems) std::fprintf(stderr, "ncclfr: %s\n", p.message.c_str());
  Job job;
  std::string error;
  if (!selectJob(std::move(loaded), SelectOptions{a.job, a.incident}, &job, &error)) {
    std::fprintf(stderr, "ncclfr: %s\n", error.c_str());
    return kExitBadInput;
  }
  Verdict verdict = analyze(job);

  viewer::ReportOptions ro;
  ro.before = a.before;
  ro.after = a.after;
  ro.entryBudget = a.budget;
  ro.threads = a.threads;
  ro.title = a.title;
  std::vector<Problem> readProblems;
  viewer::ReportStats stats;
  if (!viewer::writeReport(job, verdict, ro, a.out, &readProblems, &stats, &error)) {
    std::fprintf(stderr, "ncclfr report: %s\n", error.c_str());
    return kExitBadInput;
  }
  for (const auto& p : readProblems) std::fprintf(stderr, "ncclfr: %s\n", p.message.c_str());
  std::printf("wrote %s (%.1f MB): %s: %s; %zu communicators, %zu calls shown (%lld before and %lld after each "
              "frontier)\n",
              a.out.c_str(), static_cast<double>(stats.bytes) / 1e6, statusName(verdict.status),
              verdict.summary.c_str(), stats.comms, stats.entries, static_cast<long long>(stats.before),
              static_cast<long long>(stats.after));
  return kExitOk;
}

void addReport(CLI::App& app, int* exitCode) {
  auto args = std::make_shared<ReportArgs>();
  auto* cmd = app.add_subcommand(
      "report", "Write the verdict and per-communicator timelines as one self-contained HTML file (exit 0 written, 2 bad input)");
  cmd->add_option("paths", args->paths, "Dump files or folders (searched recursively for *.ncclfr)")->required();
  cmd->add_option("-o,--out", args->out, "The HTML file to write")->required();
  cmd->add_option("--job", args->job, "The job to show when the dumps hold several");
  cmd->add_option("--incident", args->incident, "The incident to show (default: the latest)");
  cmd->add_option("--before", args->before, "Collectives shown before each communicator's frontier (default 5)")
      ->check(CLI::Range(0, 10000));
  cmd->add_option("--after", args->after, "Collectives shown after it (default 3)")->check(CLI::Range(0, 10000));
  cmd->add_option("--max-entries", args->budget,
                  "Calls the report may hold in all; windows shrink to fit (default 1500000, about 40 MB)")
      ->check(CLI::Range(static_cast<size_t>(1000), static_cast<size_t>(100'000'000)));
  cmd->add_option("--title", args->title, "Page title (default: the job id)");
  cmd->add_option("--threads", args->threads, "Reader threads (default 2)")->check(CLI::Range(1, 256));
  cmd->callback([args, exitCode] { *exitCode = runReport(*args); });
}

NCCLFR_COMMAND(35, addReport);

}  // namespace
}  // namespace ncclfr::cli
