// Who a process is, in the terms a dump uses: host, pid, start time, global rank and job id from the
// launcher's environment, and whether a process that recorded a ring is still alive (salvage).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "config.h"

namespace ncclfr::recorder {

struct ProcessIdentity {
  std::string host;
  uint32_t pid = 0;
  int64_t startWallNs = 0;
  uint64_t startTicks = 0;
  std::string bootId;
  int32_t globalRank = -1;
  int32_t worldSize = -1;
  int32_t localRank = -1;
  std::string rankSource;   // the variable the rank came from, "" = none
  std::string jobId;
  std::string jobIdSource;  // the variable the job id came from, or "host+ppid" for the fallback
  std::string cmdline;      // NULs turned into spaces, at most 4095 bytes
};

// Rank: NCCLFR_RANK, RANK, OMPI_COMM_WORLD_RANK, PMI_RANK, PMIX_RANK, SLURM_PROCID.
// Job: NCCLFR_JOB, TORCHELASTIC_RUN_ID (unless "none"), SLURM_JOB_ID(.SLURM_STEP_ID), PBS_JOBID,
// LSB_JOBID, FLUX_JOB_ID, PMIX_NAMESPACE, OMPI_MCA_orte_ess_jobid; else "<host>-<ppid>", which
// groups the ranks one launcher started on one host.
ProcessIdentity detectIdentity(const EnvLookup& env);

// A job id made safe as one file-name component: [A-Za-z0-9._-], others become '_'.
std::string sanitizeFileComponent(std::string_view text);

// /proc/<pid>/stat field 22 (start time in clock ticks since boot); false if there is no such process.
bool readStartTicks(pid_t pid, uint64_t* ticks);
std::string readBootId();
std::string hostName();

enum class Liveness { kAlive, kDead, kUnknown };
// Whether the process that wrote a ring (pid, start ticks, boot id, host) still runs: a pid that now
// belongs to another process, a ring from before a reboot, or a missing pid is dead; a ring from
// another host is unknown.
Liveness processLiveness(uint32_t pid, uint64_t startTicks, std::string_view bootId, std::string_view host);

int64_t monoNowNs();
int64_t wallNowNs();

}  // namespace ncclfr::recorder
