// Words the analysis and the text report share, so that a rank's state or a count reads the same
// in the verdict's sentences (analyze.cc) and around them (render.cc). Private to the library: the
// JSON keeps the state names (rankStateName), these are for people.
#pragma once

#include <cstdint>
#include <string>

#include "ncclfr/analysis/analyze.h"

namespace ncclfr::analysis {

// "1 rank", "2 ranks"; `many` defaults to `one` + "s".
inline std::string plural(int64_t n, const std::string& one, const std::string& many = "") {
  return std::to_string(n) + " " + (n == 1 ? one : many.empty() ? one + "s" : many);
}

// What a rank did with the call at its communicator's frontier, as the predicate of a sentence
// whose subject is a rank or a count ("rank 9 never issued it", "7 started it on the GPU"). No
// semicolons inside: lists of counts are separated by them.
inline const char* rankStateText(RankState s) {
  switch (s) {
    case RankState::kCompleted: return "completed it";
    case RankState::kNotEnqueued: return "never issued it";
    case RankState::kQueued: return "issued it, not started on the GPU";
    case RankState::kStarted: return "started it on the GPU";
    case RankState::kPending: return "issued it (start on the GPU not measured)";
    case RankState::kUnknown: return "issued it (GPU progress not measured)";
    case RankState::kMissing: return "left no dump";
  }
  return "?";
}

}  // namespace ncclfr::analysis
