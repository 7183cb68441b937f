// Signal handling, installed when the watchdog starts (never at load), always chaining to whatever
// was installed before:
//   * SIGTERM (torchelastic, Slurm and most launchers send it before SIGKILL): the handler wakes
//     the watchdog, waits a bounded time for its dump, then runs the previous disposition;
//   * NCCLFR_DUMP_SIGNAL (none by default): the same, chaining only to a previous handler function
//     (never to a default action that would end the process);
//   * SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL: async-signal-safe marking of the ring file's
//     header only (the ring survives for `ncclfr salvage`), then the previous disposition.
// The handlers allocate nothing, take no lock and call only async-signal-safe functions.
#pragma once

#include <signal.h>

namespace ncclfr::recorder {

class Recorder;

void installSignalHandlers(Recorder* recorder);

// Blocks SIGTERM and NCCLFR_DUMP_SIGNAL on this thread while it holds a lock the watchdog needs:
// their handler waits for the watchdog, which would wait for that lock (10 s, then no dump). A
// process-directed signal goes to another thread meanwhile; one sent to this thread, afterwards.
class DumpSignalsBlocked {
 public:
  DumpSignalsBlocked();
  ~DumpSignalsBlocked();
  DumpSignalsBlocked(const DumpSignalsBlocked&) = delete;
  DumpSignalsBlocked& operator=(const DumpSignalsBlocked&) = delete;

 private:
  sigset_t old_;
};

// How long SIGTERM waits for its dump before the previous disposition runs.
inline constexpr int kSignalDumpWaitMs = 10000;

}  // namespace ncclfr::recorder
