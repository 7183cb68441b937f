#include "signals.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "log.h"
#include "recorder.h"
#include "watchdog.h"

namespace ncclfr::recorder {
namespace {

constexpr int kCrashSignals[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};

// Previous dispositions, indexed by signal number. Written once before our handler is installed.
struct sigaction gPrevious[NSIG];
std::atomic<Recorder*> gSignalRecorder{nullptr};
std::atomic<pid_t> gSignalOwner{0};
std::atomic<int> gDumpSignal{0};
std::atomic<int> gTermBusy{0};
// The ring file's path, copied at installation so the handler can unlink it without allocating.
char gRingPath[4096];

bool isDefaultOrIgnore(const struct sigaction& sa) {
  return !(sa.sa_flags & SA_SIGINFO) && (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN);
}

// Runs what was installed before us: a handler function is called; the default action is taken by
// restoring it and re-raising (the signal is blocked while we run, so it is delivered when we
// return); an ignored signal stays ignored.
void chain(int sig, siginfo_t* info, void* context, bool allowDefault) {
  const struct sigaction& prev = gPrevious[sig];
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction != nullptr) prev.sa_sigaction(sig, info, context);
    return;
  }
  if (prev.sa_handler == SIG_IGN) return;
  if (prev.sa_handler == SIG_DFL) {
    if (!allowDefault) return;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, nullptr);
    raise(sig);
    return;
  }
  prev.sa_handler(sig);
}

bool ownsProcess() { return getpid() == gSignalOwner.load(std::memory_order_relaxed); }

void onCrash(int sig, siginfo_t* info, void* context) {
  int savedErrno = errno;
  Recorder* r = gSignalRecorder.load(std::memory_order_relaxed);
  // A forked child shares the parent's ring mapping: it must not mark the parent's file.
  if (r != nullptr && ownsProcess() && r->ring.header != nullptr) {
    struct timespec ts {};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    st(r->ring.header->crashMonoNs, int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec);
    st(r->ring.header->crashSignal, static_cast<int32_t>(sig));
    st(r->ring.header->state, static_cast<uint32_t>(shm::ProcessState::kCrashed), std::memory_order_release);
  }
  errno = savedErrno;
  chain(sig, info, context, true);
}

void onDumpSignal(int sig, siginfo_t* info, void* context) {
  int savedErrno = errno;
  Recorder* r = gSignalRecorder.load(std::memory_order_relaxed);
  bool isTerm = sig == SIGTERM;
  if (r != nullptr && r->watchdog != nullptr && ownsProcess()) {
    // One dump at a time; a second SIGTERM while the first waits goes straight to the chain.
    if (gTermBusy.exchange(1) == 0) {
      bool dumped = r->watchdog->signalDumpAndWait(sig, kSignalDumpWaitMs) && !r->watchdog->incidentDumpFailed();
      // The default action ends the process without exit handlers: the dump holds what the ring
      // does, so free the shared memory here (unlink is async-signal-safe).
      if (isTerm && dumped && isDefaultOrIgnore(gPrevious[sig]) && gPrevious[sig].sa_handler == SIG_DFL &&
          gRingPath[0] != '\0') {
        unlink(gRingPath);
      }
      gTermBusy.store(0);
    }
  }
  errno = savedErrno;
  // The dump signal is ours to use: only a handler someone else installed runs after us.
  chain(sig, info, context, isTerm);
}

void install(int sig, void (*handler)(int, siginfo_t*, void*)) {
  struct sigaction sa {};
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  struct sigaction prev {};
  if (sigaction(sig, nullptr, &prev) != 0) return;
  // Signals the application ignores on purpose (nohup'ed SIGTERM, say) stay ignored.
  if (!(prev.sa_flags & SA_SIGINFO) && prev.sa_handler == SIG_IGN && sig != gDumpSignal.load()) return;
  gPrevious[sig] = prev;
  sigaction(sig, &sa, nullptr);
}

}  // namespace

DumpSignalsBlocked::DumpSignalsBlocked() {
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  if (int d = gDumpSignal.load(); d > 0) sigaddset(&block, d);
  pthread_sigmask(SIG_BLOCK, &block, &old_);
}

DumpSignalsBlocked::~DumpSignalsBlocked() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

void installSignalHandlers(Recorder* recorder) {
  gSignalRecorder.store(recorder);
  gSignalOwner.store(getpid());
  gDumpSignal.store(recorder->config.dumpSignal);
  if (!recorder->ring.anonymous && recorder->ring.path.size() < sizeof gRingPath) {
    std::memcpy(gRingPath, recorder->ring.path.c_str(), recorder->ring.path.size() + 1);
  }
  for (int sig : kCrashSignals) install(sig, onCrash);
  install(SIGTERM, onDumpSignal);
  if (recorder->config.dumpSignal > 0) install(recorder->config.dumpSignal, onDumpSignal);
}

}  // namespace ncclfr::recorder
