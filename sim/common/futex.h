// Futex waits on 32-bit words, shared between processes when the word lives in a MAP_SHARED mapping.
// Everything in sim/ that blocks (a stream waiting for an event, a rank waiting for its peers) sleeps
// here or on a condition variable, never in a polling loop: a job of 32 ranks must fit on two cores.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <ctime>

namespace ncclfr::sim {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) && std::atomic<uint32_t>::is_always_lock_free,
              "futex words must be plain 32-bit words");

// Sleeps while *word == expected, at most `timeoutMs` (-1: no limit). Spurious returns are allowed:
// callers always re-check their condition.
inline void futexWait(std::atomic<uint32_t>* word, uint32_t expected, int timeoutMs = -1) {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeoutMs >= 0) {
    ts.tv_sec = timeoutMs / 1000;
    ts.tv_nsec = static_cast<long>(timeoutMs % 1000) * 1000000L;
    tsp = &ts;
  }
  // Not FUTEX_PRIVATE_FLAG: the word may be in shared memory mapped by other processes.
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, tsp, nullptr, 0);
}

inline void futexWakeAll(std::atomic<uint32_t>* word) {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

// A doorbell: a counter that is bumped whenever state a sleeper may wait for changes. A sleeper reads
// the counter, checks its condition, and sleeps only if the counter is unchanged, so a ring between
// the check and the sleep is never lost. `sleepers` lets a ringer skip the syscall when nobody sleeps.
struct Doorbell {
  std::atomic<uint32_t> count{0};
  std::atomic<uint32_t> sleepers{0};

  uint32_t read() const { return count.load(std::memory_order_seq_cst); }
  void ring() {
    count.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers.load(std::memory_order_seq_cst) != 0) futexWakeAll(&count);
  }
  void sleep(uint32_t seen, int timeoutMs = -1) {
    sleepers.fetch_add(1, std::memory_order_seq_cst);
    futexWait(&count, seen, timeoutMs);
    sleepers.fetch_sub(1, std::memory_order_seq_cst);
  }
};

inline int64_t monotonicNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

}  // namespace ncclfr::sim
