// Rendering a Verdict: the JSON contract (docs/analyzer.md documents every field) and the report
// for people.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "ncclfr/analysis/analyze.h"

namespace ncclfr::analysis {

// The version of the JSON contract ("format" field). Fields are only ever added within a version.
// 2: a point-to-point call's `op` is "send" or "recv" (1 wrote "send/recv" for most of them).
inline constexpr int kVerdictFormat = 2;

nlohmann::json verdictToJson(const Verdict& verdict);
// The JSON text, indented; bytes that are not UTF-8 (damaged dumps) become U+FFFD.
std::string verdictJsonText(const Verdict& verdict, int indent = 2);

// The human report; `verbose` lists every communicator, not only the stalled ones.
std::string renderText(const Verdict& verdict, bool verbose = false);

// "0x1a2b3c4d5e6f7081"
std::string hexId(uint64_t id);

// Wall-clock ns since the epoch as UTC, "2026-11-21T23:45:07.513Z"; "" when not known (<= 0).
std::string utcTime(int64_t wallNs);

}  // namespace ncclfr::analysis
