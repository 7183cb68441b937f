// The analysis (docs/analyzer.md explains the method). Everything here works on the model that
// load.cc built: exact counters, fingerprints and a few copied entries per process.
#include "ncclfr/analysis/analyze.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <map>
#include <numeric>
#include <set>
#include <unordered_map>
#include <utility>

#include "ncclfr/analysis/render.h"
#include "ncclfr/dump_file.h"

namespace ncclfr::analysis {

const char* statusName(Status s) {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kHang: return "hang";
    case Status::kDesync: return "desync";
    case Status::kIncomplete: return "incomplete";
  }
  return "?";
}

const char* reasonName(Reason r) {
  switch (r) {
    case Reason::kHostStall: return "host_stall";
    case Reason::kDeviceStall: return "device_stall";
    case Reason::kMismatch: return "mismatch";
    case Reason::kUnmatchedP2P: return "unmatched_p2p";
    case Reason::kMissing: return "missing";
    case Reason::kDied: return "died";
    case Reason::kError: return "error";
  }
  return "?";
}

const char* rankStateName(RankState s) {
  switch (s) {
    case RankState::kCompleted: return "completed";
    case RankState::kNotEnqueued: return "not_enqueued";
    case RankState::kQueued: return "queued";
    case RankState::kStarted: return "started";
    case RankState::kPending: return "pending";
    case RankState::kUnknown: return "unknown";
    case RankState::kMissing: return "missing";
  }
  return "?";
}

namespace {

constexpr size_t kNone = SIZE_MAX;
constexpr size_t kMaxChain = 64;
constexpr int32_t kMaxCommSize = 1 << 22;
// Ranks without a dump that one stalled communicator names as blockers; the rest are counted.
constexpr size_t kMaxMissingBlockers = 16;
constexpr size_t kMaxListedMissing = 1 << 16;

std::string fmtSeconds(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ns) / 1e9);
  return buf;
}

std::string fmtWall(int64_t wallNs) {
  if (wallNs <= 0) return "an unknown time";
  time_t secs = static_cast<time_t>(wallNs / 1'000'000'000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>((wallNs / 1'000'000) % 1000));
  return buf;
}

bool hasError(const CommView& c) {
  return c.lastAsyncError != 0 || c.state == schema::CommState::ABORTED || c.state == schema::CommState::REVOKED;
}

// ncclResult_t codes other than success and "in progress".
bool failedResult(int32_t r) { return r != 0 && r != 7; }

const char* ncclResultName(int32_t r) {
  switch (r) {
    case 0: return "ncclSuccess";
    case 1: return "ncclUnhandledCudaError";
    case 2: return "ncclSystemError";
    case 3: return "ncclInternalError";
    case 4: return "ncclInvalidArgument";
    case 5: return "ncclInvalidUsage";
    case 6: return "ncclRemoteError";
    case 7: return "ncclInProgress";
    default: return "ncclResult";
  }
}

struct Member {
  size_t proc = kNone;  // kNone: no dump holds this comm rank
  uint32_t comm = 0;
  int32_t commRank = -1;
  int32_t globalRank = -1;  // for missing members: inferred, or -1
  RankState state = RankState::kCompleted;
  bool error = false;
  // Progress as the peers prove it (inferProgress): at least the recorder's counters.
  int64_t effCompleted = -1;
  int64_t effStarted = -1;
};

struct Group {
  uint64_t id = 0;
  int32_t size = 0;
  std::string name;
  uint64_t parentId = 0;
  std::vector<Member> members;  // by comm rank; missing comm ranks included (proc == kNone)
  std::vector<int32_t> memberOf;  // comm rank -> index into members, -1
  int64_t frontier = -1;
  bool stalled = false;
  bool frontierUnknown = false;  // hostOnly everywhere: enqueue counts agree, completion unknown
  std::vector<size_t> blockers;  // member indices
  std::string frontierOp;
  int64_t mismatchSeq = -1;
  int64_t alignedFrom = -1, alignedTo = -1;
  size_t present = 0;
};

// A rank waiting somewhere, or holding others up: one node of the wait-for graph.
struct Node {
  size_t group = 0;
  size_t member = 0;
  RankState state = RankState::kNotEnqueued;
  bool p2p = false;      // the call is a send/recv (seq is its p2p sequence number)
  int64_t seq = -1;      // the call this rank has not done
  int32_t peer = -1;     // p2p: the comm rank that waits for this one
  int64_t afterSeq = -1; // p2p: the waiting call's collective position (Entry.seq)
  bool operator<(const Node& o) const {
    return std::tie(group, member, p2p, seq, peer) < std::tie(o.group, o.member, o.p2p, o.seq, o.peer);
  }
};

struct Root {
  Node node;
  Reason reason = Reason::kHostStall;
  std::string evidence;
  std::vector<size_t> withProcs;       // other processes named with it
  std::vector<Node> chain;             // longest path that reached it, head first
  int32_t errorCode = 0;
  int64_t errorWallNs = 0;
  bool p2pOp = false;                  // the call in question is a send/recv (p2pSeq below)
  int64_t p2pSeq = -1;
  std::set<size_t> waitingGroups;      // stalled groups whose blockers lead here
};

class Analyzer {
 public:
  Analyzer(const Job& job, const AnalyzeOptions& options) : job_(job), options_(options) {}
  Verdict run();

 private:
  // --- model helpers
  const ProcessDump& proc(size_t p) const { return job_.processes[p]; }
  const CommView& commOf(const Member& m) const { return proc(m.proc).comms[m.comm]; }
  RankRef ref(size_t p) const;
  RankRef refMember(const Group& g, const Member& m) const;
  std::string commName(const Group& g) const;
  bool isPending(const ProcessDump& p, const EntryView& e) const;
  // What a process's recorder measured: its timing mode, unless its own counters contradict it
  // (checkMeasured).
  bool completionKnown(size_t p) const { return timing_[p] != schema::TimingMode::HOST_ONLY; }
  bool startKnown(size_t p) const { return timing_[p] == schema::TimingMode::FULL; }
  void checkMeasured();
  bool isPendingAlone(size_t p, const EntryView& e, bool peersProve) const;
  void inferProgress();
  const EntryView* earliestPending(size_t p, const EntryView* before, bool sameStream) const;
  std::string describeEntry(size_t p, const EntryView& e) const;

  // --- passes
  void buildGroups();
  void inferMissingRanks();
  void computeFrontiers();
  void checkMismatches();
  void matchP2P();
  void followChains();
  void collectOtherSuspects();
  void finish();

  // --- wait-for graph
  std::vector<Node> next(const Node& n, std::string* why, size_t* transportGroup) const;
  std::vector<Node> waitTargets(size_t p, const EntryView& e, std::string* why, size_t* transportGroup) const;
  std::vector<Node> heldBy(size_t p, const EntryView& e, std::string* why, size_t* transportGroup) const;
  void classifyRoot(const Node& n, Root* r) const;
  void classifyCycle(const std::vector<Node>& cycle);
  size_t rootIndex(const Node& n);
  void dfs(const Node& n, std::vector<Node>& path, std::set<Node>& onPath, size_t headGroup);
  int32_t p2pBalance(const Group& g, const Member& m) const;
  ChainLink link(const Node& n, const std::string& why) const;
  std::string nodeText(const Node& n) const;

  const Job& job_;
  const AnalyzeOptions& options_;
  Verdict v_;
  std::vector<Group> groups_;
  std::unordered_map<uint64_t, size_t> groupById_;
  // per process, per comm index: (group, member)
  std::vector<std::vector<std::pair<size_t, size_t>>> where_;
  std::vector<Root> roots_;
  std::map<Node, size_t> rootOf_;
  std::map<Node, std::vector<size_t>> memo_;  // node -> roots it leads to
  std::map<Node, std::string> whyOf_;
  std::set<size_t> transportGroups_;          // chains that end in a stuck transport
  std::vector<Suspect> extra_;                // mismatch, died, error and p2p suspects outside chains
  std::vector<schema::TimingMode> timing_;
  uint64_t memberBudget_ = uint64_t{1} << 24;  // comm-rank slots over all communicators
  bool budgetNoted_ = false;
};

RankRef Analyzer::ref(size_t p) const {
  const auto& d = proc(p);
  return {d.globalRank, d.host, d.pid, d.label()};
}

RankRef Analyzer::refMember(const Group& g, const Member& m) const {
  if (m.proc != kNone) return ref(m.proc);
  RankRef r;
  r.rank = m.globalRank;
  r.label = m.globalRank >= 0 ? "rank " + std::to_string(m.globalRank)
                              : "comm " + hexId(g.id) + " rank " + std::to_string(m.commRank);
  return r;
}

std::string Analyzer::commName(const Group& g) const {
  std::string s = "comm " + hexId(g.id);
  if (!g.name.empty()) s += " (" + g.name + ")";
  return s;
}

bool Analyzer::isPendingAlone(size_t pi, const EntryView& e, bool peersProve) const {
  const ProcessDump& p = proc(pi);
  if (!completionKnown(pi) || e.state == schema::EntryState::COMPLETED) return false;
  if (e.state == schema::EntryState::CAPTURED) return false;
  const CommView& c = p.comms[e.comm];
  auto [gi, mi] = where_[pi][e.comm];
  if (!e.isP2P()) {
    int64_t done = gi != kNone ? groups_[gi].members[mi].effCompleted : c.lastCompletedSeq;
    return e.seq > done;
  }
  // A collective issued after this send/recv started: this one finished (one communicator's
  // operations run in order).
  if (gi != kNone && e.seq < groups_[gi].members[mi].effStarted && startKnown(pi)) return false;
  const P2PCounterView* k = c.p2pCounter(e.root, e.op == schema::Op::SEND);
  int64_t done = k ? k->lastCompletedSeq : -1;
  if (peersProve && e.op == schema::Op::SEND && gi != kNone && e.root >= 0 && e.root < groups_[gi].size) {
    // A receive that completed proves the matching send did.
    const Group& g = groups_[gi];
    const Member& peer = g.members[static_cast<size_t>(g.memberOf[static_cast<size_t>(e.root)])];
    if (peer.proc != kNone && completionKnown(peer.proc)) {
      if (const P2PCounterView* r = commOf(peer).p2pCounter(g.members[mi].commRank, false)) {
        done = std::max(done, r->lastCompletedSeq);
      }
    }
  }
  return e.p2pSeq > done;
}

bool Analyzer::isPending(const ProcessDump& p, const EntryView& e) const {
  size_t pi = static_cast<size_t>(&p - job_.processes.data());
  if (!isPendingAlone(pi, e, true)) return false;
  // The calls of one ncclGroupStart/End on one communicator run as one launch and finish together,
  // so the recorder's own word that one finished covers all. (A peer's word covers only its half:
  // a delivered send says nothing of the receive launched with it.)
  if (e.groupId != 0) {
    for (const auto& x : p.entries) {
      if (&x != &e && x.groupId == e.groupId && x.comm == e.comm && !isPendingAlone(pi, x, false) &&
          x.state != schema::EntryState::CAPTURED) {
        return false;
      }
    }
  }
  return true;
}

namespace {
// Collectives whose completion on any rank needs every rank's contribution: if one rank finished
// one, every rank ran it.
bool needsEveryone(schema::Op op) {
  return op == schema::Op::ALL_REDUCE || op == schema::Op::ALL_GATHER || op == schema::Op::REDUCE_SCATTER ||
         op == schema::Op::ALL_TO_ALL;
}
}  // namespace

// A recorder that claims GPU timing but recorded no GPU progress at all on any communicator, while
// its peers completed calls that needed it, did not measure (its events were never polled, or
// never created): its "not started" means "not known", as in hostOnly mode, and is read so.
void Analyzer::checkMeasured() {
  timing_.resize(job_.processes.size());
  for (size_t p = 0; p < job_.processes.size(); ++p) timing_[p] = proc(p).timing;
  std::vector<std::string> who;
  // Per communicator, how many members completed anything (so each rank's check is O(1)).
  std::vector<size_t> completedSome(groups_.size(), 0);
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    for (const auto& o : groups_[gi].members) {
      if (o.proc != kNone && commOf(o).lastCompletedSeq >= 0) ++completedSome[gi];
    }
  }
  for (size_t p = 0; p < job_.processes.size(); ++p) {
    if (timing_[p] == schema::TimingMode::HOST_ONLY) continue;
    const auto& d = proc(p);
    bool issued = false, progressed = false, peersDid = false;
    for (uint32_t ci = 0; ci < d.comms.size(); ++ci) {
      const auto& c = d.comms[ci];
      issued = issued || c.lastEnqueuedSeq >= 0;
      progressed = progressed || c.lastCompletedSeq >= 0 || c.lastStartedSeq >= 0;
      for (const auto& k : c.p2p) progressed = progressed || k.lastCompletedSeq >= 0 || k.lastStartedSeq >= 0;
      auto [gi, mi] = where_[p][ci];
      if (gi == kNone || c.lastEnqueuedSeq < 0) continue;
      if (completedSome[gi] > (c.lastCompletedSeq >= 0 ? 1u : 0u)) peersDid = true;
    }
    if (issued && !progressed && peersDid) {
      timing_[p] = schema::TimingMode::HOST_ONLY;
      who.push_back(d.label());
    }
  }
  if (!who.empty()) {
    std::string list;
    for (size_t k = 0; k < who.size() && k < 8; ++k) list += (k ? ", " : "") + who[k];
    if (who.size() > 8) list += " and " + std::to_string(who.size() - 8) + " more";
    v_.notes.push_back(list + ": the recorder claims GPU timing but saw no call start or finish, while peers "
                       "completed calls that needed it; read as not measured (hostOnly)");
  }
}

// A recorder learns of GPU progress by polling events, so a dump can trail what the GPU did; and a
// rank's call of an all-reduce (all-gather, ...) that a peer completed has run, whatever this
// rank's recorder saw. Counting it as completed keeps such lag from being taken for a stall.
void Analyzer::inferProgress() {
  size_t inferred = 0;
  for (auto& g : groups_) {
    int64_t cmax = -1;
    for (auto& m : g.members) {
      if (m.proc == kNone) continue;
      const auto& c = commOf(m);
      m.effCompleted = completionKnown(m.proc) ? c.lastCompletedSeq : -1;
      // NCCL runs one communicator's operations one after another, so a call that started proves
      // every earlier call of the communicator finished.
      if (startKnown(m.proc) && c.lastStartedSeq - 1 > m.effCompleted && c.lastStartedSeq <= c.lastEnqueuedSeq) {
        m.effCompleted = c.lastStartedSeq - 1;
        ++inferred;
      }
      // The same from the entries themselves: a call seen starting (a send/recv too) proves the
      // collectives issued before it finished.
      if (startKnown(m.proc)) {
        for (const auto& e : proc(m.proc).entries) {
          if (e.comm != m.comm) continue;
          if (e.state != schema::EntryState::STARTED && e.state != schema::EntryState::COMPLETED) continue;
          int64_t before = e.isP2P() ? e.seq : e.seq - 1;
          if (e.state == schema::EntryState::COMPLETED && !e.isP2P()) before = e.seq;
          if (before > m.effCompleted && before <= c.lastEnqueuedSeq) {
            m.effCompleted = before;
            ++inferred;
          }
        }
      }
      m.effStarted = startKnown(m.proc) ? std::max(c.lastStartedSeq, m.effCompleted) : m.effCompleted;
      if (completionKnown(m.proc)) cmax = std::max(cmax, m.effCompleted);
    }
    for (auto& m : g.members) {
      if (m.proc == kNone || !completionKnown(m.proc)) continue;
      const auto& c = commOf(m);
      int64_t upTo = std::min(c.lastEnqueuedSeq, cmax);
      // A lag is a few calls; anything longer is not a lag (or not a sane dump).
      if (upTo - m.effCompleted > 4096) continue;
      int64_t s = m.effCompleted + 1;
      for (; s <= upTo; ++s) {
        schema::Op op = schema::Op::UNKNOWN;
        for (const auto& o : g.members) {
          if (o.proc == kNone) continue;
          uint32_t fp = commOf(o).fingerprintAt(s);
          if (fp == 0) continue;
          if (const CallSignature* sig = commOf(o).signatureFor(fp)) op = sig->op;
          break;
        }
        if (op != schema::Op::UNKNOWN && !needsEveryone(op)) break;
      }
      if (s - 1 > m.effCompleted) {
        m.effCompleted = s - 1;
        m.effStarted = std::max(m.effStarted, m.effCompleted);
        ++inferred;
      }
    }
  }
  if (inferred > 0) {
    v_.notes.push_back(std::to_string(inferred) +
                       " communicator view(s) trailed what the rank's own later calls or its peers prove ran "
                       "(a recorder reads GPU events late); those calls are counted as completed");
  }
}

// The oldest pending call of process p (before `before` in ring order, and on its stream when
// sameStream): in stream order it is what everything after it waits behind.
const EntryView* Analyzer::earliestPending(size_t p, const EntryView* before, bool sameStream) const {
  const auto& d = proc(p);
  for (const auto& e : d.entries) {
    if (before && e.index >= before->index) break;
    if (before && sameStream && e.stream != before->stream) continue;
    if (isPending(d, e)) return &e;
  }
  return nullptr;
}

std::string Analyzer::describeEntry(size_t p, const EntryView& e) const {
  const auto& d = proc(p);
  const auto& c = d.comms[e.comm];
  std::string s = enumName(e.op);
  if (e.isP2P()) {
    s += (e.op == schema::Op::SEND ? " #" + std::to_string(e.p2pSeq) + " to" : " #" + std::to_string(e.p2pSeq) + " from") +
         std::string(" comm rank ") + std::to_string(e.root);
  } else {
    s += " #" + std::to_string(e.seq);
  }
  auto it = groupById_.find(c.id);
  s += " on " + (it != groupById_.end() ? commName(groups_[it->second]) : "comm " + hexId(c.id));
  return s;
}

void Analyzer::buildGroups() {
  where_.resize(job_.processes.size());
  for (size_t p = 0; p < job_.processes.size(); ++p) {
    const auto& d = proc(p);
    where_[p].assign(d.comms.size(), {kNone, kNone});
    for (uint32_t ci = 0; ci < d.comms.size(); ++ci) {
      const auto& c = d.comms[ci];
      if (c.state == schema::CommState::INIT_FAILED) continue;
      if (c.size <= 0 || c.rank < 0 || c.rank >= c.size || c.size > kMaxCommSize) {
        v_.notes.push_back(d.label() + ": communicator " + hexId(c.id) + " has an impossible rank " +
                           std::to_string(c.rank) + " of " + std::to_string(c.size) + "; ignored");
        continue;
      }
      auto found = groupById_.find(c.id);
      if (found == groupById_.end() && memberBudget_ < static_cast<uint64_t>(c.size)) {
        // Every rank of every communicator gets a slot, present or not; a damaged or hostile dump
        // claiming huge communicators must not make that unbounded.
        if (!budgetNoted_) {
          v_.notes.push_back(d.label() + ": communicators larger than any job could have; ignored");
          budgetNoted_ = true;
        }
        continue;
      }
      auto [it, inserted] = groupById_.emplace(c.id, groups_.size());
      if (inserted) {
        memberBudget_ -= static_cast<uint64_t>(c.size);
        Group g;
        g.id = c.id;
        g.size = c.size;
        g.parentId = c.parentId;
        g.memberOf.assign(static_cast<size_t>(c.size), -1);
        groups_.push_back(std::move(g));
      }
      Group& g = groups_[it->second];
      if (g.name.empty()) g.name = c.name;
      if (c.size != g.size) {
        v_.notes.push_back(d.label() + " says " + commName(g) + " has " + std::to_string(c.size) +
                           " ranks, others say " + std::to_string(g.size) + "; its view is ignored");
        continue;
      }
      if (g.memberOf[static_cast<size_t>(c.rank)] >= 0) {
        const Member& other = g.members[static_cast<size_t>(g.memberOf[static_cast<size_t>(c.rank)])];
        if (other.proc != p) {
          v_.notes.push_back(commName(g) + " rank " + std::to_string(c.rank) + " is claimed by " +
                             proc(other.proc).label() + " and " + d.label() + "; the first is used");
        }
        continue;
      }
      Member m;
      m.proc = p;
      m.comm = ci;
      m.commRank = c.rank;
      m.globalRank = d.globalRank;
      g.memberOf[static_cast<size_t>(c.rank)] = static_cast<int32_t>(g.members.size());
      g.members.push_back(m);
      where_[p][ci] = {it->second, kNone};
    }
  }
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    Group& g = groups_[gi];
    g.present = g.members.size();
    for (int32_t r = 0; r < g.size; ++r) {
      if (g.memberOf[static_cast<size_t>(r)] < 0) {
        Member m;
        m.commRank = r;
        m.state = RankState::kMissing;
        g.members.push_back(m);
      }
    }
    std::sort(g.members.begin(), g.members.end(),
              [](const Member& a, const Member& b) { return a.commRank < b.commRank; });
    for (size_t k = 0; k < g.members.size(); ++k) {
      g.memberOf[static_cast<size_t>(g.members[k].commRank)] = static_cast<int32_t>(k);
      if (g.members[k].proc != kNone) where_[g.members[k].proc][g.members[k].comm] = {gi, k};
    }
  }
}

// A rank with no dump is known to its communicators only by comm rank. Its global rank is given
// when the present members fit global = a + b * commRank exactly (world and strided TP/DP groups)
// and the prediction is a rank no process claims, or when only one global rank is unaccounted for.
void Analyzer::inferMissingRanks() {
  std::set<int32_t> present;
  for (const auto& d : job_.processes) {
    if (d.globalRank >= 0) present.insert(d.globalRank);
  }
  // Ranks of the world nobody dumped. A world size is taken as given up to kMaxCommSize.
  std::set<int32_t> absent;
  int64_t absentCount = 0;
  if (job_.worldSize > 0 && job_.worldSize <= kMaxCommSize) {
    for (int32_t r = 0; r < job_.worldSize; ++r) {
      if (present.count(r)) continue;
      ++absentCount;
      if (absent.size() < kMaxListedMissing) absent.insert(r);
    }
  }
  if (absentCount > static_cast<int64_t>(absent.size())) {
    v_.notes.push_back(std::to_string(absentCount) + " ranks have no dump; the first " +
                       std::to_string(absent.size()) + " are listed");
  }
  for (auto& g : groups_) {
    if (g.present == g.members.size()) continue;
    std::vector<std::pair<int64_t, int64_t>> known;  // (comm rank, global rank)
    for (const auto& m : g.members) {
      if (m.proc != kNone && m.globalRank >= 0) known.emplace_back(m.commRank, m.globalRank);
    }
    bool linear = known.size() >= 2;
    int64_t a = 0, b = 0;
    if (linear) {
      int64_t dr = known[1].first - known[0].first;
      int64_t dg = known[1].second - known[0].second;
      linear = dr != 0 && dg % dr == 0;
      if (linear) {
        b = dg / dr;
        a = known[0].second - b * known[0].first;
        for (const auto& [cr, gr] : known) linear = linear && a + b * cr == gr;
      }
    } else if (known.size() == 1 && g.size == job_.worldSize) {
      // A world-sized communicator whose one known member has comm rank == global rank.
      linear = known[0].first == known[0].second;
      a = 0;
      b = 1;
    }
    for (auto& m : g.members) {
      if (m.proc != kNone) continue;
      if (linear) {
        int64_t guess = a + b * m.commRank;
        if (guess >= 0 && !present.count(static_cast<int32_t>(guess)) &&
            (absent.empty() || absent.count(static_cast<int32_t>(guess)))) {
          m.globalRank = static_cast<int32_t>(guess);
          continue;
        }
      }
      if (absent.size() == 1 && g.size - static_cast<int32_t>(g.present) == 1) m.globalRank = *absent.begin();
    }
  }
  for (int32_t r : absent) {
    RankRef x;
    x.rank = r;
    x.label = "rank " + std::to_string(r);
    v_.missingRanks.push_back(x);
  }
}

void Analyzer::computeFrontiers() {
  for (auto& g : groups_) {
    if (g.present == 0) continue;
    int64_t f = INT64_MAX;
    int64_t maxE = -1, minE = INT64_MAX;
    bool anyCompletion = false;
    for (const auto& m : g.members) {
      if (m.proc == kNone) continue;
      const auto& c = commOf(m);
      maxE = std::max(maxE, c.lastEnqueuedSeq);
      minE = std::min(minE, c.lastEnqueuedSeq);
      if (completionKnown(m.proc)) {
        anyCompletion = true;
        f = std::min(f, m.effCompleted + 1);
      } else {
        f = std::min(f, c.lastEnqueuedSeq + 1);
      }
    }
    if (!anyCompletion) {
      // hostOnly everywhere: only enqueue counts are known.
      if (minE == maxE) {
        if (maxE >= 0) g.frontierUnknown = true;
        continue;
      }
      f = minE + 1;
    }
    if (f > maxE) continue;  // every present rank completed everything it issued
    g.frontier = f;
    g.stalled = true;
    size_t missingBlockers = 0;
    for (auto& m : g.members) {
      if (m.proc == kNone) {
        m.state = RankState::kMissing;
        if (++missingBlockers <= kMaxMissingBlockers) g.blockers.push_back(static_cast<size_t>(&m - g.members.data()));
        continue;
      }
      const auto& d = proc(m.proc);
      const auto& c = commOf(m);
      const EntryView* e = d.findCollective(m.comm, f);
      m.error = hasError(c) || (e && (e->state == schema::EntryState::ERROR || failedResult(e->result)));
      if (c.lastEnqueuedSeq < f) {
        m.state = RankState::kNotEnqueued;
      } else if (!completionKnown(m.proc)) {
        m.state = RankState::kUnknown;
      } else if (m.effCompleted >= f) {
        m.state = RankState::kCompleted;
      } else if (!startKnown(m.proc)) {
        m.state = RankState::kPending;
      } else if (m.effStarted >= f) {
        m.state = RankState::kStarted;
      } else {
        m.state = RankState::kQueued;
      }
      if (g.frontierOp.empty() && e) g.frontierOp = enumName(e->op);
      bool blocker = m.state == RankState::kNotEnqueued || m.state == RankState::kQueued ||
                     (d.processDied && m.state != RankState::kCompleted);
      if (blocker) g.blockers.push_back(static_cast<size_t>(&m - g.members.data()));
    }
    // A rank that never issued the call (or cannot: dead, no dump) holds the collective whatever the
    // others' streams do; a rank that issued it but whose start was not seen is then no blocker
    // (its stream may be behind that very collective's predecessors, or its recorder late).
    bool hard = false;
    for (size_t b : g.blockers) {
      const Member& m = g.members[b];
      hard = hard || m.state == RankState::kNotEnqueued || m.state == RankState::kMissing ||
             (m.proc != kNone && proc(m.proc).processDied);
    }
    if (hard) {
      std::erase_if(g.blockers, [&](size_t b) {
        const Member& m = g.members[b];
        return m.state == RankState::kQueued && !proc(m.proc).processDied;
      });
    }
  }
}

void Analyzer::checkMismatches() {
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    Group& g = groups_[gi];
    int64_t lo = INT64_MAX, hi = -1, alo = -1, ahi = INT64_MAX;
    bool all = true;
    for (const auto& m : g.members) {
      if (m.proc == kNone) continue;
      const auto& c = commOf(m);
      if (c.fingerprints.empty()) {
        all = false;
        continue;
      }
      lo = std::min(lo, c.firstHeldSeq);
      hi = std::max(hi, c.lastHeldSeq());
      alo = std::max(alo, c.firstHeldSeq);
      ahi = std::min(ahi, c.lastHeldSeq());
    }
    if (all && alo <= ahi && alo >= 0) {
      g.alignedFrom = alo;
      g.alignedTo = ahi;
    }
    // The span of sequence numbers any rank holds. Rings of one communicator hold about the same
    // window, so a span far beyond the longest run comes from a damaged dump: compare inside the
    // window every rank holds instead, or not at all.
    size_t longest = 0;
    for (const auto& m : g.members) {
      if (m.proc != kNone) longest = std::max(longest, commOf(m).fingerprints.size());
    }
    const int64_t maxSpan = 4 * static_cast<int64_t>(longest) + 65536;
    if (hi >= lo && hi - lo > maxSpan) {
      if (g.alignedFrom >= 0 && g.alignedTo - g.alignedFrom <= maxSpan) {
        lo = g.alignedFrom;
        hi = g.alignedTo;
      } else {
        v_.notes.push_back(commName(g) + ": the ranks' rings hold sequence numbers too far apart to compare");
        continue;
      }
    }
    if (hi < lo) continue;
    // Member-major: each member's run is read once, sequentially; the first holder of a sequence
    // number sets the reference and anyone who differs marks it. Who is wrong is decided below by
    // counting, so which rank came first never matters.
    size_t span = static_cast<size_t>(hi - lo + 1);
    std::vector<uint32_t> refs(span, 0);
    std::vector<char> conflict(span, 0);
    bool any = false;
    for (const auto& m : g.members) {
      if (m.proc == kNone) continue;
      const auto& c = commOf(m);
      if (c.fingerprints.empty()) continue;
      // The part of this rank's run inside [lo, hi].
      int64_t from = std::max(lo, c.firstHeldSeq), to = std::min(hi, c.lastHeldSeq());
      if (from > to) continue;
      const uint32_t* fp = c.fingerprints.data() + (from - c.firstHeldSeq);
      uint32_t* ref = refs.data() + (from - lo);
      char* conf = conflict.data() + (from - lo);
      for (size_t k = 0, n = static_cast<size_t>(to - from + 1); k < n; ++k) {
        uint32_t x = fp[k];
        if (x == 0) continue;
        if (ref[k] == 0) {
          ref[k] = x;
        } else if (ref[k] != x) {
          conf[k] = 1;
          any = true;
        }
      }
    }
    if (!any) continue;
    size_t first = static_cast<size_t>(std::find(conflict.begin(), conflict.end(), 1) - conflict.begin());
    size_t nconf = static_cast<size_t>(std::count(conflict.begin(), conflict.end(), 1));
    int64_t seq = lo + static_cast<int64_t>(first);
    g.mismatchSeq = seq;
    // Votes at the first mismatched sequence number.
    std::map<uint32_t, std::vector<size_t>> votes;
    for (size_t k = 0; k < g.members.size(); ++k) {
      const auto& m = g.members[k];
      if (m.proc == kNone) continue;
      uint32_t x = commOf(m).fingerprintAt(seq);
      if (x != 0) votes[x].push_back(k);
    }
    size_t best = 0, bestCount = 0;
    for (const auto& [fp, who] : votes) {
      if (who.size() > best) {
        best = who.size();
        bestCount = 1;
      } else if (who.size() == best) {
        ++bestCount;
      }
    }
    uint32_t majority = 0;
    if (bestCount == 1) {
      for (const auto& [fp, who] : votes) {
        if (who.size() == best) majority = fp;
      }
    } else {
      // A tie (two ranks, or two even halves): ask the sibling communicators made by the same split
      // (other TP or DP groups), which ran the same program, what they called at this seq.
      std::map<uint32_t, size_t> outside;
      for (size_t oi = 0; oi < groups_.size(); ++oi) {
        const Group& o = groups_[oi];
        if (oi == gi || o.size != g.size || o.parentId != g.parentId) continue;
        for (const auto& m : o.members) {
          if (m.proc == kNone) continue;
          uint32_t x = commOf(m).fingerprintAt(seq);
          if (x != 0 && votes.count(x)) ++outside[x];
        }
      }
      size_t top = 0, topCount = 0;
      for (const auto& [fp, n] : outside) {
        if (n > top) {
          top = n;
          topCount = 1;
          majority = fp;
        } else if (n == top) {
          ++topCount;
        }
      }
      if (topCount != 1) majority = 0;
    }
    auto sigText = [&](size_t k, uint32_t fp) {
      const CallSignature* s = commOf(g.members[k]).signatureFor(fp);
      return s ? s->describe() : std::string("a different call");
    };
    std::vector<size_t> minority, others;
    for (const auto& [fp, who] : votes) {
      bool isMajority = majority != 0 && fp == majority;
      for (size_t k : who) (isMajority ? others : minority).push_back(k);
    }
    std::string majorityText =
        majority != 0 ? sigText(votes[majority][0], majority) + " (" + std::to_string(votes[majority].size()) + " ranks)"
                      : std::string();
    std::string counted = nconf > 1 ? "; " + std::to_string(nconf) + " sequence numbers differ in all" : "";
    for (size_t k : minority) {
      const Member& m = g.members[k];
      Suspect s;
      s.who = ref(m.proc);
      // A ring read back from a dead process's shared memory may hold half-written entries: its
      // word on what was called ranks below the death itself.
      s.fromSalvage = proc(m.proc).reason == schema::DumpReason::SALVAGED;
      s.comm = g.id;
      s.commRank = m.commRank;
      s.seq = seq;
      uint32_t mine = commOf(m).fingerprintAt(seq);
      const CallSignature* sig = commOf(m).signatureFor(mine);
      s.op = sig ? enumName(sig->op) : "";
      s.reason = Reason::kMismatch;
      if (majority != 0) {
        s.evidence = "at seq " + std::to_string(seq) + " on " + commName(g) + " it called " + sigText(k, mine) +
                     "; its peers called " + majorityText + counted;
      } else {
        std::string theirs;
        for (const auto& [fp, who] : votes) {
          if (fp == mine) continue;
          if (!theirs.empty()) theirs += "; ";
          theirs += sigText(who[0], fp) + " (" + std::to_string(who.size()) + (who.size() == 1 ? " rank)" : " ranks)");
        }
        s.evidence = "at seq " + std::to_string(seq) + " on " + commName(g) + " it called " + sigText(k, mine) +
                     "; the others called " + theirs + "; no majority says which is right" + counted;
      }
      for (size_t o : minority) {
        if (o != k) s.with.push_back(ref(g.members[o].proc));
      }
      if (minority.size() > 8) s.with.resize(8);
      s.blocking = static_cast<int64_t>(g.present);
      extra_.push_back(std::move(s));
    }
  }
}

int32_t Analyzer::p2pBalance(const Group& g, const Member& m) const {
  (void)g;
  int64_t b = 0;
  for (const auto& k : commOf(m).p2p) b += (k.send ? 1 : -1) * (k.lastEnqueuedSeq + 1);
  return static_cast<int32_t>(std::clamp<int64_t>(b, INT32_MIN, INT32_MAX));
}

void Analyzer::matchP2P() {
  for (const auto& g : groups_) {
    std::set<std::pair<int32_t, int32_t>> seen;
    for (const auto& m : g.members) {
      if (m.proc == kNone) continue;
      for (const auto& k : commOf(m).p2p) {
        if (k.peer < 0 || k.peer >= g.size) continue;
        int32_t src = k.send ? m.commRank : k.peer;
        int32_t dst = k.send ? k.peer : m.commRank;
        if (!seen.insert({src, dst}).second) continue;
        const Member& ms = g.members[static_cast<size_t>(g.memberOf[static_cast<size_t>(src)])];
        const Member& md = g.members[static_cast<size_t>(g.memberOf[static_cast<size_t>(dst)])];
        if (ms.proc == kNone || md.proc == kNone) continue;  // the other side is unknown
        const P2PCounterView* s = commOf(ms).p2pCounter(dst, true);
        const P2PCounterView* r = commOf(md).p2pCounter(src, false);
        int64_t sends = s ? s->lastEnqueuedSeq + 1 : 0;
        int64_t recvs = r ? r->lastEnqueuedSeq + 1 : 0;
        int64_t done = std::min(s ? s->lastCompletedSeq + 1 : 0, r ? r->lastCompletedSeq + 1 : 0);
        if (sends == recvs) continue;
        P2PLeftover l;
        l.comm = g.id;
        l.srcCommRank = src;
        l.dstCommRank = dst;
        l.src = ref(ms.proc);
        l.dst = ref(md.proc);
        l.sends = sends;
        l.receives = recvs;
        l.pending = std::max<int64_t>(0, std::min(sends, recvs) - done);
        v_.p2pLeftovers.push_back(l);
        // A call completed with no counterpart at all cannot be a matter of time: report it even
        // when nothing hangs.
        bool sentUnmatched = s && sends > recvs && s->lastCompletedSeq + 1 > recvs && completionKnown(ms.proc);
        bool recvUnmatched = r && recvs > sends && r->lastCompletedSeq + 1 > sends && completionKnown(md.proc);
        if (sentUnmatched || recvUnmatched) {
          size_t extraSide = sentUnmatched ? ms.proc : md.proc;
          size_t otherSide = sentUnmatched ? md.proc : ms.proc;
          Suspect x;
          x.who = ref(extraSide);
          x.comm = g.id;
          x.commRank = sentUnmatched ? src : dst;
          x.seq = sentUnmatched ? recvs : sends;
          x.op = sentUnmatched ? "send" : "recv";
          x.reason = Reason::kUnmatchedP2P;
          x.evidence = std::string(sentUnmatched ? "completed send #" : "completed receive #") +
                       std::to_string(x.seq) + " on " + commName(g) + (sentUnmatched ? " to " : " from ") +
                       ref(otherSide).label + ", which issued only " + std::to_string(sentUnmatched ? recvs : sends) +
                       (sentUnmatched ? " matching receives" : " matching sends");
          x.with.push_back(ref(otherSide));
          extra_.push_back(std::move(x));
        }
      }
    }
  }
}

// What the call `e` of process p waits for, as nodes.
std::vector<Node> Analyzer::waitTargets(size_t p, const EntryView& e, std::string* why,
                                         size_t* transportGroup) const {
  auto [gi, mi] = where_[p][e.comm];
  if (gi == kNone) return {};
  const Group& h = groups_[gi];
  std::vector<Node> out;
  if (!e.isP2P()) {
    if (!h.stalled) return {};
    for (size_t b : h.blockers) {
      if (b == mi) {
        // p is itself behind on h: what holds it there is the next step.
        Node n{gi, mi, h.members[mi].state, false, h.frontier, -1, -1};
        *why = "waits in " + describeEntry(p, e) + ", behind its own unfinished call #" + std::to_string(h.frontier);
        return {n};
      }
    }
    for (size_t b : h.blockers) out.push_back({gi, b, h.members[b].state, false, h.frontier, -1, -1});
    if (!out.empty()) {
      std::string names;
      for (size_t k = 0; k < out.size() && k < 4; ++k) {
        names += (k ? ", " : "") + refMember(h, h.members[out[k].member]).label;
      }
      if (out.size() > 4) names += " and " + std::to_string(out.size() - 4) + " more";
      *why = "waits in " + describeEntry(p, e) + " for " + names;
    } else {
      *why = "waits in " + describeEntry(p, e) + "; every rank started it";
      *transportGroup = gi;
    }
    return out;
  }
  int32_t peer = e.root;
  if (peer < 0 || peer >= h.size) return {};
  const Member& pm = h.members[static_cast<size_t>(h.memberOf[static_cast<size_t>(peer)])];
  size_t pmi = static_cast<size_t>(h.memberOf[static_cast<size_t>(peer)]);
  bool send = e.op == schema::Op::SEND;
  std::string what = send ? "receive" : "send";
  if (pm.proc == kNone) {
    *why = "waits in " + describeEntry(p, e) + " for its peer, which left no dump";
    return {{gi, pmi, RankState::kMissing, true, e.p2pSeq, h.members[mi].commRank, e.seq}};
  }
  const auto& pd = proc(pm.proc);
  const P2PCounterView* k = commOf(pm).p2pCounter(h.members[mi].commRank, !send);
  int64_t enq = k ? k->lastEnqueuedSeq : -1;
  int64_t started = k ? k->lastStartedSeq : -1;
  // The peer issued the counterpart, and a collective it issued after that point started: the
  // counterpart ran (one communicator's operations run in order).
  if (enq >= e.p2pSeq && pm.effStarted > e.seq) started = std::max(started, e.p2pSeq);
  if (enq < e.p2pSeq) {
    *why = "waits in " + describeEntry(p, e) + "; " + pd.label() + " never issued the matching " + what;
    return {{gi, pmi, RankState::kNotEnqueued, true, e.p2pSeq, h.members[mi].commRank, e.seq}};
  }
  if (startKnown(pm.proc) && started < e.p2pSeq) {
    *why = "waits in " + describeEntry(p, e) + "; " + pd.label() + " issued the matching " + what +
           " but its stream never started it";
    return {{gi, pmi, RankState::kQueued, true, e.p2pSeq, h.members[mi].commRank, e.seq}};
  }
  *why = "waits in " + describeEntry(p, e) + "; both sides started it";
  *transportGroup = gi;
  return {};
}

// What an unfinished call `e` of process p waits for. Calls of one ncclGroupStart/End launch and
// finish together, so the whole group is asked, and the member that waits on someone answers.
std::vector<Node> Analyzer::heldBy(size_t p, const EntryView& e, std::string* why, size_t* transportGroup) const {
  std::vector<const EntryView*> calls{&e};
  if (e.groupId != 0) {
    for (const auto& x : proc(p).entries) {
      if (&x != &e && x.groupId == e.groupId && x.index > e.index && isPending(proc(p), x)) calls.push_back(&x);
    }
  }
  std::string firstWhy;
  size_t firstTransport = kNone;
  for (const EntryView* c : calls) {
    std::string w;
    size_t t = kNone;
    auto out = waitTargets(p, *c, &w, &t);
    if (!out.empty()) {
      *why = describeEntry(p, *c) + (c == &e ? "" : " (in one group with " + describeEntry(p, e) + ")") + ", which " + w;
      return out;
    }
    if (firstWhy.empty()) {
      firstWhy = describeEntry(p, *c) + ", which " + w;
      firstTransport = t;
    }
  }
  *why = firstWhy;
  *transportGroup = firstTransport;
  return {};
}

// Edges out of a node: why this rank has not done the call its peers wait in.
std::vector<Node> Analyzer::next(const Node& n, std::string* why, size_t* transportGroup) const {
  *transportGroup = kNone;
  const Group& g = groups_[n.group];
  const Member& m = g.members[n.member];
  if (m.proc == kNone || proc(m.proc).processDied) return {};
  const auto& d = proc(m.proc);
  if (n.state == RankState::kNotEnqueued) {
    if (!completionKnown(m.proc)) return {};
    const EntryView* e = earliestPending(m.proc, nullptr, false);
    if (!e) return {};
    std::string w;
    auto out = heldBy(m.proc, *e, &w, transportGroup);
    *why = "never issued it: its host is held by " + w;
    return out;
  }
  if (n.state == RankState::kQueued) {
    const EntryView* mine = n.p2p ? d.findP2P(m.comm, n.peer, false, n.seq) : d.findCollective(m.comm, n.seq);
    if (n.p2p && !mine) mine = d.findP2P(m.comm, n.peer, true, n.seq);
    // The ring no longer holds the call itself: everything it holds is newer, so nothing it holds
    // can be in front of it.
    if (!mine) return {};
    // Any earlier unfinished call can hold it: frameworks order each communicator's stream after
    // the compute stream with events, so a stuck call on one stream holds the next one's work.
    const EntryView* e = earliestPending(m.proc, mine, false);
    if (!e || (mine && e->index == mine->index)) return {};
    std::string w;
    auto out = heldBy(m.proc, *e, &w, transportGroup);
    *why = "issued it, but its stream is held by " + w;
    return out;
  }
  return {};
}

std::string Analyzer::nodeText(const Node& n) const {
  const Group& g = groups_[n.group];
  std::string call = n.p2p ? std::string("p2p #") + std::to_string(n.seq) : g.frontierOp.empty()
                                                                              ? "call #" + std::to_string(n.seq)
                                                                              : g.frontierOp + " #" + std::to_string(n.seq);
  return call + " on " + commName(g);
}

ChainLink Analyzer::link(const Node& n, const std::string& why) const {
  const Group& g = groups_[n.group];
  const Member& m = g.members[n.member];
  ChainLink l;
  l.who = refMember(g, m);
  l.comm = g.id;
  l.commRank = m.commRank;
  l.seq = n.seq;
  l.op = n.p2p ? "send/recv" : g.frontierOp;
  l.state = n.state;
  l.why = why;
  return l;
}

void Analyzer::classifyRoot(const Node& n, Root* r) const {
  const Group& g = groups_[n.group];
  const Member& m = g.members[n.member];
  r->node = n;
  std::string call = nodeText(n);
  // When did its peers start waiting? The earliest enqueue of this call among the ranks that did it.
  int64_t waitSince = 0, waitFor = 0;
  size_t waiting = 0;
  if (!n.p2p) {
    for (const auto& o : g.members) {
      if (o.proc == kNone || o.commRank == m.commRank) continue;
      if (o.state == RankState::kStarted || o.state == RankState::kPending || o.state == RankState::kQueued ||
          o.state == RankState::kUnknown || o.state == RankState::kCompleted) {
        ++waiting;
        if (const EntryView* e = proc(o.proc).findCollective(o.comm, n.seq)) {
          int64_t w = proc(o.proc).wallNs(e->enqueueMonoNs);
          if (w > 0 && (waitSince == 0 || w < waitSince)) {
            waitSince = w;
            waitFor = proc(o.proc).dumpMonoNs - e->enqueueMonoNs;
          }
        }
      }
    }
  }
  std::string peersText;
  if (!n.p2p && waiting > 0) {
    peersText = std::to_string(waiting) + (waiting == 1 ? " peer waits" : " peers wait") + " in " + call;
    if (waitSince > 0) peersText += " since " + fmtWall(waitSince) + " (" + fmtSeconds(waitFor) + " before their dump)";
  } else if (n.p2p) {
    const Member& w = g.members[static_cast<size_t>(g.memberOf[static_cast<size_t>(n.peer)])];
    peersText = refMember(g, w).label + " waits in its p2p #" + std::to_string(n.seq) + " with it on " + commName(g);
  }

  if (m.proc == kNone) {
    r->reason = Reason::kMissing;
    r->evidence = "left no dump (" + commName(g) + " rank " + std::to_string(m.commRank) +
                  (m.globalRank >= 0 ? "" : ", global rank unknown") + "); " + peersText;
    bool allStarted = !n.p2p;
    for (const auto& o : g.members) {
      if (o.proc != kNone && o.state != RankState::kStarted && o.state != RankState::kCompleted) allStarted = false;
    }
    if (allStarted && g.present > 0) r->evidence += "; every rank with a dump started it";
    return;
  }
  const auto& d = proc(m.proc);
  const auto& c = commOf(m);
  std::string last;
  if (const EntryView* e = d.newest()) {
    last = "its last call was " + describeEntry(m.proc, *e) + " (" + enumName(e->state) + ")";
    if (d.dumpMonoNs > 0 && e->enqueueMonoNs > 0) last += ", " + fmtSeconds(d.dumpMonoNs - e->enqueueMonoNs) + " before its dump";
  }
  if (d.processDied) {
    r->reason = Reason::kDied;
    r->evidence = "the process died (its ring was salvaged from shared memory" +
                  (d.detail.empty() ? std::string() : ": " + d.detail) + "); it was at " + rankStateName(n.state) +
                  " in " + call + "; " + peersText + (last.empty() ? "" : "; " + last);
    return;
  }
  const EntryView* mine = n.p2p ? nullptr : d.findCollective(m.comm, n.seq);
  bool err = hasError(c) || (mine && (mine->state == schema::EntryState::ERROR || failedResult(mine->result)));
  if (err) {
    r->reason = Reason::kError;
    int32_t code = c.lastAsyncError != 0 ? c.lastAsyncError : (mine ? mine->result : 0);
    r->errorCode = code;
    r->errorWallNs = d.wallNs(c.lastAsyncErrorMonoNs);
    r->evidence = "its " + commName(g) + " reported " + std::string(ncclResultName(code)) + " (" +
                  std::to_string(code) + ")" +
                  (c.lastAsyncErrorMonoNs > 0 ? " at " + fmtWall(d.wallNs(c.lastAsyncErrorMonoNs)) : "") +
                  ", state " + enumName(c.state) + "; " + peersText;
    return;
  }
  if (n.p2p && n.state == RankState::kNotEnqueued) {
    // It never issued the counterpart. If it has since gone past the point where the waiting call
    // sits (issued later collectives on this communicator), it skipped it: unmatched.
    const Member& w = g.members[static_cast<size_t>(g.memberOf[static_cast<size_t>(n.peer)])];
    if (c.lastEnqueuedSeq > n.afterSeq) {
      r->reason = Reason::kUnmatchedP2P;
      r->evidence = "never issued the counterpart of " + refMember(g, w).label + "'s p2p #" + std::to_string(n.seq) +
                    " on " + commName(g) + " although it went on to collective #" +
                    std::to_string(c.lastEnqueuedSeq) + " (the call waits after #" + std::to_string(n.afterSeq) +
                    ")" + (last.empty() ? "" : "; " + last);
      if (w.proc != kNone) r->withProcs.push_back(w.proc);
      return;
    }
  }
  if (n.state == RankState::kQueued) {
    r->reason = Reason::kDeviceStall;
    r->evidence = "issued " + call +
                  (mine && mine->enqueueMonoNs > 0 ? " at " + fmtWall(d.wallNs(mine->enqueueMonoNs)) : "") +
                  " but its GPU stream never started it, and no call of its own holds that stream; " + peersText;
    return;
  }
  r->reason = Reason::kHostStall;
  std::string held = completionKnown(m.proc) ? "it has no unfinished call on any communicator"
                                         : "its timing mode (hostOnly) cannot tell whether a call of its own holds it";
  r->evidence = "never issued " + call + "; " + held + "; " + peersText + (last.empty() ? "" : "; " + last);
}

size_t Analyzer::rootIndex(const Node& n) {
  Node key = n;
  auto it = rootOf_.find(key);
  if (it != rootOf_.end()) return it->second;
  Root r;
  classifyRoot(n, &r);
  roots_.push_back(std::move(r));
  rootOf_[key] = roots_.size() - 1;
  return roots_.size() - 1;
}

void Analyzer::classifyCycle(const std::vector<Node>& cycle) {
  // Ranks wait on each other in a circle: no one is late, the calls disagree. With a point-to-point
  // call in the circle it is a send or receive without counterpart, otherwise calls in a different
  // order. The rank whose point-to-point traffic is out of balance with its peers' goes first.
  bool p2p = false;
  for (const auto& n : cycle) p2p = p2p || n.p2p;
  std::vector<const Node*> order;
  for (const auto& n : cycle) order.push_back(&n);
  if (p2p) {
    std::stable_sort(order.begin(), order.end(), [&](const Node* a, const Node* b) {
      auto dev = [&](const Node* x) {
        const Group& g = groups_[x->group];
        const Member& m = g.members[x->member];
        if (m.proc == kNone) return 0;
        std::map<int32_t, int> hist;
        for (const auto& o : g.members) {
          if (o.proc != kNone) ++hist[p2pBalance(g, o)];
        }
        int32_t mode = 0;
        int best = -1;
        for (auto [bal, cnt] : hist) {
          if (cnt > best) {
            best = cnt;
            mode = bal;
          }
        }
        return p2pBalance(g, m) != mode ? 1 : 0;
      };
      int da = dev(a), db = dev(b);
      if (da != db) return da > db;
      return a->p2p && !b->p2p;
    });
  }
  // One suspect for the circle: the most likely rank first, the others named with it.
  const Node* lead = nullptr;
  for (const Node* n : order) {
    if (groups_[n->group].members[n->member].proc != kNone) {
      lead = n;
      break;
    }
  }
  if (!lead) lead = order.front();
  Root r;
  r.node = *lead;
  r.reason = p2p ? Reason::kUnmatchedP2P : Reason::kMismatch;
  std::string circle;
  for (const auto& c : cycle) {
    if (!circle.empty()) circle += " -> ";
    circle += refMember(groups_[c.group], groups_[c.group].members[c.member]).label + " (" + nodeText(c) + ")";
  }
  const Member& lm = groups_[lead->group].members[lead->member];
  for (const Node* n : order) {
    const Member& o = groups_[n->group].members[n->member];
    if (o.proc != kNone && o.proc != lm.proc &&
        std::find(r.withProcs.begin(), r.withProcs.end(), o.proc) == r.withProcs.end()) {
      r.withProcs.push_back(o.proc);
    }
  }
  std::string detail;
  if (p2p) {
    // Say which send or receive has no counterpart.
    for (const auto& c : cycle) {
      if (!c.p2p) continue;
      const Group& g = groups_[c.group];
      const Member& lacking = g.members[c.member];
      const Member& waiter = g.members[static_cast<size_t>(g.memberOf[static_cast<size_t>(c.peer)])];
      r.p2pOp = true;
      r.p2pSeq = c.seq;
      detail = refMember(g, waiter).label + "'s p2p #" + std::to_string(c.seq) + " with " +
               refMember(g, lacking).label + " on " + commName(g) + " has no counterpart";
      for (const auto& l : v_.p2pLeftovers) {
        if (l.comm != g.id) continue;
        bool match = (l.srcCommRank == waiter.commRank && l.dstCommRank == lacking.commRank) ||
                     (l.dstCommRank == waiter.commRank && l.srcCommRank == lacking.commRank);
        if (match) {
          detail += " (" + l.src.label + " issued " + std::to_string(l.sends) + " sends to " + l.dst.label + ", which issued " +
                    std::to_string(l.receives) + " receives)";
        }
      }
      break;
    }
  }
  r.evidence = (p2p ? "a send or receive without counterpart" : "calls issued in a different order") +
               (detail.empty() ? std::string() : ": " + detail) + "; these ranks wait on each other in a circle: " + circle;
  r.chain = cycle;
  roots_.push_back(std::move(r));
  for (const auto& c : cycle) rootOf_[c] = roots_.size() - 1;
}

void Analyzer::dfs(const Node& n, std::vector<Node>& path, std::set<Node>& onPath, size_t headGroup) {
  if (path.size() > kMaxChain) return;
  path.push_back(n);
  auto record = [&](size_t ri) {
    Root& r = roots_[ri];
    r.waitingGroups.insert(headGroup);
    for (const auto& x : path) r.waitingGroups.insert(x.group);
    if (path.size() > r.chain.size() && r.reason != Reason::kMismatch && r.reason != Reason::kUnmatchedP2P) {
      r.chain = path;
    }
  };
  auto mem = memo_.find(n);
  if (mem != memo_.end()) {
    for (size_t ri : mem->second) record(ri);
    path.pop_back();
    return;
  }
  onPath.insert(n);
  std::string why;
  size_t transport = kNone;
  auto outs = next(n, &why, &transport);
  whyOf_[n] = why;
  std::vector<size_t> found;
  if (outs.empty()) {
    if (transport != kNone) {
      // The chain ends in a call every rank started: the transport, not a rank.
      transportGroups_.insert(transport);
    } else {
      size_t ri = rootIndex(n);
      record(ri);
      found.push_back(ri);
    }
  }
  for (const auto& o : outs) {
    if (onPath.count(o)) {
      auto start = std::find_if(path.begin(), path.end(), [&](const Node& x) { return !(x < o) && !(o < x); });
      std::vector<Node> cycle(start, path.end());
      if (cycle.size() == 1) {
        // A rank waiting on itself means the ring could not say what holds it: it is the root.
        size_t ri = rootIndex(o);
        record(ri);
        found.push_back(ri);
        continue;
      }
      size_t before = roots_.size();
      bool known = false;
      for (const auto& c : cycle) known = known || rootOf_.count(c);
      if (!known) classifyCycle(cycle);
      for (const auto& c : cycle) {
        auto it = rootOf_.find(c);
        if (it != rootOf_.end()) {
          record(it->second);
          found.push_back(it->second);
        }
      }
      (void)before;
      continue;
    }
    size_t mark = roots_.size();
    (void)mark;
    dfs(o, path, onPath, headGroup);
    auto it = memo_.find(o);
    if (it != memo_.end()) found.insert(found.end(), it->second.begin(), it->second.end());
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  memo_[n] = found;
  onPath.erase(n);
  path.pop_back();
}

void Analyzer::followChains() {
  // Heads first: stalled communicators whose blockers nobody else's chain reaches, so the chain a
  // root keeps is the longest one.
  std::vector<size_t> order;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    if (groups_[gi].stalled) order.push_back(gi);
  }
  std::vector<Node> path;
  std::set<Node> onPath;
  for (size_t gi : order) {
    for (size_t b : groups_[gi].blockers) {
      const Member& m = groups_[gi].members[b];
      Node n{gi, b, m.state, false, groups_[gi].frontier, -1, -1};
      path.clear();
      onPath.clear();
      dfs(n, path, onPath, gi);
    }
  }
  // Stalled communicators where every rank started the call (and chains ending in one): the
  // transport. Ranks whose communicator reported an error are named.
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const Group& g = groups_[gi];
    if (!g.stalled || !g.blockers.empty()) continue;
    transportGroups_.insert(gi);
  }
  for (size_t gi : transportGroups_) {
    const Group& g = groups_[gi];
    bool any = false;
    for (const auto& m : g.members) {
      if (m.proc == kNone || !m.error) continue;
      any = true;
      const auto& c = commOf(m);
      Suspect s;
      s.who = ref(m.proc);
      s.comm = g.id;
      s.commRank = m.commRank;
      s.seq = g.frontier;
      s.op = g.frontierOp;
      s.reason = Reason::kError;
      int32_t code = c.lastAsyncError;
      const EntryView* e = proc(m.proc).findCollective(m.comm, g.frontier);
      if (code == 0 && e) code = e->result;
      s.errorCode = code;
      s.errorWallNs = proc(m.proc).wallNs(c.lastAsyncErrorMonoNs);
      s.evidence = "every rank started " + nodeText({gi, 0, RankState::kStarted, false, g.frontier, -1, -1}) +
                   " and none completed it (stuck in the transport); this rank's communicator reported " +
                   ncclResultName(code) + " (" + std::to_string(code) + "), state " + enumName(c.state);
      s.blocking = static_cast<int64_t>(g.present);
      extra_.push_back(std::move(s));
    }
    if (!any) {
      v_.notes.push_back(commName(g) + ": every rank issued " + nodeText({gi, 0, RankState::kStarted, false, g.frontier, -1, -1}) +
                         " and none completed it: stuck in the transport (network, NVLink, a peer's proxy); no rank "
                         "reported an error");
    }
  }
}

void Analyzer::collectOtherSuspects() {
  // Dead processes no chain reached still matter, unless every process died (a watchdog killing
  // the whole job says nothing about which one).
  size_t died = 0;
  for (const auto& d : job_.processes) died += d.processDied ? 1 : 0;
  for (size_t p = 0; p < job_.processes.size(); ++p) {
    const auto& d = proc(p);
    if (!d.processDied) continue;
    v_.diedRanks.push_back(ref(p));
    if (died == job_.processes.size()) continue;
    bool covered = false;
    for (const auto& r : roots_) {
      const Member& m = groups_[r.node.group].members[r.node.member];
      covered = covered || m.proc == p;
    }
    if (covered) continue;
    Suspect s;
    s.who = ref(p);
    s.reason = Reason::kDied;
    s.evidence = "the process died (its ring was salvaged from shared memory)";
    if (const EntryView* e = d.newest()) {
      s.comm = d.comms[e->comm].id;
      s.commRank = d.comms[e->comm].rank;
      s.seq = e->isP2P() ? e->p2pSeq : e->seq;
      s.op = enumName(e->op);
      s.evidence += "; its last call was " + describeEntry(p, *e) + " (" + enumName(e->state) + ")";
    }
    extra_.push_back(std::move(s));
  }
}

int priority(Reason r) {
  switch (r) {
    case Reason::kMismatch: return 0;
    case Reason::kUnmatchedP2P: return 1;
    case Reason::kDied: return 2;
    case Reason::kHostStall: return 3;
    case Reason::kDeviceStall: return 3;
    case Reason::kMissing: return 4;
    case Reason::kError: return 5;
  }
  return 9;
}

void Analyzer::finish() {
  // One suspect per rank and reason: a rank that stalls holds up each of its communicators, and
  // each of them found it. Keep the finding that holds up the most, count everything it holds up.
  std::map<std::pair<std::string, Reason>, size_t> firstOf;
  std::vector<size_t> keep;
  std::vector<std::set<size_t>> waiting;
  for (size_t ri = 0; ri < roots_.size(); ++ri) {
    const Root& r = roots_[ri];
    const Group& g = groups_[r.node.group];
    auto key = std::make_pair(refMember(g, g.members[r.node.member]).label, r.reason);
    auto it = firstOf.find(key);
    if (it == firstOf.end()) {
      firstOf.emplace(key, keep.size());
      keep.push_back(ri);
      waiting.push_back(r.waitingGroups);
      continue;
    }
    size_t k = it->second;
    waiting[k].insert(r.waitingGroups.begin(), r.waitingGroups.end());
    const Root& kept = roots_[keep[k]];
    if (r.waitingGroups.size() > kept.waitingGroups.size() ||
        (r.waitingGroups.size() == kept.waitingGroups.size() && r.chain.size() > kept.chain.size())) {
      keep[k] = ri;
    }
  }
  std::vector<Suspect> all;
  for (size_t k = 0; k < keep.size(); ++k) {
    const Root& r = roots_[keep[k]];
    const Group& g = groups_[r.node.group];
    const Member& m = g.members[r.node.member];
    Suspect s;
    s.who = refMember(g, m);
    s.comm = g.id;
    s.commRank = m.commRank;
    s.seq = r.p2pOp ? r.p2pSeq : r.node.seq;
    s.op = r.node.p2p || r.p2pOp ? "send/recv" : g.frontierOp;
    s.reason = r.reason;
    s.evidence = r.evidence;
    int64_t blocking = 0;
    for (size_t gi : waiting[k]) blocking += static_cast<int64_t>(groups_[gi].members.size());
    s.blocking = blocking;
    for (size_t p : r.withProcs) s.with.push_back(ref(p));
    s.errorCode = r.errorCode;
    s.errorWallNs = r.errorWallNs;
    if (r.chain.size() > 1) {
      for (const auto& n : r.chain) {
        auto it = whyOf_.find(n);
        s.chain.push_back(link(n, it != whyOf_.end() ? it->second : std::string()));
      }
    }
    all.push_back(std::move(s));
  }
  // A mismatch found by content and the same rank found by a cycle: keep one.
  for (auto& s : extra_) {
    bool dup = false;
    for (const auto& a : all) {
      dup = dup || (a.who.label == s.who.label && a.reason == s.reason && a.comm == s.comm);
    }
    if (!dup) all.push_back(std::move(s));
  }
  std::stable_sort(all.begin(), all.end(), [](const Suspect& a, const Suspect& b) {
    int pa = priority(a.reason) + (a.fromSalvage ? 3 : 0), pb = priority(b.reason) + (b.fromSalvage ? 3 : 0);
    if (pa != pb) return pa < pb;
    if (a.reason == Reason::kError) {
      bool ra = a.errorCode == 6, rb = b.errorCode == 6;  // ncclRemoteError: an echo
      if (ra != rb) return rb;
      if (a.errorWallNs != b.errorWallNs && a.errorWallNs > 0 && b.errorWallNs > 0) return a.errorWallNs < b.errorWallNs;
    }
    if (a.blocking != b.blocking) return a.blocking > b.blocking;
    if (a.who.rank != b.who.rank) return static_cast<uint32_t>(a.who.rank) < static_cast<uint32_t>(b.who.rank);
    return a.who.label < b.who.label;
  });
  v_.suspects = std::move(all);

  // Per-communicator reports.
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const Group& g = groups_[gi];
    CommReport c;
    c.id = g.id;
    c.name = g.name;
    c.size = g.size;
    c.frontierSeq = g.frontier;
    c.frontierOp = g.frontierOp;
    c.mismatchSeq = g.mismatchSeq;
    c.alignedFrom = g.alignedFrom;
    c.alignedTo = g.alignedTo;
    c.stalled = g.stalled;
    int64_t progressDiverge = -1;
    if (g.stalled) {
      bool differ = false;
      for (const auto& m : g.members) differ = differ || m.state != g.members[0].state;
      if (differ) progressDiverge = g.frontier;
    }
    c.divergeSeq = progressDiverge;
    if (g.mismatchSeq >= 0 && (c.divergeSeq < 0 || g.mismatchSeq < c.divergeSeq)) c.divergeSeq = g.mismatchSeq;
    bool list = g.stalled || g.mismatchSeq >= 0 || g.members.size() <= options_.maxHealthyCommRanks ||
                g.present < g.members.size();
    if (list) {
      for (const auto& m : g.members) {
        CommRankStatus r;
        r.commRank = m.commRank;
        r.who = refMember(g, m);
        r.state = g.stalled ? m.state : (m.proc == kNone ? RankState::kMissing : RankState::kCompleted);
        if (m.proc != kNone) {
          const auto& cv = commOf(m);
          r.lastEnqueuedSeq = cv.lastEnqueuedSeq;
          r.lastStartedSeq = cv.lastStartedSeq;
          r.lastCompletedSeq = cv.lastCompletedSeq;
          r.timing = enumName(proc(m.proc).timing);
          r.asyncError = cv.lastAsyncError;
          r.commState = enumName(cv.state);
        }
        c.ranks.push_back(std::move(r));
      }
    }
    if (g.stalled) {
      std::map<RankState, size_t> counts;
      for (const auto& m : g.members) ++counts[m.state];
      std::string parts;
      for (auto [st, n] : counts) parts += (parts.empty() ? "" : ", ") + std::to_string(n) + " " + rankStateName(st);
      c.summary = "stalled at " + nodeText({gi, 0, RankState::kStarted, false, g.frontier, -1, -1}) + ": " + parts;
    } else if (g.frontierUnknown) {
      c.summary = "every rank issued up to seq " + std::to_string(commOf(g.members[0].proc != kNone ? g.members[0] : g.members.back()).lastEnqueuedSeq) +
                  "; completion not measured (hostOnly timing), so a stall after that cannot be located";
      v_.notes.push_back(commName(g) + ": " + c.summary);
    } else {
      c.summary = "every call completed on every rank with a dump";
    }
    if (g.mismatchSeq >= 0) c.summary += "; calls differ from seq " + std::to_string(g.mismatchSeq);
    v_.comms.push_back(std::move(c));
  }
  // Where the suspects are first, then the other stalled communicators.
  std::set<uint64_t> suspectComms;
  for (const auto& s : v_.suspects) suspectComms.insert(s.comm);
  for (size_t gi : transportGroups_) suspectComms.insert(groups_[gi].id);
  std::stable_sort(v_.comms.begin(), v_.comms.end(), [&](const CommReport& a, const CommReport& b) {
    auto rank = [&](const CommReport& c) { return suspectComms.count(c.id) ? 0 : c.stalled ? 1 : 2; };
    return rank(a) < rank(b);
  });

  bool stalled = false;
  for (const auto& g : groups_) stalled = stalled || g.stalled;
  if (!job_.unreadable.empty()) {
    v_.status = Status::kIncomplete;
  } else if (!v_.suspects.empty() && (v_.suspects[0].reason == Reason::kMismatch ||
                                      v_.suspects[0].reason == Reason::kUnmatchedP2P)) {
    v_.status = Status::kDesync;
  } else if (stalled || !v_.suspects.empty()) {
    v_.status = Status::kHang;
  } else if (!v_.missingRanks.empty()) {
    v_.status = Status::kIncomplete;
  } else {
    v_.status = Status::kOk;
  }

  // Summary line.
  std::string sum;
  if (!v_.suspects.empty()) {
    const auto& s = v_.suspects[0];
    sum = s.who.label + ": " + reasonName(s.reason);
    if (!s.op.empty() && s.seq >= 0) sum += " in " + s.op + " #" + std::to_string(s.seq);
    if (s.comm != 0) sum += " on comm " + hexId(s.comm);
    if (!s.with.empty()) {
      sum += " (with ";
      for (size_t k = 0; k < s.with.size() && k < 3; ++k) sum += (k ? ", " : "") + s.with[k].label;
      sum += ")";
    }
  } else if (stalled) {
    sum = "stalled, and no rank is behind: stuck in the transport";
    for (size_t gi : transportGroups_) {
      sum += " at " + nodeText({gi, 0, RankState::kStarted, false, groups_[gi].frontier, -1, -1});
      if (transportGroups_.size() > 1) sum += " (and " + std::to_string(transportGroups_.size() - 1) + " more)";
      break;
    }
  } else {
    sum = "every call completed and matched";
  }
  if (v_.status == Status::kIncomplete) {
    std::string lost;
    if (!job_.unreadable.empty()) lost = std::to_string(job_.unreadable.size()) + " unreadable dump(s)";
    if (!v_.missingRanks.empty()) {
      lost += (lost.empty() ? "" : ", ") + std::to_string(v_.missingRanks.size()) + " rank(s) without a dump";
    }
    sum += " (incomplete: " + lost + ")";
  }
  v_.summary = sum;
}

Verdict Analyzer::run() {
  v_.jobId = job_.jobId;
  v_.incidentId = job_.incidentId;
  v_.unreadable = job_.unreadable;
  v_.notes = job_.notes;
  v_.ranksFound = static_cast<int64_t>(job_.processes.size());
  v_.ranksExpected = job_.worldSize;
  bool simulated = false;
  for (const auto& d : job_.processes) simulated = simulated || d.simulated;
  if (simulated) v_.notes.push_back("the dumps come from a simulated job (sim/)");
  size_t noCompletion = 0, noStart = 0;
  for (const auto& d : job_.processes) {
    noCompletion += d.completionKnown() ? 0 : 1;
    noStart += d.startKnown() ? 0 : 1;
  }
  if (noCompletion > 0) {
    v_.notes.push_back(std::to_string(noCompletion) +
                       " process(es) recorded with NCCLFR_TIMING=hostOnly: GPU completion is not known for them");
  } else if (noStart > 0) {
    v_.notes.push_back(std::to_string(noStart) +
                       " process(es) recorded with NCCLFR_TIMING=endOnly: whether a call started on the GPU is not "
                       "known for them (queued and stuck in the transport look the same)");
  }
  buildGroups();
  checkMeasured();
  inferProgress();
  inferMissingRanks();
  computeFrontiers();
  checkMismatches();
  matchP2P();
  followChains();
  collectOtherSuspects();
  finish();
  return std::move(v_);
}

}  // namespace

Verdict analyze(const Job& job, const AnalyzeOptions& options) {
  Analyzer a(job, options);
  return a.run();
}

}  // namespace ncclfr::analysis
