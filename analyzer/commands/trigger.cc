// `ncclfr trigger DUMP_DIR/<job>`: asks every rank of a live job to dump, through the same trigger
// file a rank writes when it detects an incident (include/ncclfr/trigger.h). No signals, works
// across nodes as long as they share the dump folder.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "commands/command.h"
#include "ncclfr/trigger.h"
#include "process_identity.h"

namespace ncclfr::cli {
namespace {

struct TriggerArgs {
  std::string jobDir;
  std::string detail;
};

int runTrigger(const TriggerArgs& a) {
  std::string dir = a.jobDir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  trigger::Request q;
  q.wallNs = recorder::wallNowNs();
  q.incidentId = trigger::makeIncidentId(q.wallNs, "manual");
  q.reason = "onDemand";
  q.triggerRank = -1;
  q.host = recorder::hostName();
  q.pid = static_cast<uint32_t>(getpid());
  q.propagate = true;
  q.detail = a.detail;
  uint64_t generation = 0;
  trigger::Request winner;
  std::string error;
  switch (trigger::publish(dir, q, trigger::latestGeneration(dir), &generation, &winner, &error)) {
    case trigger::PublishResult::kCreated:
      std::printf("asked every rank of %s to dump: incident %s (%s/%s); ranks look every NCCLFR_TRIGGER_POLL\n",
                  dir.c_str(), q.incidentId.c_str(), dir.c_str(), trigger::fileName(generation).c_str());
      return kExitOk;
    case trigger::PublishResult::kJoined:
      std::printf("incident %s (%s by rank %d) was started at this very moment; its dumps serve this request too\n",
                  winner.incidentId.c_str(), winner.reason.c_str(), winner.triggerRank);
      return kExitOk;
    case trigger::PublishResult::kFailed:
      break;
  }
  std::fprintf(stderr, "ncclfr: %s\n", error.c_str());
  return kExitBadInput;
}

void addTrigger(CLI::App& app, int* exitCode) {
  auto args = std::make_shared<TriggerArgs>();
  auto* cmd = app.add_subcommand("trigger", "Ask every rank of a running job to write a dump now");
  cmd->add_option("job_dir", args->jobDir, "The job's dump folder: NCCLFR_DUMP_DIR/<job>")->required();
  cmd->add_option("--detail", args->detail, "Why, for the dumps' detail line");
  cmd->callback([args, exitCode] { *exitCode = runTrigger(*args); });
}

NCCLFR_COMMAND(30, addTrigger);

}  // namespace
}  // namespace ncclfr::cli
