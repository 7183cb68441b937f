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

namespace ncclfr::recorder {

class Recorder;

void installSignalHandlers(Recorder* recorder);

// How long SIGTERM waits for its dump before the previous disposition runs.
inline constexpr int kSignalDumpWaitMs = 10000;

}  // namespace ncclfr::recorder
