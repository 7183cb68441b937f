// One-line messages on stderr, "ncclfr: ..." (NCCLFR_LOG: none, warn, info). Each line is one
// write(2), so lines of several ranks sharing a terminal do not interleave mid-line.
//
// Only the recorder's own threads and the one-time set-up (first communicator) write; conditions
// met on the hot path (a full table, an empty event pool) only raise a flag in `HotWarnings`, which
// the watchdog turns into one line.
#pragma once

#include <atomic>
#include <cstdint>

#include "config.h"

namespace ncclfr::recorder {

void setLogLevel(LogLevel level);
LogLevel logLevel();
void logWarn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void logInfo(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Hot-path conditions, each reported once by the watchdog.
enum HotWarning : uint32_t {
  kWarnCommTableFull = 1u << 0,
  kWarnP2PTableFull = 1u << 1,
  kWarnEventPoolEmpty = 1u << 2,
  kWarnTooManyContexts = 1u << 3,
  kWarnGroupStreams = 1u << 4,
  kWarnStackTableFull = 1u << 5,
  kWarnMissingFunction = 1u << 6,
  kWarnPendingChildren = 1u << 7,
};
void raiseHotWarning(HotWarning w);
// Every flag ever raised (the watchdog prints the ones it has not printed yet).
uint32_t hotWarnings();

}  // namespace ncclfr::recorder
