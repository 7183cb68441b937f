// StallWatchdog: the recorder's one background thread, started with the first communicator. It
// follows GPU completion of every recorded launch (CUDA events, converted to the host's monotonic
// clock), detects incidents (a call pending longer than NCCLFR_TIMEOUT, an NCCL error, an abort, a
// signal, a peer's or a person's trigger file, exit) and writes the dumps. All I/O and all blocking
// of the recorder happens here, never on the application's threads; every exception is caught.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

namespace ncclfr::recorder {

class Recorder;
class WatchdogLoop;

enum class DumpCause { kStall, kNcclError, kAbort, kSignal, kPeer, kOnDemand, kExit };

class Watchdog {
 public:
  // Starts the thread; null with *error when it cannot.
  static Watchdog* start(Recorder* recorder, std::string* error);

  // Application threads (never the hot path): asks for an incident dump and waits for it at most
  // `timeoutNs`. kAbort dumps only when a call is pending (an abort with nothing pending is a
  // clean teardown: PyTorch's destroy_process_group used ncclCommAbort). Returns whether a dump
  // was written.
  bool dumpAndWait(DumpCause cause, const std::string& detail, int64_t timeoutNs);
  // The last communicator was destroyed (NCCLFR_DUMP_ON_EXIT): dump without waiting.
  void requestExitDump();
  // atexit: dumps if NCCLFR_DUMP_ON_EXIT asked for it, then stops the thread (bounded waits).
  void shutdownAtExit();
  void wake();
  bool incidentDumpFailed() const { return dumpFailures_.load() != 0; }
  bool anyIncident() const { return incidents_.load() != 0; }

  // For the signal handlers (async-signal-safe): ask for a dump for signal `sig` and wait at most
  // `timeoutMs` for it. False when the dump could not be waited for.
  bool signalDumpAndWait(int sig, int timeoutMs);
  pid_t threadId() const { return tid_.load(); }
  // The thread has ended (an internal error, or exit): nothing will set event pools up any more.
  bool stopped() const { return stopped_.load(); }

 private:
  friend class WatchdogLoop;
  explicit Watchdog(Recorder* r) : recorder_(r) {}
  static void* threadMain(void* self);

  Recorder* recorder_;
  pthread_t thread_{};
  std::atomic<pid_t> tid_{0};
  int wakeFd_ = -1;         // eventfd: anything for the watchdog to do
  int signalDoneFd_ = -1;   // eventfd: the signal dump is written (or given up)
  std::atomic<int> signalPending_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> incidents_{0};
  std::atomic<uint64_t> dumpFailures_{0};

  // Requests from application threads.
  struct Request {
    uint64_t id = 0;
    DumpCause cause = DumpCause::kExit;
    std::string detail;
  };
  std::mutex mutex_;
  std::condition_variable cv_;
  uint64_t nextRequest_ = 1;
  uint64_t doneRequest_ = 0;    // requests up to this id are finished
  bool lastRequestDumped_ = false;
  static constexpr int kMaxRequests = 16;
  Request requests_[kMaxRequests];
  int requestCount_ = 0;
  bool exitDumpRequested_ = false;
  bool exitDumped_ = false;
};

}  // namespace ncclfr::recorder
