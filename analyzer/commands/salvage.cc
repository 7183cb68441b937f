// `ncclfr salvage [--shm-dir DIR] -o OUT`: turns the rings that recording processes left in shared
// memory (SIGKILL, OOM kill, crash: no chance to dump) into dumps, and says which processes died.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <capnp/message.h>

#include "commands/command.h"
#include "fs_util.h"
#include "ncclfr/dump_file.h"
#include "ncclfr/shm_layout.h"
#include "ncclfr/trigger.h"
#include "process_identity.h"
#include "ring_to_dump.h"

namespace ncclfr::cli {
namespace {

struct SalvageArgs {
  std::string shmDir;
  std::string out;
  bool keep = false;
};

std::string fixed(const char* field, size_t size) { return std::string(field, strnlen(field, size)); }

std::string signalText(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

int runSalvage(const SalvageArgs& a) {
  using namespace ncclfr::recorder;
  std::string shmDir = a.shmDir;
  if (shmDir.empty()) {
    const char* env = std::getenv("NCCLFR_SHM_DIR");
    shmDir = (env != nullptr && *env != '\0') ? env : "/dev/shm";
  }
  std::vector<std::string> rings;
  if (DIR* d = ::opendir(shmDir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      std::string prefix = shm::kFilePrefix, suffix = shm::kFileSuffix;
      if (name.size() > prefix.size() + suffix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        rings.push_back(shmDir + "/" + name);
      }
    }
    ::closedir(d);
  } else {
    std::fprintf(stderr, "ncclfr: cannot read %s: %s\n", shmDir.c_str(), std::strerror(errno));
    return kExitBadInput;
  }
  std::sort(rings.begin(), rings.end());
  if (rings.empty()) {
    std::printf("no ncclfr rings in %s: nothing to salvage\n", shmDir.c_str());
    return kExitOk;
  }
  std::string host = hostName();
  int64_t now = wallNowNs();
  // One incident per job and salvage run: the dumps of one job's dead ranks belong together.
  std::map<std::string, std::string> incidentOfJob;
  int failures = 0, dead = 0, alive = 0;
  for (const std::string& path : rings) {
    RingRegion ring;
    std::string error;
    if (!openRingFile(path, &ring, &error)) {
      std::fprintf(stderr, "ncclfr: skipping %s\n", error.c_str());
      ++failures;
      continue;
    }
    const shm::ProcessHeader* h = ring.header;
    std::string job = fixed(h->jobId, sizeof h->jobId);
    std::string procHost = fixed(h->host, sizeof h->host);
    Liveness live = processLiveness(h->pid, h->startTicks, fixed(h->bootId, sizeof h->bootId), procHost);
    int32_t crash = ld(h->crashSignal);
    std::string fate;
    if (live == Liveness::kDead) {
      fate = crash != 0 ? "dead (crashed with " + signalText(crash) + ")"
                        : "dead (killed without a chance to dump: SIGKILL, OOM kill or power loss)";
      ++dead;
    } else if (live == Liveness::kAlive) {
      fate = "alive (a snapshot of a running process)";
      ++alive;
    } else {
      fate = "unknown (recorded on host " + procHost + ")";
    }
    auto [it, fresh] = incidentOfJob.emplace(job, "");
    if (fresh) it->second = trigger::makeIncidentId(now, "salvage");
    DumpRequest q;
    q.reason = schema::DumpReason::SALVAGED;
    q.salvage = true;
    q.processDied = live == Liveness::kDead;
    q.incidentId = it->second;
    q.incidentWallNs = now;
    q.writerHost = host;
    q.writerPid = static_cast<uint32_t>(getpid());
    std::string lastIncident = fixed(h->lastIncidentId, sizeof h->lastIncidentId);
    q.detail = "salvaged from " + path + ": process " + fate +
               (lastIncident.empty() ? std::string() : "; its last incident was " + lastIncident);
    capnp::MallocMessageBuilder message;
    DumpStats stats;
    std::string outDir = a.out + "/" + sanitizeFileComponent(job);
    std::string rank = h->globalRank >= 0 ? std::to_string(h->globalRank) : "x";
    std::string file = outDir + "/" + q.incidentId + "_r" + rank + "_" + sanitizeFileComponent(procHost) + "_p" +
                       std::to_string(h->pid) + std::string(kDumpSuffix);
    bool ok = ringToDump(ring, q, message, &stats, &error) && fs::makeDirs(outDir, 0700, &error) &&
              writeDumpFile(file, message, &error);
    uint32_t pid = h->pid;
    int32_t globalRank = h->globalRank;
    unmapRing(&ring);
    if (!ok) {
      std::fprintf(stderr, "ncclfr: %s: %s\n", path.c_str(), error.c_str());
      ++failures;
      continue;
    }
    std::printf("rank %s pid %u (job %s): %s -> %s (%llu calls, %llu evicted, %llu torn)\n",
                globalRank >= 0 ? std::to_string(globalRank).c_str() : "?", pid, job.c_str(), fate.c_str(),
                file.c_str(), static_cast<unsigned long long>(stats.writtenEntries),
                static_cast<unsigned long long>(stats.evictedEntries), static_cast<unsigned long long>(stats.tornEntries));
    // The dump now holds everything the ring did: free the shared memory of the dead.
    if (live == Liveness::kDead && !a.keep) ::unlink(path.c_str());
  }
  std::printf("%d dead, %d alive, %d unreadable\n", dead, alive, failures);
  std::fflush(stdout);
  return failures == 0 ? kExitOk : kExitBadInput;
}

void addSalvage(CLI::App& app, int* exitCode) {
  auto args = std::make_shared<SalvageArgs>();
  auto* cmd = app.add_subcommand(
      "salvage", "Turn rings left in shared memory by processes that could not dump (SIGKILL, OOM, crash) into dumps");
  cmd->add_option("--shm-dir", args->shmDir, "Where the rings are (default: $NCCLFR_SHM_DIR or /dev/shm)");
  cmd->add_option("-o,--out", args->out, "Dump folder: dumps go to OUT/<job>/ (use the job's NCCLFR_DUMP_DIR)")
      ->required();
  cmd->add_flag("--keep", args->keep, "Keep the rings of dead processes (default: remove them once dumped)");
  cmd->callback([args, exitCode] {
    try {
      *exitCode = runSalvage(*args);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ncclfr: internal error: %s\n", e.what());
      *exitCode = kExitInternal;
    }
  });
}

NCCLFR_COMMAND(20, addSalvage);

}  // namespace
}  // namespace ncclfr::cli
