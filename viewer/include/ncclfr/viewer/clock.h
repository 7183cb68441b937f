// Times from dumps are untrusted numbers: the viewer's arithmetic on them saturates instead of
// overflowing (signed overflow is undefined behaviour, and sanitized builds stop on it).
#pragma once

#include <cstdint>
#include <limits>

#include "ncclfr/analysis/model.h"

namespace ncclfr::viewer {

inline int64_t satAdd(int64_t a, int64_t b) {
  int64_t r;
  if (!__builtin_add_overflow(a, b, &r)) return r;
  return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

inline int64_t satSub(int64_t a, int64_t b) {
  int64_t r;
  if (!__builtin_sub_overflow(a, b, &r)) return r;
  return b < 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

// A monotonic time of process p on the wall clock (wall = mono + clock.wallNs - clock.monoNs);
// 0 stays 0 ("not known").
inline int64_t wallOf(const analysis::ProcessDump& p, int64_t monoNs) {
  return monoNs == 0 ? 0 : satAdd(monoNs, satSub(p.clockWallNs, p.clockMonoNs));
}

}  // namespace ncclfr::viewer
