// Checks a Trace Event Format document the way the viewers that read it need it: used by the unit
// tests and by tests/viewer's end-to-end check of `ncclfr export`, so both hold the CLI's output to
// one rule set.
//
//  - it parses, and has a traceEvents list;
//  - every event has a known phase; "B" and "E" pair up per (pid, tid) in order, "X" has dur >= 0;
//  - timestamps are >= 0 (Perfetto's JSON importer drops negative ones);
//  - complete events of one (pid, tid) nest or follow each other (Perfetto drops a slice that
//    outlives its parent);
//  - every pid with events has process_name "rank R (host:pid)" and process_sort_index R, and every
//    (pid, tid) with events has a thread_name;
//  - distributedInfo names backend, rank and world_size (HTA's TraceAnalysis reads them).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace ncclfr::viewer {

struct TraceSummary {
  size_t complete = 0;   // "X" events
  size_t pending = 0;    // of them, args.pending
  std::set<int64_t> pids;
};

inline bool validateChromeTrace(const std::string& text, TraceSummary* summary, std::string* error) {
  using nlohmann::json;
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) {
    *error = "not valid JSON";
    return false;
  }
  if (!doc.is_object() || !doc.contains("traceEvents") || !doc["traceEvents"].is_array()) {
    *error = "no traceEvents list";
    return false;
  }
  const json& di = doc.value("distributedInfo", json());
  if (!di.is_object() || !di.contains("rank") || !di["rank"].is_number_integer() || di["rank"].get<int64_t>() < 0 ||
      !di.contains("world_size") || di.value("backend", std::string()) != "nccl") {
    *error = "distributedInfo lacks backend \"nccl\", a rank >= 0 or world_size";
    return false;
  }
  std::map<int64_t, std::string> processNames;
  std::map<int64_t, int64_t> sortIndex;
  std::set<std::pair<int64_t, int64_t>> threadNames;
  std::map<std::pair<int64_t, int64_t>, std::vector<std::pair<double, double>>> slices;
  std::map<std::pair<int64_t, int64_t>, std::vector<std::string>> openB;
  std::set<int64_t> pidsWithEvents;
  size_t k = 0;
  for (const auto& e : doc["traceEvents"]) {
    ++k;
    std::string at = "event " + std::to_string(k) + ": ";
    if (!e.is_object() || !e.contains("ph") || !e["ph"].is_string()) {
      *error = at + "no phase";
      return false;
    }
    std::string ph = e["ph"];
    int64_t pid = e.value("pid", int64_t{0});
    int64_t tid = e.value("tid", int64_t{0});
    if (ph == "M") {
      std::string name = e.value("name", std::string());
      const json& args = e.value("args", json::object());
      if (name == "process_name") processNames[pid] = args.value("name", std::string());
      if (name == "process_sort_index") sortIndex[pid] = args.value("sort_index", int64_t{-1});
      if (name == "thread_name") threadNames.insert({pid, tid});
      continue;
    }
    if (!e.contains("ts") || !e["ts"].is_number() || e["ts"].get<double>() < 0) {
      *error = at + "no timestamp >= 0";
      return false;
    }
    double ts = e["ts"].get<double>();
    if (ph == "X") {
      if (!e.contains("dur") || !e["dur"].is_number() || e["dur"].get<double>() < 0) {
        *error = at + "complete event without dur >= 0";
        return false;
      }
      slices[{pid, tid}].push_back({ts, ts + e["dur"].get<double>()});
      pidsWithEvents.insert(pid);
      if (summary) {
        ++summary->complete;
        if (e.contains("args") && e["args"].value("pending", false)) ++summary->pending;
      }
    } else if (ph == "B") {
      openB[{pid, tid}].push_back(e.value("name", std::string()));
      pidsWithEvents.insert(pid);
    } else if (ph == "E") {
      auto& stack = openB[{pid, tid}];
      if (stack.empty()) {
        *error = at + "E without B";
        return false;
      }
      stack.pop_back();
    } else if (ph != "i" && ph != "I") {
      *error = at + "unexpected phase " + ph;
      return false;
    }
  }
  for (const auto& [key, stack] : openB) {
    if (!stack.empty()) {
      *error = "B without E on pid " + std::to_string(key.first) + " tid " + std::to_string(key.second);
      return false;
    }
  }
  // Nesting: sorted by start (longer first at equal starts), each slice inside or after the open ones.
  for (auto& [key, v] : slices) {
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
      return a.first < b.first || (a.first == b.first && a.second > b.second);
    });
    std::vector<double> open;
    for (const auto& [b, e] : v) {
      while (!open.empty() && open.back() <= b + 1e-9) open.pop_back();
      if (!open.empty() && e > open.back() + 1e-6) {
        *error = "pid " + std::to_string(key.first) + " tid " + std::to_string(key.second) +
                 ": a slice outlives the slice it starts in";
        return false;
      }
      open.push_back(e);
    }
    if (!threadNames.count(key)) {
      *error = "pid " + std::to_string(key.first) + " tid " + std::to_string(key.second) + " has no thread_name";
      return false;
    }
  }
  // "rank R (host:pid)", R a number or "?"; returns R as text, or "" when the name is not one.
  auto rankOfName = [](const std::string& name) -> std::string {
    const std::string prefix = "rank ";
    if (name.compare(0, prefix.size(), prefix) != 0 || name.size() < prefix.size() + 5 || name.back() != ')') return "";
    size_t sp = name.find(" (", prefix.size());
    if (sp == std::string::npos) return "";
    std::string r = name.substr(prefix.size(), sp - prefix.size());
    bool number = !r.empty() && r.find_first_not_of("0123456789", r[0] == '-' ? 1 : 0) == std::string::npos;
    if (r != "?" && !number) return "";
    size_t colon = name.rfind(':');
    if (colon == std::string::npos || colon < sp || colon + 2 > name.size() - 1) return "";
    std::string pid = name.substr(colon + 1, name.size() - 2 - colon);
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) return "";
    return r;
  };
  for (int64_t pid : pidsWithEvents) {
    auto n = processNames.find(pid);
    std::string r = n == processNames.end() ? "" : rankOfName(n->second);
    if (r.empty()) {
      *error = "pid " + std::to_string(pid) + " has no process_name \"rank R (host:pid)\"";
      return false;
    }
    auto s = sortIndex.find(pid);
    if (s == sortIndex.end() || (r != "?" && std::to_string(s->second) != r)) {
      *error = "pid " + std::to_string(pid) + " has no process_sort_index equal to its rank";
      return false;
    }
    if (summary) summary->pids.insert(pid);
  }
  return true;
}

}  // namespace ncclfr::viewer
