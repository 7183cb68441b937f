// NCCLFR_* settings. Parsed once, on the first NCCL call that needs the recorder (never at load:
// LD_PRELOAD reaches every child of a job, compilers and shells included, and they must not notice).
// A bad value gives one warning line and the default; warnings are kept here and printed by the
// watchdog, off the application's threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ncclfr/shm_layout.h"

namespace ncclfr::recorder {

// getenv, or a map in tests.
using EnvLookup = std::function<const char*(const char*)>;

enum class LogLevel { kNone = 0, kWarn = 1, kInfo = 2 };

struct RecorderConfig {
  bool enable = true;                        // NCCLFR_ENABLE
  std::string dumpDir;                       // NCCLFR_DUMP_DIR, absolute
  std::string shmDir = "/dev/shm";           // NCCLFR_SHM_DIR
  uint32_t bufferEntries = 16384;            // NCCLFR_BUFFER, rounded up to a power of two
  int64_t timeoutNs = 60'000'000'000;        // NCCLFR_TIMEOUT
  int64_t triggerPollNs = 5'000'000'000;     // NCCLFR_TRIGGER_POLL
  shm::TimingMode timing = shm::TimingMode::kFull;  // NCCLFR_TIMING
  bool stacks = false;                       // NCCLFR_STACKS
  bool dumpOnExit = false;                   // NCCLFR_DUMP_ON_EXIT
  int dumpSignal = 0;                        // NCCLFR_DUMP_SIGNAL, 0 = none
  LogLevel log = LogLevel::kWarn;            // NCCLFR_LOG
  std::vector<std::string> warnings;         // one line each, without the "ncclfr: " prefix
};

inline constexpr uint32_t kMinBufferEntries = 64;
inline constexpr uint32_t kMaxBufferEntries = 1u << 24;

RecorderConfig parseConfig(const EnvLookup& env, std::string_view cwd);

// "500ms", "10s", "5m", "1h", "250us"; a bare number is seconds (fractions allowed). >= 0.
bool parseDuration(std::string_view text, int64_t* ns);
// "SIGUSR2", "USR2", "12", or "none"/"0" (= 0).
bool parseSignal(std::string_view text, int* signal);
// "1/0", "true/false", "yes/no", "on/off".
bool parseBool(std::string_view text, bool* value);
// A duration for people: "60s", "500ms", "5m".
std::string formatDuration(int64_t ns);

}  // namespace ncclfr::recorder
