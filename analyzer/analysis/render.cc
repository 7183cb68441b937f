#include "ncclfr/analysis/render.h"

#include <time.h>

#include <cinttypes>
#include <cstdio>
#include <unordered_map>

#include "wording.h"

namespace ncclfr::analysis {

using nlohmann::json;

std::string hexId(uint64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, id);
  return buf;
}

std::string utcTime(int64_t wallNs) {
  if (wallNs <= 0) return "";
  time_t secs = static_cast<time_t>(wallNs / 1'000'000'000);
  struct tm tm {};
  if (gmtime_r(&secs, &tm) == nullptr) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>((wallNs / 1'000'000) % 1000));
  return buf;
}

namespace {

json orNull(int64_t v) { return v < 0 ? json(nullptr) : json(v); }

json rankJson(const RankRef& r) {
  json j;
  j["rank"] = orNull(r.rank);
  j["host"] = r.host;
  j["pid"] = r.pid;
  j["label"] = r.label;
  return j;
}

}  // namespace

json verdictToJson(const Verdict& v) {
  json j;
  j["format"] = kVerdictFormat;
  j["status"] = statusName(v.status);
  j["summary"] = v.summary;
  j["job"] = v.jobId;
  j["incident"] = v.incidentId;

  json ranks;
  ranks["expected"] = orNull(v.ranksExpected);
  ranks["found"] = v.ranksFound;
  ranks["missing"] = json::array();
  for (const auto& r : v.missingRanks) ranks["missing"].push_back(rankJson(r));
  ranks["died"] = json::array();
  for (const auto& r : v.diedRanks) ranks["died"].push_back(rankJson(r));
  ranks["unreadable"] = json::array();
  for (const auto& p : v.unreadable) ranks["unreadable"].push_back({{"path", p.path}, {"error", p.message}});
  j["ranks"] = std::move(ranks);

  json suspects = json::array();
  for (const auto& s : v.suspects) {
    json x = rankJson(s.who);
    x["comm"] = s.comm ? json(hexId(s.comm)) : json(nullptr);
    x["comm_rank"] = orNull(s.commRank);
    x["seq"] = orNull(s.seq);
    x["op"] = s.op;
    x["peer"] = s.peer.label.empty() ? json(nullptr) : rankJson(s.peer);
    x["reason"] = reasonName(s.reason);
    x["evidence"] = s.evidence;
    x["blocking"] = s.blocking;
    x["error_code"] = s.reason == Reason::kError ? json(s.errorCode) : json(nullptr);
    x["error_time_ns"] = s.errorWallNs > 0 ? json(s.errorWallNs) : json(nullptr);
    x["from_salvage"] = s.fromSalvage;
    x["with"] = json::array();
    for (const auto& w : s.with) x["with"].push_back(rankJson(w));
    x["chain"] = json::array();
    for (const auto& l : s.chain) {
      json c = rankJson(l.who);
      c["comm"] = hexId(l.comm);
      c["comm_rank"] = orNull(l.commRank);
      c["seq"] = orNull(l.seq);
      c["op"] = l.op;
      c["state"] = rankStateName(l.state);
      c["why"] = l.why;
      x["chain"].push_back(std::move(c));
    }
    suspects.push_back(std::move(x));
  }
  j["suspects"] = std::move(suspects);

  json comms = json::array();
  for (const auto& c : v.comms) {
    json x;
    x["id"] = hexId(c.id);
    x["name"] = c.name;
    x["size"] = c.size;
    x["stalled"] = c.stalled;
    x["frontier_seq"] = orNull(c.frontierSeq);
    x["frontier_op"] = c.frontierOp;
    x["diverge_seq"] = orNull(c.divergeSeq);
    x["mismatch_seq"] = orNull(c.mismatchSeq);
    x["aligned_from"] = orNull(c.alignedFrom);
    x["aligned_to"] = orNull(c.alignedTo);
    x["summary"] = c.summary;
    json rs = json::array();
    for (const auto& r : c.ranks) {
      json y = rankJson(r.who);
      y["comm_rank"] = r.commRank;
      y["last_enqueued"] = r.lastEnqueuedSeq;
      y["last_started"] = r.lastStartedSeq;
      y["last_completed"] = r.lastCompletedSeq;
      y["state"] = rankStateName(r.state);
      y["timing"] = r.timing;
      y["async_error"] = r.asyncError;
      y["comm_state"] = r.commState;
      rs.push_back(std::move(y));
    }
    x["ranks"] = std::move(rs);
    comms.push_back(std::move(x));
  }
  j["comms"] = std::move(comms);

  json p2p = json::array();
  for (const auto& l : v.p2pLeftovers) {
    p2p.push_back({{"comm", hexId(l.comm)},
                   {"src", rankJson(l.src)},
                   {"dst", rankJson(l.dst)},
                   {"src_comm_rank", l.srcCommRank},
                   {"dst_comm_rank", l.dstCommRank},
                   {"sends", l.sends},
                   {"receives", l.receives},
                   {"pending", l.pending}});
  }
  j["p2p_unmatched"] = std::move(p2p);
  json stuck = json::array();
  for (const auto& x : v.p2pStuck) {
    stuck.push_back({{"comm", hexId(x.comm)},
                     {"src", rankJson(x.src)},
                     {"dst", rankJson(x.dst)},
                     {"src_comm_rank", x.srcCommRank},
                     {"dst_comm_rank", x.dstCommRank},
                     {"p2p_seq", x.p2pSeq}});
  }
  j["p2p_stuck"] = std::move(stuck);
  j["notes"] = v.notes;
  return j;
}

std::string verdictJsonText(const Verdict& v, int indent) {
  return verdictToJson(v).dump(indent, ' ', false, json::error_handler_t::replace);
}

std::string renderText(const Verdict& v, bool verbose) {
  std::string out;
  auto line = [&](const std::string& s) { out += s + "\n"; };
  // Communicators by id and name ("comm 0x... (tp)"), as the verdict's sentences name them.
  std::unordered_map<uint64_t, std::string> names;
  for (const auto& c : v.comms) names.emplace(c.id, c.name);
  auto commText = [&](uint64_t id) {
    std::string s = "comm " + hexId(id);
    auto it = names.find(id);
    if (it != names.end() && !it->second.empty()) s += " (" + it->second + ")";
    return s;
  };

  std::string head = "ncclfr: ";
  std::string st = statusName(v.status);
  for (auto& ch : st) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  head += st + ": " + v.summary;
  line(head);
  std::string ctx = "  job " + (v.jobId.empty() ? std::string("(no job id)") : v.jobId);
  if (!v.incidentId.empty()) ctx += ", incident " + v.incidentId;
  if (v.ranksExpected >= 0 && v.ranksFound <= v.ranksExpected) {
    ctx += ": " + std::to_string(v.ranksFound) + " of " + plural(v.ranksExpected, "rank") +
           (v.ranksFound == 1 ? " has" : " have") + " a dump";
  } else {
    ctx += ": " + plural(v.ranksFound, "process", "processes") + " with a dump";
    if (v.ranksExpected >= 0) ctx += " (the dumps say the job has " + plural(v.ranksExpected, "rank") + ")";
  }
  line(ctx);

  size_t stalled = 0;
  for (const auto& c : v.comms) stalled += c.stalled ? 1 : 0;
  // How to read the numbers, once, wherever the report below uses them.
  bool numbered = !v.suspects.empty() || stalled > 0 || !v.p2pLeftovers.empty() || !v.p2pStuck.empty();
  for (const auto& n : v.notes) numbered = numbered || n.find(" #") != std::string::npos;
  if (numbered) {
    line("  (rank N: a global rank; comm rank N: a rank's number inside one communicator; #N: a 0-based sequence");
    line("  number as in the dumps and --json, counting a communicator's collectives, or one rank's sends to, or");
    line("  receives from, one peer on it)");
  }

  if (!v.suspects.empty()) {
    line("");
    line("Suspects, most likely first:");
    size_t shown = 0;
    for (const auto& s : v.suspects) {
      if (!verbose && shown == 10) {
        line("  ... and " + std::to_string(v.suspects.size() - shown) + " more (--verbose or --json)");
        break;
      }
      ++shown;
      std::string who = s.who.label;
      if (!s.who.host.empty()) who += " (" + s.who.host + ", pid " + std::to_string(s.who.pid) + ")";
      std::string where;
      if (!s.op.empty() && s.seq >= 0) {
        where = s.op + " #" + std::to_string(s.seq);
        if (!s.peer.label.empty()) {
          where += (s.op == "send" ? " to " : s.op == "recv" ? " from " : " with ") + s.peer.label;
        }
      }
      if (s.comm != 0) {
        where += (where.empty() ? "on " : " on ") + commText(s.comm);
        // A label like "comm 0x... rank 3" (no dump, global rank unknown) already says it.
        bool labelSaysIt = s.who.rank < 0 && s.who.host.empty();
        if (s.commRank >= 0 && !labelSaysIt) where += ", where it is comm rank " + std::to_string(s.commRank);
      }
      std::string reason = reasonName(s.reason);
      line("  " + std::to_string(shown) + ". " + who + ": " + reason +
           (where.empty() ? "" : (where.rfind("on ", 0) == 0 ? " " : " in ") + where));
      line("     " + s.evidence);
      if (!s.with.empty()) {
        std::string w;
        for (size_t k = 0; k < s.with.size(); ++k) w += (k ? ", " : "") + s.with[k].label;
        line("     together with: " + w);
      }
      if (s.blocking == 1) {
        line("     holds up 1 call another rank waits in");
      } else if (s.blocking > 1) {
        line("     holds up " + std::to_string(s.blocking) + " calls other ranks wait in (one per rank and communicator)");
      }
      if (!s.chain.empty()) {
        line("     chain (each waits for the next):");
        for (const auto& l : s.chain) {
          std::string t = "       " + l.who.label + " on " + commText(l.comm);
          if (!l.why.empty()) {
            t += ": " + l.why;
          } else {
            if (!l.op.empty() && l.seq >= 0) t += ", " + l.op + " #" + std::to_string(l.seq);
            t += std::string(": ") + rankStateText(l.state);
          }
          line(t);
        }
      }
    }
  }

  if (stalled > 0 || verbose) {
    line("");
    line("Communicators: " + std::to_string(stalled) + " of " + std::to_string(v.comms.size()) + " stalled");
    size_t shown = 0;
    for (const auto& c : v.comms) {
      if (!c.stalled && !verbose && c.mismatchSeq < 0) continue;
      if (!verbose && shown == 8) {
        line("  ... (--verbose lists every communicator)");
        break;
      }
      ++shown;
      line("  comm " + hexId(c.id) + " (" + (c.name.empty() ? "" : c.name + ", ") + plural(c.size, "rank") +
           "): " + c.summary);
      if (c.stalled) {
        std::string behind;
        size_t n = 0;
        for (const auto& r : c.ranks) {
          if (r.state == RankState::kCompleted || r.state == RankState::kStarted || r.state == RankState::kPending ||
              r.state == RankState::kUnknown) {
            continue;
          }
          if (n++ < 8) behind += (behind.empty() ? "" : ", ") + r.who.label + " (" + rankStateText(r.state) + ")";
        }
        if (n > 8) behind += ", and " + std::to_string(n - 8) + " more";
        if (!behind.empty()) line("    behind: " + behind);
      }
    }
  }
  auto upTo = [](int64_t n) { return n > 0 ? " (#0 to #" + std::to_string(n - 1) + ")" : std::string(); };
  if (!v.p2pLeftovers.empty()) {
    line("");
    line("Sends and receives that do not pair up (a call without counterpart, or a counterpart not issued yet):");
    size_t n = 0;
    for (const auto& l : v.p2pLeftovers) {
      if (!verbose && n++ == 8) {
        line("  ... (--verbose lists them all)");
        break;
      }
      line("  " + commText(l.comm) + ": " + l.src.label + " issued " + plural(l.sends, "send") + " to " + l.dst.label +
           upTo(l.sends) + ", " + l.dst.label + " issued " + plural(l.receives, "receive") + " from " + l.src.label +
           upTo(l.receives));
    }
  }
  if (!v.p2pStuck.empty()) {
    line("");
    line("Sends and receives stuck in the transport (both sides started, neither completed):");
    size_t n = 0;
    for (const auto& x : v.p2pStuck) {
      if (!verbose && n++ == 8) {
        line("  ... (--verbose lists them all)");
        break;
      }
      line("  " + commText(x.comm) + ": send #" + std::to_string(x.p2pSeq) + " from " + x.src.label + " to " +
           x.dst.label + " and its matching recv");
    }
  }
  if (!v.unreadable.empty()) {
    line("");
    line("Unreadable dumps (their ranks are lost):");
    for (const auto& p : v.unreadable) line("  " + p.message);
  }
  if (!v.missingRanks.empty()) {
    std::string m;
    for (size_t k = 0; k < v.missingRanks.size() && k < 16; ++k) m += (k ? ", " : "") + std::to_string(v.missingRanks[k].rank);
    if (v.missingRanks.size() > 16) m += ", ... (" + std::to_string(v.missingRanks.size()) + " in all)";
    line("");
    line("Ranks without a dump: " + m);
  }
  if (!v.notes.empty()) {
    line("");
    line("Notes:");
    size_t n = 0;
    for (const auto& s : v.notes) {
      if (!verbose && n++ == 12) {
        line("  ... (" + std::to_string(v.notes.size()) + " notes in all; --verbose lists them)");
        break;
      }
      line("  " + s);
    }
  }
  return out;
}

}  // namespace ncclfr::analysis
