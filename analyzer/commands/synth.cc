// `ncclfr synth --ranks N --scenario NAME -o DIR`: synthetic dumps for tests, demos and benchmarks.
#include <cstdio>
#include <memory>
#include <string>

#include "commands/command.h"
#include "commands/progress.h"
#include "ncclfr/dump_file.h"
#include "ncclfr/synth.h"

namespace ncclfr::cli {
namespace {

struct SynthArgs {
  synth::Options o;
  std::string out;
  std::string timing = "full";
};

int runSynth(SynthArgs& a) {
  if (!enumFromName(a.timing, &a.o.timing)) {
    std::fprintf(stderr, "ncclfr synth: --timing must be full, endOnly or hostOnly\n");
    return kExitBadInput;
  }
  Progress progress("writing dumps");
  a.o.progress = [&](size_t d, size_t t) { progress.update(d, t); };
  synth::Result r;
  std::string error;
  if (!synth::writeJob(a.o, a.out, &r, &error)) {
    progress.finish();
    std::fprintf(stderr, "ncclfr synth: %s\n", error.c_str());
    return kExitBadInput;
  }
  progress.finish();
  std::printf("wrote %zu dumps (%llu entries) to %s: %d ranks, tp %d x pp %d x dp %d, scenario %s",
              r.files.size(), static_cast<unsigned long long>(r.entriesWritten), a.out.c_str(), a.o.ranks, r.tp, r.pp,
              r.dp, a.o.scenario.c_str());
  if (r.faultRank >= 0) std::printf(", fault at rank %d", r.faultRank);
  std::printf("\n");
  return kExitOk;
}

void addSynth(CLI::App& app, int* exitCode) {
  auto args = std::make_shared<SynthArgs>();
  auto* cmd = app.add_subcommand("synth", "Write synthetic dumps of a TP/PP/DP job, healthy or with one planted fault");
  std::string scenarios;
  for (const auto& s : synth::scenarioNames()) scenarios += (scenarios.empty() ? "" : ", ") + s;
  cmd->add_option("--ranks", args->o.ranks, "Number of ranks")->required();
  cmd->add_option("--scenario", args->o.scenario, "One of: " + scenarios)->required();
  cmd->add_option("-o,--out", args->out, "Output folder (created)")->required();
  cmd->add_option("--tp", args->o.tp, "Tensor-parallel group size (default: up to 8)");
  cmd->add_option("--pp", args->o.pp, "Pipeline stages (default: 4, 2 or 1, whichever divides)");
  cmd->add_option("--fault-rank", args->o.faultRank, "Rank with the fault (default: ranks/2+1)");
  cmd->add_option("--entries", args->o.entries, "Ring capacity: entries per dump (default 4096)")
      ->check(CLI::Range(1u, 1u << 24));
  cmd->add_option("--steps", args->o.steps, "Training steps recorded (default: enough to wrap every ring)");
  cmd->add_option("--timing", args->timing, "Timing mode recorded: full, endOnly, hostOnly");
  cmd->add_option("--job", args->o.jobId, "Job id (default synth-job)");
  cmd->add_option("--incident", args->o.incidentId, "Incident id (default derived from the scenario)");
  cmd->add_option("--stale-copy-of", args->o.staleCopyOfRank,
                  "Also write an older salvaged copy of this rank's ring (tests the merge)");
  cmd->add_option("--untracked-rank", args->o.untrackedRank,
                  "Record this rank's calls of the fault step (the last step when healthy) untracked: no GPU events");
  cmd->add_flag("--no-global-rank", args->o.noGlobalRank, "Record no global rank (processes known by host+pid)");
  cmd->add_option("--threads", args->o.threads, "Writer threads (default 2)")->check(CLI::Range(1, 256));
  cmd->callback([args, exitCode] { *exitCode = runSynth(*args); });
}

NCCLFR_COMMAND(60, addSynth);

}  // namespace
}  // namespace ncclfr::cli
