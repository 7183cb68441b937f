// `ncclfr export --format chrome-trace PATH... -o trace.json`: every recorded call as a Trace
// Event Format file for Perfetto UI, chrome://tracing and HTA (docs/viewer.md).
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands/command.h"
#include "commands/output_path.h"
#include "commands/progress.h"
#include "ncclfr/analysis/analyze.h"
#include "ncclfr/analysis/load.h"
#include "ncclfr/viewer/chrome_trace.h"

namespace ncclfr::cli {
namespace {

struct ExportArgs {
  std::vector<std::string> paths;
  std::string format;
  std::string out;
  std::string job;
  std::string incident;
  std::string ranks;
  size_t last = 0;
  bool perRank = false;
  unsigned threads = 2;
};

int runExport(const ExportArgs& a) {
  using namespace ncclfr::analysis;
  if (a.format != "chrome-trace") {
    std::fprintf(stderr, "ncclfr export: --format must be chrome-trace, not '%s'\n", a.format.c_str());
    return kExitBadInput;
  }
  viewer::TraceOptions to;
  to.last = a.last;
  to.threads = a.threads;
  if (!a.ranks.empty() && !viewer::parseRankList(a.ranks, &to.ranks)) {
    std::fprintf(stderr, "ncclfr export: --ranks takes a list such as 0-7,12 (not '%s')\n", a.ranks.c_str());
    return kExitBadInput;
  }
  std::vector<Problem> problems;
  auto files = findDumpFiles(a.paths, &problems);
  for (const auto& p : problems) std::fprintf(stderr, "ncclfr: %s\n", p.message.c_str());
  if (files.empty()) {
    std::fprintf(stderr, "ncclfr: no dump files (*.ncclfr) found in the given paths\n");
    return kExitBadInput;
  }
  // With --per-rank, -o is a folder that receives rank<R>.json files, which no dump is named like.
  if (!a.perRank && a.out != "-" && !outputAllowed(a.out, a.paths, files, OutputKind::kAny)) return kExitBadInput;
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
  // The verdict labels the suspects' processes in the trace.
  Verdict verdict = analyze(job);

  std::vector<Problem> readProblems;
  viewer::TraceStats stats;
  bool ok;
  if (a.perRank) {
    ok = viewer::writeChromeTracePerRank(job, &verdict, to, a.out, &readProblems, &stats, &error);
  } else if (a.out == "-") {
    ok = viewer::writeChromeTrace(job, &verdict, to, std::cout, &readProblems, &stats, &error);
  } else {
    std::string tmp = a.out + ".tmp";
    {
      errno = 0;
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      if (!f) {
        std::fprintf(stderr, "ncclfr export: %s\n", cannotWrite(a.out, errno != 0 ? errno : EIO).c_str());
        return kExitBadInput;
      }
      ok = viewer::writeChromeTrace(job, &verdict, to, f, &readProblems, &stats, &error);
      errno = 0;
      f.close();
      if (ok && !f) {
        ok = false;
        error = cannotWrite(a.out, errno != 0 ? errno : EIO);
      }
    }
    if (ok && std::rename(tmp.c_str(), a.out.c_str()) != 0) {
      ok = false;
      error = cannotWrite(a.out, errno);
    }
    if (!ok) std::remove(tmp.c_str());
  }
  for (const auto& p : readProblems) std::fprintf(stderr, "ncclfr: %s\n", p.message.c_str());
  if (!ok) {
    std::fprintf(stderr, "ncclfr export: %s\n", error.c_str());
    return kExitBadInput;
  }
  std::fprintf(a.out == "-" ? stderr : stdout, "wrote %s: %zu processes, %zu calls%s\n", a.out.c_str(),
               stats.processes, stats.events, a.perRank ? " (one file per rank)" : "");
  return kExitOk;
}

void addExport(CLI::App& app, int* exitCode) {
  auto args = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand(
      "export", "Export every recorded call as a trace for Perfetto UI, chrome://tracing or HTA (exit 0 written, 2 bad input)");
  cmd->add_option("paths", args->paths, "Dump files or folders (searched recursively for *.ncclfr)")->required();
  cmd->add_option("--format", args->format, "Output format: chrome-trace")->required();
  cmd->add_option("-o,--out", args->out, "The trace file to write ('-' for stdout), or a folder with --per-rank")
      ->required();
  cmd->add_flag("--per-rank", args->perRank,
                "Write one file per rank into the -o folder (rank<R>.json, the layout HTA's TraceAnalysis reads)");
  cmd->add_option("--ranks", args->ranks, "Only these global ranks, e.g. 0-7,12 (default: all)");
  cmd->add_option("--last", args->last, "Only the newest N calls of each rank (default: all the dumps hold)");
  cmd->add_option("--job", args->job, "The job to export when the dumps hold several");
  cmd->add_option("--incident", args->incident, "The incident to export (default: the latest)");
  cmd->add_option("--threads", args->threads, "Reader threads (default 2)")->check(CLI::Range(1, 256));
  cmd->callback([args, exitCode] { *exitCode = runExport(*args); });
}

NCCLFR_COMMAND(36, addExport);

}  // namespace
}  // namespace ncclfr::cli
