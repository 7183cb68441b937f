// CLOCK_MONOTONIC for the hot path, cheaply. clock_gettime costs 20-50 ns (more in VMs); the time
// stamp counter costs a third of that. Where the TSC is invariant (constant_tsc and nonstop_tsc),
// calls read it and convert with a scale the watchdog keeps calibrated against CLOCK_MONOTONIC
// (every second, so NTP's slewing never puts host times more than microseconds off the GPU times,
// which the watchdog converts to CLOCK_MONOTONIC directly). Elsewhere: clock_gettime.
#pragma once

#include <atomic>
#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "process_identity.h"

namespace ncclfr::recorder {

class HostClock {
 public:
  // Measures the TSC against CLOCK_MONOTONIC for about a millisecond; false (clock_gettime from
  // then on) where the TSC cannot be trusted.
  bool start();
  // The watchdog, about once a second: a fresh base and a scale from the last second.
  void recalibrate();

  uint64_t ticks() const {
#if defined(__x86_64__)
    if (useTsc_) return __rdtsc();
#endif
    return static_cast<uint64_t>(monoNowNs());
  }
  int64_t toMonoNs(uint64_t ticks) const {
    if (!useTsc_) return static_cast<int64_t>(ticks);
    Params p = load();
    int64_t delta = static_cast<int64_t>(ticks - p.baseTicks);
    return p.baseMonoNs + static_cast<int64_t>((static_cast<__int128>(delta) * p.nsPerTickQ32) >> 32);
  }
  int64_t ticksToNs(uint64_t from, uint64_t to) const {
    if (!useTsc_) return static_cast<int64_t>(to - from);
    Params p = load();
    return static_cast<int64_t>((static_cast<unsigned __int128>(to - from) * p.nsPerTickQ32) >> 32);
  }
  bool usesTsc() const { return useTsc_; }

 private:
  struct Params {
    int64_t baseMonoNs;
    uint64_t baseTicks;
    uint64_t nsPerTickQ32;  // ns per tick, 32.32 fixed point
  };
  // A seqlock: the writer (the watchdog) makes the version odd while it writes. Acquire loads of the
  // fields keep the second version load after them (plain loads on x86; no fence, which TSan lacks).
  Params load() const {
    for (;;) {
      uint64_t v1 = version_.load(std::memory_order_acquire);
      Params p{baseMonoNs_.load(std::memory_order_acquire), baseTicks_.load(std::memory_order_acquire),
               nsPerTickQ32_.load(std::memory_order_acquire)};
      if ((v1 & 1) == 0 && version_.load(std::memory_order_relaxed) == v1) return p;
    }
  }
  void store(const Params& p);
  // A (ticks, CLOCK_MONOTONIC) pair read as close together as the machine allows.
  void sample(uint64_t* ticks, int64_t* monoNs) const;

  bool useTsc_ = false;
  std::atomic<uint64_t> version_{0};
  std::atomic<int64_t> baseMonoNs_{0};
  std::atomic<uint64_t> baseTicks_{0};
  std::atomic<uint64_t> nsPerTickQ32_{uint64_t{1} << 32};
  // Watchdog only: the pair the current scale will be measured from.
  uint64_t anchorTicks_ = 0;
  int64_t anchorMonoNs_ = 0;
};

}  // namespace ncclfr::recorder
