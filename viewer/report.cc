#include "ncclfr/viewer/report.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <thread>
#include <tuple>
#include <unordered_map>

#include <capnp/schema.h>

#include "ncclfr/analysis/render.h"
#include "ncclfr/dump_file.h"
#include "ncclfr/version.h"
#include "ncclfr/viewer/clock.h"
#include "ncclfr/viewer/dump_window.h"
#include "ncclfr/viewer/json_text.h"
#include "viewer_assets.h"

namespace ncclfr::viewer {

using analysis::CommReport;
using analysis::EntryView;
using analysis::Job;
using analysis::Problem;
using analysis::ProcessDump;
using analysis::Verdict;
using nlohmann::json;

namespace {

// Bounds on what one dump may put into the page: a hostile or broken dump must not be able to
// make the report large or slow (everything else it contributes is bounded by the window).
constexpr size_t kMaxHost = 256;
constexpr size_t kMaxCmdline = 4096;
constexpr size_t kMaxDetail = 1024;
constexpr size_t kMaxCommName = 256;
constexpr size_t kMaxStringTableBytes = 8u << 20;
// Bounds on the verdict's lists (a 24,576-rank job with every rank missing has 24,576 of them);
// the page says how many were left out.
constexpr size_t kMaxSuspects = 500;
constexpr size_t kMaxNotes = 500;
constexpr size_t kMaxRankList = 2000;
constexpr size_t kMaxP2PLeftovers = 500;
constexpr size_t kMaxUnreadable = 200;

template <typename Enum>
json enumNames() {
  json names = json::array();
  auto n = capnp::Schema::from<Enum>().getEnumerants().size();
  for (uint16_t k = 0; k < n; ++k) names.push_back(enumName(static_cast<Enum>(k)));
  return names;
}

std::string isoTime(int64_t wallNs) { return analysis::utcTime(wallNs); }

// Deduplicated strings: thousands of ranks share host names, command lines and dump details.
class StringTable {
 public:
  int add(const std::string& s, size_t max) {
    std::string t = truncateUtf8(s, max);
    auto it = index_.find(t);
    if (it != index_.end()) return it->second;
    if (bytes_ + t.size() > kMaxStringTableBytes) {
      ++dropped_;
      return add("(left out: the report's string budget is spent)", 64);
    }
    bytes_ += t.size();
    int k = static_cast<int>(strings_.size());
    index_.emplace(t, k);
    strings_.push_back(std::move(t));
    return k;
  }
  json toJson() const { return strings_; }
  size_t dropped() const { return dropped_; }

 private:
  std::unordered_map<std::string, int> index_;
  std::vector<std::string> strings_;
  size_t bytes_ = 0;
  size_t dropped_ = 0;
};

// The instant every time in the report is relative to: when the incident was first detected.
// Dumps without an incident time (a person's trigger, an old salvage) fall back to the latest dump.
int64_t chooseT0(const Job& job, std::string* source) {
  // An incident is detected shortly before the dumps it causes; a time a week away from its own
  // dump is a broken clock or a damaged file, and would put every other time off the page.
  constexpr int64_t kPlausibleNs = 7LL * 24 * 3600 * 1'000'000'000;
  int64_t t0 = 0;
  for (const auto& p : job.processes) {
    if (p.incidentWallNs <= 0) continue;
    if (p.dumpWallNs > 0) {
      int64_t d = satSub(p.dumpWallNs, p.incidentWallNs);
      if (d > kPlausibleNs || d < -kPlausibleNs) continue;
    }
    if (t0 == 0 || p.incidentWallNs < t0) t0 = p.incidentWallNs;
  }
  if (t0 > 0) {
    *source = "incident";
    return t0;
  }
  for (const auto& p : job.processes) t0 = std::max(t0, p.dumpWallNs);
  *source = t0 > 0 ? "dump" : "none";
  return t0;
}

// Microseconds relative to t0 (floor), for a monotonic time of process p; 0 in = unknown.
int64_t relUs(const ProcessDump& p, int64_t monoNs, int64_t t0) {
  int64_t wall = wallOf(p, monoNs);
  int64_t d = satSub(wall, t0);
  return d >= 0 ? d / 1000 : -((-d + 999) / 1000);
}

int64_t dumpRelUs(const ProcessDump& p, int64_t t0) {
  if (p.dumpMonoNs != 0 && (p.clockWallNs != 0 || p.clockMonoNs != 0)) return relUs(p, p.dumpMonoNs, t0);
  if (p.dumpWallNs > 0) {
    int64_t d = satSub(p.dumpWallNs, t0);
    return d >= 0 ? d / 1000 : -((-d + 999) / 1000);
  }
  return 0;
}

struct Plan {
  std::vector<int64_t> lo, hi;       // per comm report
  std::vector<std::vector<size_t>> memberProc;  // per report, per member: process index or SIZE_MAX
  std::vector<std::vector<uint32_t>> memberComm;
  // Per process: its requests and which (report, member) each one feeds.
  std::vector<std::vector<WindowRequest>> requests;
  std::vector<std::vector<std::pair<size_t, size_t>>> targets;
};

int64_t frontierOf(const CommReport& c) {
  if (c.frontierSeq >= 0) return c.frontierSeq;
  int64_t newest = -1;
  for (const auto& r : c.ranks) newest = std::max(newest, r.lastEnqueuedSeq);
  return newest;
}

}  // namespace

json buildReportData(const Job& job, const Verdict& verdict, const ReportOptions& options,
                     std::vector<Problem>* problems, ReportStats* stats) {
  ReportStats st;
  std::string t0Source;
  const int64_t t0 = chooseT0(job, &t0Source);
  StringTable strings;

  // Processes, by the identity the verdict uses for them.
  std::map<std::tuple<std::string, uint32_t, int32_t>, size_t> procIndex;
  json procs;
  json pRank = json::array(), pHost = json::array(), pPid = json::array(), pWorld = json::array(),
       pTiming = json::array(), pReason = json::array(), pDetail = json::array(), pCmd = json::array(),
       pDump = json::array(), pDied = json::array(), pSim = json::array(), pHeld = json::array(),
       pRecorded = json::array(), pEvicted = json::array(), pTorn = json::array(), pRing = json::array(),
       pLocal = json::array();
  for (size_t k = 0; k < job.processes.size(); ++k) {
    const auto& p = job.processes[k];
    procIndex.emplace(std::make_tuple(p.host, p.pid, p.globalRank), k);
    pRank.push_back(p.globalRank);
    pHost.push_back(strings.add(p.host, kMaxHost));
    pPid.push_back(p.pid);
    pWorld.push_back(p.worldSize);
    pLocal.push_back(p.localRank);
    pTiming.push_back(static_cast<int>(p.timing));
    pReason.push_back(static_cast<int>(p.reason));
    pDetail.push_back(strings.add(p.detail, kMaxDetail));
    pCmd.push_back(strings.add(p.cmdline, kMaxCmdline));
    pDump.push_back(dumpRelUs(p, t0));
    pDied.push_back(p.processDied ? 1 : 0);
    pSim.push_back(p.simulated ? 1 : 0);
    pHeld.push_back(p.heldEntries);
    pRecorded.push_back(p.totalEntries);
    pEvicted.push_back(p.evictedEntries);
    pTorn.push_back(p.tornEntries);
    pRing.push_back(p.ringCapacity);
  }
  procs["rank"] = std::move(pRank);
  procs["host"] = std::move(pHost);
  procs["pid"] = std::move(pPid);
  procs["world"] = std::move(pWorld);
  procs["local"] = std::move(pLocal);
  procs["timing"] = std::move(pTiming);
  procs["reason"] = std::move(pReason);
  procs["detail"] = std::move(pDetail);
  procs["cmd"] = std::move(pCmd);
  procs["dump"] = std::move(pDump);
  procs["died"] = std::move(pDied);
  procs["sim"] = std::move(pSim);
  procs["held"] = std::move(pHeld);
  procs["recorded"] = std::move(pRecorded);
  procs["evicted"] = std::move(pEvicted);
  procs["torn"] = std::move(pTorn);
  procs["ring"] = std::move(pRing);

  // Which process and communicator index each comm rank of each report is.
  const size_t nReports = verdict.comms.size();
  Plan plan;
  plan.lo.assign(nReports, 0);
  plan.hi.assign(nReports, -1);
  plan.memberProc.resize(nReports);
  plan.memberComm.resize(nReports);
  plan.requests.resize(job.processes.size());
  plan.targets.resize(job.processes.size());
  size_t collectiveLanes = 0, p2pLanes = 0;
  for (size_t ri = 0; ri < nReports; ++ri) {
    const CommReport& c = verdict.comms[ri];
    plan.memberProc[ri].assign(c.ranks.size(), SIZE_MAX);
    plan.memberComm[ri].assign(c.ranks.size(), 0);
    for (size_t mi = 0; mi < c.ranks.size(); ++mi) {
      const auto& r = c.ranks[mi];
      auto it = procIndex.find(std::make_tuple(r.who.host, r.who.pid, r.who.rank));
      if (it == procIndex.end()) continue;
      const ProcessDump& p = job.processes[it->second];
      for (uint32_t ci = 0; ci < p.comms.size(); ++ci) {
        if (p.comms[ci].id == c.id && p.comms[ci].rank == r.commRank) {
          plan.memberProc[ri][mi] = it->second;
          plan.memberComm[ri][mi] = ci;
          if (p.comms[ci].lastEnqueuedSeq >= 0) ++collectiveLanes;
          if (!p.comms[ci].p2p.empty()) ++p2pLanes;
          break;
        }
      }
    }
  }

  // The window: as asked, shrunk until the estimate fits the budget. What a page costs, measured
  // on synthetic jobs: about 36 bytes per call shown, 40 per (rank, communicator) pair, 64 per
  // process.
  size_t budget = options.entryBudget;
  if (options.targetBytes > 0) {
    size_t pairs = 0;
    for (const auto& c : verdict.comms) pairs += c.ranks.size();
    size_t fixed = pairs * 40 + job.processes.size() * 64;
    budget = std::min(budget, options.targetBytes > fixed ? (options.targetBytes - fixed) / 36 : 0);
  }
  int64_t before = std::max<int64_t>(0, options.before);
  int64_t after = std::max<int64_t>(0, options.after);
  size_t maxP2P = options.maxP2P;
  auto estimate = [&] {
    return collectiveLanes * static_cast<size_t>(before + after + 1) + p2pLanes * maxP2P;
  };
  bool shrunk = false;
  while (estimate() > budget && (before > 1 || after > 1 || maxP2P > 2)) {
    shrunk = true;
    if (before > 1) before = std::max<int64_t>(1, before * 2 / 3);
    if (after > 1) after = std::max<int64_t>(1, after * 2 / 3);
    if (maxP2P > 2) maxP2P = std::max<size_t>(2, maxP2P * 2 / 3);
  }
  st.before = before;
  st.after = after;

  for (size_t ri = 0; ri < nReports; ++ri) {
    const CommReport& c = verdict.comms[ri];
    int64_t f = frontierOf(c);
    plan.lo[ri] = f >= 0 ? std::max<int64_t>(0, f - before) : 0;
    plan.hi[ri] = f >= 0 ? satAdd(f, after) : -1;
    for (size_t mi = 0; mi < c.ranks.size(); ++mi) {
      size_t pi = plan.memberProc[ri][mi];
      if (pi == SIZE_MAX) continue;
      const auto& cv = job.processes[pi].comms[plan.memberComm[ri][mi]];
      if (cv.lastEnqueuedSeq < 0 && cv.p2p.empty()) continue;  // never used: nothing to read
      WindowRequest q;
      q.comm = plan.memberComm[ri][mi];
      q.lo = plan.lo[ri];
      q.hi = plan.hi[ri];
      q.maxP2P = cv.p2p.empty() ? 0 : maxP2P;
      plan.requests[pi].push_back(q);
      plan.targets[pi].emplace_back(ri, mi);
    }
  }

  // Read the windows, one dump at a time per thread.
  std::vector<std::vector<std::vector<EntryView>>> windows(nReports);
  for (size_t ri = 0; ri < nReports; ++ri) windows[ri].resize(verdict.comms[ri].ranks.size());
  std::vector<std::string> errors(job.processes.size());
  {
    std::atomic<size_t> next{0};
    auto work = [&] {
      std::vector<std::vector<EntryView>> out;
      for (;;) {
        size_t pi = next.fetch_add(1);
        if (pi >= job.processes.size()) break;
        if (plan.requests[pi].empty()) continue;
        const auto& paths = job.processes[pi].paths;
        if (paths.empty()) continue;
        if (!readWindows(paths[0], plan.requests[pi], &out, &errors[pi])) continue;
        for (size_t q = 0; q < out.size(); ++q) {
          auto [ri, mi] = plan.targets[pi][q];
          windows[ri][mi] = std::move(out[q]);  // each (report, member) has one writer
        }
      }
    };
    unsigned threads = std::max(1u, std::min<unsigned>(options.threads, 64));
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }
  for (const auto& e : errors) {
    if (!e.empty() && problems) problems->push_back({"", e + " (its lanes show counters only)"});
  }

  // Communicators, with their members and entries in flat arrays (docs/viewer.md, "Data").
  json comms = json::array();
  for (size_t ri = 0; ri < nReports; ++ri) {
    const CommReport& c = verdict.comms[ri];
    json x;
    x["id"] = analysis::hexId(c.id);
    x["name"] = truncateUtf8(c.name, kMaxCommName);
    x["size"] = c.size;
    x["stalled"] = c.stalled;
    x["fr"] = c.frontierSeq;
    x["frOp"] = c.frontierOp;
    x["mm"] = c.mismatchSeq;
    x["dv"] = c.divergeSeq;
    x["af"] = c.alignedFrom;
    x["at"] = c.alignedTo;
    x["sum"] = c.summary;
    x["lo"] = plan.lo[ri];
    x["hi"] = plan.hi[ri];
    std::map<std::tuple<int, int, int, int32_t, uint64_t>, int> sigIndex;
    json sigs = json::array();
    json m = json::array();
    json e = json::array();
    json missing = json::array();
    for (size_t mi = 0; mi < c.ranks.size(); ++mi) {
      const auto& r = c.ranks[mi];
      size_t pi = plan.memberProc[ri][mi];
      const auto& entries = windows[ri][mi];
      m.push_back(r.commRank);
      m.push_back(pi == SIZE_MAX ? -1 : static_cast<int64_t>(pi));
      m.push_back(static_cast<int>(r.state));
      m.push_back(r.lastEnqueuedSeq);
      m.push_back(r.lastStartedSeq);
      m.push_back(r.lastCompletedSeq);
      m.push_back(r.asyncError);
      m.push_back(strings.add(r.commState, 32));
      m.push_back(entries.size());
      if (pi == SIZE_MAX) {
        // No dump: the verdict may still know who it is (a launcher's rank numbering).
        missing.push_back({r.commRank, r.who.rank, truncateUtf8(r.who.label, kMaxHost)});
        continue;
      }
      const ProcessDump& p = job.processes[pi];
      int64_t prevEnq = 0;
      for (const auto& v : entries) {
        auto key = std::make_tuple(static_cast<int>(v.op), static_cast<int>(v.dtype), static_cast<int>(v.redOp),
                                   v.root, v.count);
        auto [it, inserted] = sigIndex.emplace(key, static_cast<int>(sigs.size()));
        if (inserted) {
          sigs.push_back({static_cast<int>(v.op), static_cast<int>(v.dtype), static_cast<int>(v.redOp), v.root,
                          v.count});
        }
        // Times: enqueue in us relative to t0 (delta-coded along the lane), GPU start and end as
        // ns after the enqueue (-1 = not known) so short calls keep their precision.
        int64_t enqMono = v.enqueueMonoNs;
        if (enqMono == 0) enqMono = v.startMonoNs != 0 ? v.startMonoNs : v.endMonoNs;
        int64_t enqUs = enqMono != 0 ? relUs(p, enqMono, t0) : prevEnq;
        int64_t enqNs = enqMono != 0 ? wallOf(p, enqMono) : 0;
        auto offset = [&](int64_t mono) -> int64_t {
          if (mono == 0 || enqMono == 0) return -1;
          return std::max<int64_t>(0, satSub(wallOf(p, mono), enqNs));
        };
        e.push_back(v.seq - plan.lo[ri]);
        e.push_back(it->second);
        e.push_back(static_cast<int>(v.state));
        e.push_back(v.p2pSeq);
        e.push_back(satSub(enqUs, prevEnq));
        e.push_back(offset(v.startMonoNs));
        e.push_back(offset(v.endMonoNs));
        prevEnq = enqUs;
        ++st.entries;
      }
      ++st.members;
    }
    x["sigs"] = std::move(sigs);
    x["m"] = std::move(m);
    x["e"] = std::move(e);
    if (!missing.empty()) x["missing"] = std::move(missing);
    comms.push_back(std::move(x));
  }
  st.comms = nReports;

  // The verdict, in the documented JSON form (docs/analyzer.md), without its per-communicator
  // lists (the page has its own, with the windows) and with its long lists capped.
  Verdict light;
  light.status = verdict.status;
  light.jobId = verdict.jobId;
  light.incidentId = verdict.incidentId;
  light.summary = verdict.summary;
  light.ranksExpected = verdict.ranksExpected;
  light.ranksFound = verdict.ranksFound;
  auto capCopy = [](const auto& from, auto& to, size_t max) {
    to.assign(from.begin(), from.begin() + static_cast<std::ptrdiff_t>(std::min(from.size(), max)));
  };
  capCopy(verdict.suspects, light.suspects, kMaxSuspects);
  capCopy(verdict.notes, light.notes, kMaxNotes);
  capCopy(verdict.missingRanks, light.missingRanks, kMaxRankList);
  capCopy(verdict.diedRanks, light.diedRanks, kMaxRankList);
  capCopy(verdict.p2pLeftovers, light.p2pLeftovers, kMaxP2PLeftovers);
  capCopy(verdict.unreadable, light.unreadable, kMaxUnreadable);
  json v = analysis::verdictToJson(light);
  v.erase("comms");
  json left;
  left["suspects"] = verdict.suspects.size() - light.suspects.size();
  left["notes"] = verdict.notes.size() - light.notes.size();
  left["missing"] = verdict.missingRanks.size() - light.missingRanks.size();
  left["died"] = verdict.diedRanks.size() - light.diedRanks.size();
  left["p2p"] = verdict.p2pLeftovers.size() - light.p2pLeftovers.size();
  left["unreadable"] = verdict.unreadable.size() - light.unreadable.size();
  v["left_out"] = std::move(left);

  uint64_t held = 0, recorded = 0;
  for (const auto& p : job.processes) {
    held += p.heldEntries;
    recorded += p.totalEntries;
  }

  json data;
  data["format"] = 1;
  data["tool"] = std::string("ncclfr ") + NCCLFR_VERSION_STRING;
  data["t0"] = std::to_string(t0);  // a string: ns since the epoch do not fit a JS number
  data["t0Iso"] = isoTime(t0);
  data["t0Source"] = t0Source;
  data["window"] = {{"before", before},
                    {"after", after},
                    {"maxP2P", maxP2P},
                    {"shrunk", shrunk},
                    {"entries", st.entries},
                    {"held", held},
                    {"recorded", recorded}};
  data["otherIncidents"] = job.otherIncidents;
  data["verdict"] = std::move(v);
  data["procs"] = std::move(procs);
  data["comms"] = std::move(comms);
  data["strings"] = strings.toJson();
  data["stringsDropped"] = strings.dropped();
  data["enums"] = {{"op", enumNames<schema::Op>()},
                   {"dtype", enumNames<schema::DataType>()},
                   {"redOp", enumNames<schema::RedOp>()},
                   {"state", enumNames<schema::EntryState>()},
                   {"timing", enumNames<schema::TimingMode>()},
                   {"reason", enumNames<schema::DumpReason>()}};
  json rankStates = json::array();
  for (int k = 0; k <= static_cast<int>(analysis::RankState::kMissing); ++k) {
    rankStates.push_back(analysis::rankStateName(static_cast<analysis::RankState>(k)));
  }
  data["enums"]["rankState"] = std::move(rankStates);
  if (stats) *stats = st;
  return data;
}

namespace {

std::string htmlText(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string base64OfHex(std::string_view hex) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<unsigned char> bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<unsigned char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t n = static_cast<uint32_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<uint32_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) n |= bytes[i + 2];
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back(i + 2 < bytes.size() ? kAlphabet[n & 63] : '=');
  }
  return out;
}

}  // namespace

std::string renderReportHtml(const json& data, const std::string& title) {
  // ensure_ascii: U+2028/2029 and everything else non-ASCII become \u escapes; invalid UTF-8 from
  // a dump becomes U+FFFD instead of an exception. Then '<', '>', '&' (only ever inside strings)
  // become escapes too, so no "</script>" or "<!--" can end or change the data block.
  std::string payload = htmlSafeJson(data.dump(-1, ' ', true, json::error_handler_t::replace));
  std::string csp = "default-src 'none'; script-src 'sha256-" + base64OfHex(assets::jsSha256Hex()) +
                    "'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";
  struct Slot {
    std::string_view key;
    std::string_view value;
  };
  std::string titleText = htmlText(truncateUtf8(title, 300));
  const Slot slots[] = {{"{{CSP}}", csp},
                        {"{{TITLE}}", titleText},
                        {"{{CSS}}", assets::css()},
                        {"{{JS}}", assets::js()},
                        {"{{DATA}}", payload}};
  std::string_view tpl = assets::html();
  std::string out;
  out.reserve(tpl.size() + assets::css().size() + assets::js().size() + payload.size() + 256);
  size_t pos = 0;
  // One pass over the template only: whatever the data holds is never searched for placeholders.
  while (pos < tpl.size()) {
    size_t next = tpl.find("{{", pos);
    if (next == std::string_view::npos) break;
    const Slot* hit = nullptr;
    for (const auto& s : slots) {
      if (tpl.compare(next, s.key.size(), s.key) == 0) hit = &s;
    }
    out.append(tpl.substr(pos, next - pos));
    if (hit) {
      out.append(hit->value);
      pos = next + hit->key.size();
    } else {
      out.append("{{");
      pos = next + 2;
    }
  }
  out.append(tpl.substr(std::min(pos, tpl.size())));
  return out;
}

bool writeReport(const Job& job, const Verdict& verdict, const ReportOptions& options, const std::string& path,
                 std::vector<Problem>* problems, ReportStats* stats, std::string* error) {
  ReportStats st;
  json data = buildReportData(job, verdict, options, problems, &st);
  std::string title = options.title.empty()
                          ? "ncclfr report: " + (verdict.jobId.empty() ? std::string("(no job id)") : verdict.jobId)
                          : options.title;
  std::string html = renderReportHtml(data, title);
  data = json();  // the page holds it now; free the tree before the write
  st.bytes = html.size();

  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  // Error lines name `path`, the file the user asked for, not the temporary one.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  const char* p = html.data();
  size_t left = html.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = "cannot write " + path + ": " + std::strerror(n < 0 ? errno : EIO);
      ::close(fd);
      ::unlink(tmp.c_str());
      return false;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  if (stats) *stats = st;
  return true;
}

}  // namespace ncclfr::viewer
