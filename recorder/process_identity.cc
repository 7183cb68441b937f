#include "process_identity.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "fs_util.h"

namespace ncclfr::recorder {
namespace {

bool toInt(const char* s, int32_t* out) {
  if (s == nullptr || *s == '\0') return false;
  std::string_view v(s);
  auto r = std::from_chars(v.data(), v.data() + v.size(), *out);
  return r.ec == std::errc() && r.ptr == v.data() + v.size() && *out >= 0;
}

std::string firstLine(std::string s) {
  auto nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  return s;
}

}  // namespace

int64_t monoNowNs() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int64_t wallNowNs() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::string sanitizeFileComponent(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    out.push_back(ok ? c : '_');
  }
  if (out.empty() || out == "." || out == "..") out = "job";
  if (out.size() > 120) out.resize(120);
  return out;
}

bool readStartTicks(pid_t pid, uint64_t* ticks) {
  std::string text, error;
  if (!fs::readSmallFile("/proc/" + std::to_string(pid) + "/stat", 4096, &text, &error)) return false;
  // The command name (field 2) may hold spaces and parentheses: fields restart after the last ')'.
  auto close = text.rfind(')');
  if (close == std::string::npos) return false;
  std::string_view rest = std::string_view(text).substr(close + 1);
  // After ')' come fields 3, 4, ...; starttime is field 22, the 20th from here.
  int field = 2;
  size_t pos = 0;
  while (field < 22) {
    while (pos < rest.size() && rest[pos] == ' ') ++pos;
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) return false;
    ++field;
    if (field == 22) {
      std::string_view v = rest.substr(pos, end - pos);
      auto r = std::from_chars(v.data(), v.data() + v.size(), *ticks);
      return r.ec == std::errc();
    }
    pos = end;
  }
  return false;
}

std::string readBootId() {
  std::string text, error;
  if (!fs::readSmallFile("/proc/sys/kernel/random/boot_id", 128, &text, &error)) return "";
  return firstLine(text);
}

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

ProcessIdentity detectIdentity(const EnvLookup& env) {
  ProcessIdentity id;
  id.host = hostName();
  id.pid = static_cast<uint32_t>(getpid());
  readStartTicks(getpid(), &id.startTicks);
  id.bootId = readBootId();
  // Start wall time = now - (uptime - start ticks / HZ): both clocks are read here, once.
  long hz = sysconf(_SC_CLK_TCK);
  if (hz > 0 && id.startTicks > 0) {
    struct timespec boot {};
    clock_gettime(CLOCK_BOOTTIME, &boot);
    int64_t sinceBootNs = int64_t{boot.tv_sec} * 1'000'000'000 + boot.tv_nsec;
    int64_t startSinceBootNs = static_cast<int64_t>(id.startTicks) * (1'000'000'000 / hz);
    id.startWallNs = wallNowNs() - (sinceBootNs - startSinceBootNs);
  }

  for (const char* name : {"NCCLFR_RANK", "RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    if (toInt(env(name), &id.globalRank)) {
      id.rankSource = name;
      break;
    }
    id.globalRank = -1;
  }
  for (const char* name : {"NCCLFR_WORLD_SIZE", "WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"}) {
    if (toInt(env(name), &id.worldSize)) break;
    id.worldSize = -1;
  }
  for (const char* name : {"LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) {
    if (toInt(env(name), &id.localRank)) break;
    id.localRank = -1;
  }

  auto nonEmpty = [&](const char* name) -> const char* {
    const char* v = env(name);
    return (v != nullptr && *v != '\0') ? v : nullptr;
  };
  if (const char* v = nonEmpty("NCCLFR_JOB")) {
    id.jobId = v;
    id.jobIdSource = "NCCLFR_JOB";
  } else if (const char* t = nonEmpty("TORCHELASTIC_RUN_ID"); t != nullptr && std::strcmp(t, "none") != 0) {
    // torchrun's default --rdzv-id is "none", which every job shares: not an id.
    id.jobId = t;
    id.jobIdSource = "TORCHELASTIC_RUN_ID";
  } else if (const char* s = nonEmpty("SLURM_JOB_ID")) {
    id.jobId = s;
    id.jobIdSource = "SLURM_JOB_ID";
    if (const char* step = nonEmpty("SLURM_STEP_ID")) {
      // Steps of one allocation are separate jobs for NCCL: they must not trigger each other.
      id.jobId += std::string(".") + step;
      id.jobIdSource += "+SLURM_STEP_ID";
    }
  } else {
    for (const char* name : {"PBS_JOBID", "LSB_JOBID", "FLUX_JOB_ID", "PMIX_NAMESPACE", "OMPI_MCA_orte_ess_jobid"}) {
      if (const char* found = nonEmpty(name)) {
        id.jobId = found;
        id.jobIdSource = name;
        break;
      }
    }
  }
  if (id.jobId.empty()) {
    id.jobId = id.host + "-" + std::to_string(getppid());
    id.jobIdSource = "host+ppid";
  }

  std::string cmd, error;
  if (fs::readSmallFile("/proc/self/cmdline", 4095, &cmd, &error)) {
    for (char& c : cmd) {
      if (c == '\0') c = ' ';
    }
    while (!cmd.empty() && cmd.back() == ' ') cmd.pop_back();
    id.cmdline = cmd;
  }
  return id;
}

Liveness processLiveness(uint32_t pid, uint64_t startTicks, std::string_view bootId, std::string_view host) {
  if (!host.empty() && host != hostName()) return Liveness::kUnknown;
  std::string boot = readBootId();
  if (!bootId.empty() && !boot.empty() && boot != bootId) return Liveness::kDead;
  if (pid == 0) return Liveness::kUnknown;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return Liveness::kDead;
  uint64_t ticks = 0;
  if (!readStartTicks(static_cast<pid_t>(pid), &ticks)) return Liveness::kDead;
  if (startTicks != 0 && ticks != startTicks) return Liveness::kDead;
  // A zombie has not run its last instruction, but it will record nothing more: for salvage it is dead.
  std::string status, error;
  if (fs::readSmallFile("/proc/" + std::to_string(pid) + "/stat", 4096, &status, &error)) {
    auto close = status.rfind(')');
    if (close != std::string::npos && close + 2 < status.size() && (status[close + 2] == 'Z' || status[close + 2] == 'X')) {
      return Liveness::kDead;
    }
  }
  return Liveness::kAlive;
}

}  // namespace ncclfr::recorder
