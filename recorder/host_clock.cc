#include "host_clock.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "fs_util.h"

namespace ncclfr::recorder {
namespace {

bool invariantTsc() {
#if defined(__x86_64__)
  std::string cpuinfo, error;
  if (!fs::readSmallFile("/proc/cpuinfo", 1 << 16, &cpuinfo, &error)) return false;
  auto flags = cpuinfo.find("\nflags");
  if (flags == std::string::npos) return false;
  std::string line = cpuinfo.substr(flags, cpuinfo.find('\n', flags + 1) - flags) + " ";
  return line.find(" constant_tsc ") != std::string::npos && line.find(" nonstop_tsc ") != std::string::npos;
#else
  return false;
#endif
}

}  // namespace

void HostClock::sample(uint64_t* ticks, int64_t* monoNs) const {
#if defined(__x86_64__)
  // Keep the try whose two TSC reads bracket clock_gettime most tightly.
  uint64_t best = UINT64_MAX;
  for (int i = 0; i < 5; ++i) {
    uint64_t a = __rdtsc();
    int64_t m = monoNowNs();
    uint64_t b = __rdtsc();
    if (b - a < best) {
      best = b - a;
      *ticks = a + (b - a) / 2;
      *monoNs = m;
    }
  }
#else
  *ticks = 0;
  *monoNs = monoNowNs();
#endif
}

void HostClock::store(const Params& p) {
  // Release stores of the fields: a reader that sees a new field value also sees the odd version
  // written before it, and retries.
  uint64_t v = version_.fetch_add(1, std::memory_order_relaxed);
  baseMonoNs_.store(p.baseMonoNs, std::memory_order_release);
  baseTicks_.store(p.baseTicks, std::memory_order_release);
  nsPerTickQ32_.store(p.nsPerTickQ32, std::memory_order_release);
  version_.store(v + 2, std::memory_order_release);
}

bool HostClock::start() {
  if (!invariantTsc()) return false;
  uint64_t t0 = 0, t1 = 0;
  int64_t m0 = 0, m1 = 0;
  sample(&t0, &m0);
  do {
    sample(&t1, &m1);
  } while (m1 - m0 < 1'000'000);
  if (t1 <= t0) return false;
  uint64_t scale = static_cast<uint64_t>((static_cast<unsigned __int128>(m1 - m0) << 32) / (t1 - t0));
  store(Params{m1, t1, scale});
  anchorTicks_ = t1;
  anchorMonoNs_ = m1;
  useTsc_ = true;
  return true;
}

void HostClock::recalibrate() {
  if (!useTsc_) return;
  uint64_t t = 0;
  int64_t m = 0;
  sample(&t, &m);
  if (t <= anchorTicks_ || m - anchorMonoNs_ < 100'000'000) return;
  uint64_t scale = static_cast<uint64_t>((static_cast<unsigned __int128>(m - anchorMonoNs_) << 32) / (t - anchorTicks_));
  // Never backwards: a thread's consecutive calls keep increasing times across a recalibration
  // (the clock is at most the last second's rate error ahead, microseconds).
  store(Params{std::max(m, toMonoNs(t)), t, scale});
  anchorTicks_ = t;
  anchorMonoNs_ = m;
}

}  // namespace ncclfr::recorder
