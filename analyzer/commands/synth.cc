// `ncclfr synth --ranks N --scenario NAME -o DIR`: synthetic dumps for tests, demos and benchmarks.
#include <sys/statvfs.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

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

// Dumps already in the output folder would be analyzed together with the new ones.
bool holdsDumps(const std::string& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(out, ec)) return false;
  for (fs::recursive_directory_iterator it(out, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".ncclfr") return true;
  }
  return false;
}

// Free bytes where `out` will be created (its nearest existing ancestor); -1 when unknown.
int64_t freeBytesFor(const std::string& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::absolute(out, ec);
  while (!p.empty() && !fs::exists(p, ec)) p = p.parent_path();
  struct statvfs v{};
  if (p.empty() || ::statvfs(p.c_str(), &v) != 0) return -1;
  return static_cast<int64_t>(v.f_bavail) * static_cast<int64_t>(v.f_frsize);
}

int runSynth(SynthArgs& a) {
  if (!enumFromName(a.timing, &a.o.timing)) {
    std::fprintf(stderr, "ncclfr synth: --timing must be full, endOnly or hostOnly\n");
    return kExitBadInput;
  }
  if (a.o.staleCopyOfRank >= a.o.ranks) {
    std::fprintf(stderr, "ncclfr synth: --stale-copy-of must be below --ranks\n");
    return kExitBadInput;
  }
  if (holdsDumps(a.out)) {
    std::fprintf(stderr, "ncclfr synth: %s already holds dumps (they would be analyzed with the new ones): choose an empty folder\n",
                 a.out.c_str());
    return kExitBadInput;
  }
  // About 100 bytes per entry in a dump (docs/performance.md), plus the communicators and header.
  const int64_t estimate = static_cast<int64_t>(a.o.ranks) * (static_cast<int64_t>(a.o.entries) * 100 + 8192);
  if (int64_t free = freeBytesFor(a.out); free >= 0 && estimate > free) {
    std::fprintf(stderr, "ncclfr synth: %d ranks x %u entries need about %.1f GB, only %.1f GB free at %s\n", a.o.ranks,
                 a.o.entries, static_cast<double>(estimate) / 1e9, static_cast<double>(free) / 1e9, a.out.c_str());
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
  cmd->add_option("--tp", args->o.tp, "Tensor-parallel group size (default: up to 8)")->check(CLI::Range(1, 1 << 22));
  cmd->add_option("--pp", args->o.pp, "Pipeline stages (default: 4, 2 or 1, whichever divides)")
      ->check(CLI::Range(1, 1 << 22));
  cmd->add_option("--fault-rank", args->o.faultRank, "Rank with the fault (default: ranks/2+1)")
      ->check(CLI::Range(0, 1 << 22));
  cmd->add_option("--entries", args->o.entries, "Ring capacity: entries per dump (default 4096)")
      ->check(CLI::Range(1u, 1u << 24));
  cmd->add_option("--steps", args->o.steps, "Training steps recorded (default: enough to wrap every ring)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->add_option("--timing", args->timing, "Timing mode recorded: full, endOnly, hostOnly");
  cmd->add_option("--job", args->o.jobId, "Job id (default synth-job)");
  cmd->add_option("--incident", args->o.incidentId, "Incident id (default derived from the scenario)");
  cmd->add_option("--stale-copy-of", args->o.staleCopyOfRank,
                  "Also write an older salvaged copy of this rank's ring (tests the merge)")
      ->check(CLI::Range(0, 1 << 22));
  cmd->add_option("--untracked-rank", args->o.untrackedRank,
                  "Record this rank's calls of the fault step (the last step when healthy) untracked: no GPU events")
      ->check(CLI::Range(0, 1 << 22));
  cmd->add_flag("--no-global-rank", args->o.noGlobalRank, "Record no global rank (processes known by host+pid)");
  cmd->add_option("--threads", args->o.threads, "Writer threads (default 2)")->check(CLI::Range(1, 256));
  cmd->callback([args, exitCode] { *exitCode = runSynth(*args); });
}

NCCLFR_COMMAND(60, addSynth);

}  // namespace
}  // namespace ncclfr::cli
