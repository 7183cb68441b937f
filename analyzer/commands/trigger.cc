// `ncclfr trigger DUMP_DIR/<job>`: asks every rank of a live job to dump, through the same trigger
// file a rank writes when it detects an incident (include/ncclfr/trigger.h). No signals, works
// across nodes as long as they share the dump folder.
//
// A missing folder is not refused: the recorder polls DUMP_DIR/<job>/ncclfr-trigger.<n> from its
// start but creates the folder only at its first dump, so a live job that never dumped has none.
// What can be told from here is said on stderr: a folder that did not exist or holds nothing of
// ncclfr's, with no live process of that job on this host, is probably a mistyped path.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "commands/command.h"
#include "ncclfr/dump_file.h"
#include "ncclfr/shm_layout.h"
#include "ncclfr/trigger.h"
#include "process_identity.h"
#include "shm_ring.h"

namespace ncclfr::cli {
namespace {

struct TriggerArgs {
  std::string jobDir;
  std::string detail;
};

bool startsWith(std::string_view s, std::string_view p) { return s.size() >= p.size() && s.substr(0, p.size()) == p; }
bool endsWith(std::string_view s, std::string_view x) {
  return s.size() >= x.size() && s.substr(s.size() - x.size()) == x;
}

// Whether `dir` holds a dump or a trigger file: a job has recorded into it at some time.
bool holdsNcclfrFiles(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  bool found = false;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (startsWith(name, trigger::kFilePrefix) || endsWith(name, kDumpSuffix)) {
      found = true;
      break;
    }
  }
  ::closedir(d);
  return found;
}

// Live processes on this host whose ring (in $NCCLFR_SHM_DIR or /dev/shm) says they record the job
// whose folder is named `jobFolder`. Other hosts' ranks cannot be seen from here.
int liveLocalProcesses(const std::string& jobFolder) {
  const char* env = std::getenv("NCCLFR_SHM_DIR");
  std::string shmDir = (env != nullptr && *env != '\0') ? env : "/dev/shm";
  DIR* d = ::opendir(shmDir.c_str());
  if (d == nullptr) return 0;
  int live = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (!startsWith(name, shm::kFilePrefix) || !endsWith(name, shm::kFileSuffix)) continue;
    recorder::RingRegion ring;
    std::string error;
    if (!recorder::openRingFile(shmDir + "/" + std::string(name), &ring, &error)) continue;
    const shm::ProcessHeader* h = ring.header;
    std::string job(h->jobId, strnlen(h->jobId, sizeof h->jobId));
    std::string host(h->host, strnlen(h->host, sizeof h->host));
    std::string boot(h->bootId, strnlen(h->bootId, sizeof h->bootId));
    if (recorder::sanitizeFileComponent(job) == jobFolder &&
        recorder::processLiveness(h->pid, h->startTicks, boot, host) == recorder::Liveness::kAlive) {
      ++live;
    }
    recorder::unmapRing(&ring);
  }
  ::closedir(d);
  return live;
}

int runTrigger(const TriggerArgs& a) {
  std::string dir = a.jobDir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  struct stat st {};
  bool existed = ::stat(dir.c_str(), &st) == 0;
  if (existed && !S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "ncclfr: %s is not a folder (expected the job's dump folder NCCLFR_DUMP_DIR/<job>)\n",
                 dir.c_str());
    return kExitBadInput;
  }
  std::string jobFolder = dir.substr(dir.find_last_of('/') == std::string::npos ? 0 : dir.find_last_of('/') + 1);
  bool history = existed && holdsNcclfrFiles(dir);
  int live = history ? 0 : liveLocalProcesses(jobFolder);
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
      if (!history && live == 0) {
        std::fprintf(stderr,
                     "ncclfr: warning: %s %s, and no process on this host records job '%s': if the path is "
                     "wrong, no rank will see this request\n",
                     dir.c_str(), existed ? "held no dumps or trigger files" : "did not exist (created it)",
                     jobFolder.c_str());
      }
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
