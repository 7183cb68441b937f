// The hot path's clock: TSC ticks converted to CLOCK_MONOTONIC must stay close to it, and never
// run backwards across a recalibration.
#include "host_clock.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

using namespace ncclfr::recorder;

TEST_CASE("host clock follows CLOCK_MONOTONIC") {
  HostClock clock;
  clock.start();  // false where the TSC is not invariant: then it is clock_gettime itself
  for (int i = 0; i < 5; ++i) {
    int64_t before = monoNowNs();
    int64_t mine = clock.toMonoNs(clock.ticks());
    int64_t after = monoNowNs();
    // The scale is measured over 1 ms at start: within 1% over the short runs here, plus slack
    // for a loaded machine.
    CHECK(mine >= before - 2'000'000);
    CHECK(mine <= after + 2'000'000);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  uint64_t t0 = clock.ticks();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  int64_t elapsed = clock.ticksToNs(t0, clock.ticks());
  CHECK(elapsed >= 45'000'000);
  CHECK(elapsed < 5'000'000'000);
}

TEST_CASE("recalibration never moves the clock backwards") {
  HostClock clock;
  clock.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  int64_t last = clock.toMonoNs(clock.ticks());
  for (int i = 0; i < 3; ++i) {
    clock.recalibrate();
    int64_t now = clock.toMonoNs(clock.ticks());
    CHECK(now >= last);
    last = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(110));
  }
  CHECK(std::llabs(clock.toMonoNs(clock.ticks()) - monoNowNs()) < 2'000'000);
}
