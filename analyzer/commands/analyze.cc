// `ncclfr analyze PATH...`: merge every rank's dump and name the root-cause rank.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands/command.h"
#include "commands/progress.h"
#include "ncclfr/analysis/analyze.h"
#include "ncclfr/analysis/load.h"
#include "ncclfr/analysis/render.h"

namespace ncclfr::cli {
namespace {

struct AnalyzeArgs {
  std::vector<std::string> paths;
  bool json = false;
  bool verbose = false;
  std::string job;
  std::string incident;
  unsigned threads = 2;
};

int runAnalyze(const AnalyzeArgs& a) {
  using namespace ncclfr::analysis;
  std::vector<Problem> problems;
  auto files = findDumpFiles(a.paths, &problems);
  for (const auto& p : problems) std::fprintf(stderr, "ncclfr: %s\n", p.message.c_str());
  if (files.empty()) {
    std::fprintf(stderr, "ncclfr: no dump files (*.ncclfr) found in the given paths\n");
    return kExitBadInput;
  }
  LoadOptions lo;
  lo.threads = a.threads;
  Progress progress("reading dumps");
  lo.progress = [&](size_t d, size_t t) { progress.update(d, t); };
  LoadedDumps loaded = loadDumps(files, lo);
  progress.finish();
  for (const auto& p : loaded.problems) std::fprintf(stderr, "ncclfr: %s\n", p.message.c_str());
  Job job;
  std::string error;
  SelectOptions so{a.job, a.incident};
  if (!selectJob(std::move(loaded), so, &job, &error)) {
    std::fprintf(stderr, "ncclfr: %s\n", error.c_str());
    return kExitBadInput;
  }
  AnalyzeOptions ao;
  if (!a.verbose && job.processes.size() > 64) ao.maxHealthyCommRanks = 64;
  Verdict v = analyze(job, ao);
  if (a.json) {
    std::cout << verdictJsonText(v) << "\n";
  } else {
    std::cout << renderText(v, a.verbose);
  }
  std::cout.flush();
  return v.status == Status::kOk ? kExitOk : kExitProblem;
}

void addAnalyze(CLI::App& app, int* exitCode) {
  auto args = std::make_shared<AnalyzeArgs>();
  auto* cmd = app.add_subcommand("analyze", "Merge all ranks' dumps and name the root-cause rank (exit 0 healthy, 1 problem, 2 bad input)");
  cmd->add_option("paths", args->paths, "Dump files or folders (searched recursively for *.ncclfr)")->required();
  cmd->add_flag("--json", args->json, "Print the verdict as JSON (docs/analyzer.md documents it)");
  cmd->add_flag("-v,--verbose", args->verbose, "List every communicator, suspect and note");
  cmd->add_option("--job", args->job, "The job to analyze when the dumps hold several");
  cmd->add_option("--incident", args->incident, "The incident to analyze (default: the latest)");
  cmd->add_option("--threads", args->threads, "Reader threads (default 2)")->check(CLI::Range(1, 256));
  cmd->callback([args, exitCode] { *exitCode = runAnalyze(*args); });
}

NCCLFR_COMMAND(10, addAnalyze);

}  // namespace
}  // namespace ncclfr::cli
