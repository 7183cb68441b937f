// The analysis (docs/analyzer.md explains the method). Everything here works on the model that
// load.cc built: exact counters, fingerprints and a few copied entries per process.
#include "ncclfr/analysis/analyze.h"

#include <algorithm>
#include <array>
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
#include "wording.h"

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
// At a snapshot (no dump written because of a stall, an error or an abort), calls whose peers have
// waited less than the recorder's NCCLFR_TIMEOUT are in flight, not stalled: the recorder itself
// would not have called them stalled yet. Dumps older than format 1.2 and salvaged rings do not
// carry the timeout; then this default: NCCLFR_TIMEOUT's smallest sensible value is seconds, and a
// healthy call waits milliseconds.
constexpr int64_t kInFlightDefaultNs = 1'000'000'000;
constexpr const char* kEveryP2PCompleted = "every send and receive completed";

std::string fmtSeconds(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ns) / 1e9);
  return buf;
}

// A wait or a timeout for people: milliseconds below a second ("12.5 ms"), else seconds ("1.2 s",
// "3 s" when whole).
std::string fmtWait(int64_t ns) {
  char buf[32];
  if (ns < 1'000'000'000) {
    std::snprintf(buf, sizeof buf, "%.1f ms", static_cast<double>(ns) / 1e6);
  } else if (ns % 1'000'000'000 == 0) {
    std::snprintf(buf, sizeof buf, "%lld s", static_cast<long long>(ns / 1'000'000'000));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ns) / 1e9);
  }
  return buf;
}

// a - b, saturated: times come from dumps that may be damaged or hostile.
int64_t satSub(int64_t a, int64_t b) {
  int64_t d = 0;
  if (__builtin_sub_overflow(a, b, &d)) return b < 0 ? INT64_MAX : INT64_MIN;
  return d;
}

std::string fmtWall(int64_t wallNs) {
  std::string t = utcTime(wallNs);
  return t.empty() ? "an unknown time" : t;
}

// Where a dead process's ring came from: `ncclfr salvage` writes "salvaged from PATH: ..." itself.
std::string salvageText(const ProcessDump& d) {
  if (d.detail.rfind("salvaged", 0) == 0) return "its ring was " + d.detail;
  return "its ring was salvaged from shared memory" + (d.detail.empty() ? std::string() : ": " + d.detail);
}

bool hasError(const CommView& c) {
  return c.lastAsyncError != 0 || c.state == schema::CommState::ABORTED || c.state == schema::CommState::REVOKED;
}

// ncclResult_t codes other than success and "in progress".
bool failedResult(int32_t r) { return r != 0 && r != 7; }

// A point-to-point call's op as the verdict names it (the JSON `op`).
const char* p2pOpName(bool send) { return send ? "send" : "recv"; }

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
  int32_t peer = -1;     // p2p: the comm rank on the other side (the one that waits for this one)
  int64_t afterSeq = -1; // p2p: the waiting call's collective position (Entry.seq)
  bool send = false;     // p2p: this rank's side is a send (else a recv)
  bool operator<(const Node& o) const {
    return std::tie(group, member, p2p, seq, peer, send) < std::tie(o.group, o.member, o.p2p, o.seq, o.peer, o.send);
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
  // The call the suspect is named for, when it is not node's own: in a circle of waits with a
  // send/recv in it, the send or recv without counterpart (of this rank's, on its communicator).
  // Comm, comm rank, seq and op all come from one node, so they name one call.
  bool hasCall = false;
  Node call;
  int64_t waitSince = 0;               // earliest wall-clock enqueue of the call among its waiting peers
  std::set<size_t> waitingGroups;      // stalled groups whose blockers lead here
  const Node& named() const { return hasCall ? call : node; }
};

// A send/recv pair a chain ended in: both sides started it, neither completed it.
struct StuckPair {
  size_t group = 0;
  int32_t src = -1, dst = -1;  // comm ranks
  int64_t p2pSeq = -1;
  bool operator<(const StuckPair& o) const {
    return std::tie(group, src, dst, p2pSeq) < std::tie(o.group, o.src, o.dst, o.p2pSeq);
  }
};

// How a wait ends when no rank holds it.
struct WaitEnd {
  size_t transportGroup = kNone;  // a collective every rank started: the transport
  bool stuck = false;             // a send/recv both sides started: the transport (pair)
  StuckPair pair;
  bool unknown = false;           // a call whose GPU progress was not measured: cannot tell
};

// What the analysis knows of a kept call's GPU progress: recorded, or proved by other calls.
enum Seen : uint8_t { kSeenNone = 0, kSeenStarted = 1, kSeenCompleted = 2 };

// The inferences that correct a recorder's view (docs/analyzer.md, "Peers' proof of progress").
enum class Rule { kCommOrder, kStreamOrder, kGroup, kPeers, kDelivered };
constexpr size_t kRules = 5;
constexpr size_t kExamplesPerRule = 4;

// Later evidence on one communicator or stream while scanning a process's calls newest first: was
// something seen, and was any of it outside a given ncclGroup (calls of one group launch together,
// so one member is no evidence of another member's completion)?
struct LaterEvidence {
  bool ungrouped = false;
  uint32_t g1 = 0, g2 = 0;  // up to two distinct group ids seen
  void add(uint32_t g) {
    if (g == 0) {
      ungrouped = true;
    } else if (g1 == 0 || g1 == g) {
      g1 = g;
    } else if (g2 == 0) {
      g2 = g;
    }
  }
  bool any() const { return ungrouped || g1 != 0; }
  bool outside(uint32_t g) const { return ungrouped || (g1 != 0 && (g == 0 || g1 != g || g2 != 0)); }
};

// A suspect and the call in question as the summary line names it, when its op and seq do not say
// enough ("send #5 to rank 3 on comm X (pp)" where the suspect's op is "send/recv"); "" otherwise.
struct Finding {
  Suspect suspect;
  std::string call;
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
  // A member of g by its global rank ("rank 9", "node3:4242"), for sentences that also name the
  // communicator; "comm rank 3" only for a rank without a dump whose global rank is not known.
  std::string peerLabel(const Group& g, int32_t commRank) const;
  // The same member as a RankRef (the label "comm rank 3" when nothing better is known).
  RankRef peerRef(const Group& g, int32_t commRank) const;
  bool isPending(const ProcessDump& p, const EntryView& e) const;
  // What a process's recorder measured: its timing mode, unless its own counters contradict it
  // (checkMeasured).
  bool completionKnown(size_t p) const { return timing_[p] != schema::TimingMode::HOST_ONLY; }
  bool startKnown(size_t p) const { return timing_[p] == schema::TimingMode::FULL; }
  void checkMeasured();
  bool isPendingAlone(size_t p, const EntryView& e, bool peersProve) const;
  const EntryView* earliestPending(size_t p, const EntryView* before, bool sameStream) const;
  std::string describeEntry(size_t p, const EntryView& e) const;
  // How far a kept call got, as the dump and the inferences say, for people ("completed", "not
  // started on the GPU", "GPU progress not measured").
  std::string entryStateText(size_t p, const EntryView& e) const;

  // --- progress (inferProgress): the recorders' view, corrected by what other calls prove
  struct P2PProgress {
    int64_t started = -1;
    int64_t completed = -1;
    int64_t delivered = -1;  // sends: the peer's matching receive completed
  };
  void inferProgress();
  bool syncFromCounters(size_t p);
  bool syncToCounters(size_t p);
  bool commOrder(size_t p);
  bool streamOrder(size_t p);
  bool groupOrder(size_t p);
  bool peersCompleted();
  void inferDelivered();
  void raiseEntry(size_t p, size_t k, Seen to, Rule rule);
  bool raiseCompleted(Member& m, int64_t seq, Rule rule, bool log);
  template <typename F>
  void logInference(Rule rule, F&& what);
  void addInferenceNotes();
  size_t keptIndex(size_t p, const EntryView& e) const {
    return static_cast<size_t>(&e - proc(p).entries.data());
  }
  Seen seenOf(size_t p, const EntryView& e) const { return static_cast<Seen>(seen_[p][keptIndex(p, e)]); }
  // An untracked call nothing proved started: its start and completion are not known.
  bool untrackedUnknown(size_t p, const EntryView& e) const {
    return e.state == schema::EntryState::UNTRACKED && seenOf(p, e) == kSeenNone;
  }
  const P2PProgress* p2pProgress(size_t p, uint32_t comm, int32_t peer, bool send) const;
  // Did anything process p issued after e start or complete (on any stream)?
  bool laterProgress(size_t p, const EntryView& e) const;

  // --- passes
  void buildGroups();
  void inferMissingRanks();
  void computeFrontiers();
  void checkMismatches();
  void matchP2P();
  void checkSnapshot();
  void followChains();
  void collectOtherSuspects();
  // How g's sends and receives stand, for its summary: "" when none was issued, kEveryP2PCompleted,
  // or how many did not complete with an example ("8 sends and receives not completed: ...").
  std::string p2pAccount(size_t gi) const;
  // A dump written because of a stall, an error or an abort, or a process that died (the one of the
  // rank that triggered the incident when there is one); null when the dumps say nothing went wrong.
  const ProcessDump* alarmDump() const;
  void finish();

  // --- wait-for graph
  std::vector<Node> next(const Node& n, std::string* why, WaitEnd* end) const;
  std::vector<Node> waitTargets(size_t p, const EntryView& e, std::string* why, WaitEnd* end, int depth = 0) const;
  std::vector<Node> heldBy(size_t p, const EntryView& e, std::string* why, WaitEnd* end) const;
  void classifyRoot(const Node& n, Root* r) const;
  void classifyCycle(const std::vector<Node>& cycle);
  size_t rootIndex(const Node& n);
  void dfs(const Node& n, std::vector<Node>& path, std::set<Node>& onPath, size_t headGroup);
  ChainLink link(const Node& n, const std::string& why) const;
  std::string nodeText(const Node& n) const;
  // The call of n's rank that n stands for ("allReduce #41", "send #7 to rank 3"), without the
  // communicator.
  std::string callText(const Node& n) const;
  // The call a waiting peer (or, in the same program, a peer of a sibling communicator) made for
  // root r's node, in process w's kept entries.
  const EntryView* witnessEntry(size_t w, const Root& r) const;
  // For two calls one rank never issued: true when its peers show `a` comes first in the program.
  bool issuedBefore(const Root& a, const Root& b) const;

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
  std::map<size_t, std::set<size_t>> transportWaiters_;  // ... and the other stalled groups whose chains lead there
  std::map<Node, std::set<size_t>> memoTransport_;       // node -> transport groups it leads to
  std::set<size_t> transportUnsure_;           // ... where some rank's start of the call was not measured
  std::set<StuckPair> stuckPairs_;            // chains that end in a send/recv both sides started
  std::map<size_t, std::string> unknownEnds_;  // process -> why: chains that end where progress is unknown
  std::vector<Finding> extra_;                // mismatch, died, error and p2p suspects outside chains
  std::set<size_t> inFlight_;                 // groups whose frontier was only in flight at a snapshot
  int64_t inFlightLongestNs_ = 0;             // ... the longest any rank had waited there
  std::string inFlightUnder_;                 // ... and the threshold it was judged by, for people
  std::vector<schema::TimingMode> timing_;
  uint64_t memberBudget_ = uint64_t{1} << 24;  // comm-rank slots over all communicators
  bool budgetNoted_ = false;

  // per process, per kept entry: Seen
  std::vector<std::vector<uint8_t>> seen_;
  // per process, per comm index, parallel to CommView::p2p
  std::vector<std::vector<std::vector<P2PProgress>>> p2p_;
  // per process: kept entry indices of each ncclGroup with two or more kept calls, a group's together
  std::vector<std::vector<std::vector<uint32_t>>> groupCalls_;
  struct RuleLog {
    size_t count = 0;
    std::vector<std::string> examples;
  };
  std::array<RuleLog, kRules> inferred_;
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
  if (!completionKnown(pi) || e.state == schema::EntryState::CAPTURED) return false;
  if (seenOf(pi, e) == kSeenCompleted) return false;
  auto [gi, mi] = where_[pi][e.comm];
  if (!e.isP2P()) {
    int64_t done = gi != kNone ? groups_[gi].members[mi].effCompleted : proc(pi).comms[e.comm].lastCompletedSeq;
    return e.seq > done;
  }
  const P2PProgress* q = p2pProgress(pi, e.comm, e.root, e.op == schema::Op::SEND);
  int64_t done = q ? q->completed : -1;
  // A receive that completed proves the matching send was delivered. (Only here: a delivered send
  // says nothing of the receive launched with it, so it is no evidence for its group or stream.)
  if (peersProve && q) done = std::max(done, q->delivered);
  return e.p2pSeq > done;
}

bool Analyzer::isPending(const ProcessDump& p, const EntryView& e) const {
  return isPendingAlone(static_cast<size_t>(&p - job_.processes.data()), e, true);
}

bool Analyzer::laterProgress(size_t p, const EntryView& e) const {
  const auto& d = proc(p);
  for (const auto& sp : d.streams) {
    if (sp.lastStartedIndex > static_cast<int64_t>(e.index)) return true;
  }
  for (size_t k = keptIndex(p, e) + 1; k < d.entries.size(); ++k) {
    if (seen_[p][k] != kSeenNone && d.entries[k].groupId != e.groupId) return true;
  }
  return false;
}

const Analyzer::P2PProgress* Analyzer::p2pProgress(size_t p, uint32_t comm, int32_t peer, bool send) const {
  const CommView& c = proc(p).comms[comm];
  const P2PCounterView* k = c.p2pCounter(peer, send);
  if (!k) return nullptr;
  return &p2p_[p][comm][static_cast<size_t>(k - c.p2p.data())];
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
                       "completed calls that needed it; read as not measured (as with NCCLFR_TIMING=host)");
  }
}

// A recorder learns of GPU progress by polling events, so a dump can trail what the GPU did (and a
// call the recorder could attach no events to, `untracked`, shows none at all). What other calls
// prove corrects that, rule by rule, until nothing changes:
//   communicator order  NCCL runs one communicator's calls in order: a call that started proves
//                       every earlier call of the communicator (but its own ncclGroup) finished;
//   stream order        a stream runs its work in order: a call one thread issued on a stream before
//                       a call seen started (completed) got at least as far (calls of one group
//                       launch together: one started, all started);
//   ncclGroup           calls of one group on one communicator launch and finish together;
//   peers' completion   an all-reduce, all-gather, reduce-scatter or all-to-all that one rank
//                       completed ran on every rank (each needs every rank's data);
//   receive proves send a receive that completed proves its send was delivered (that send only).
// Each change to a call or a communicator view the verdict reads is noted (addInferenceNotes).
void Analyzer::inferProgress() {
  const size_t np = job_.processes.size();
  seen_.resize(np);
  p2p_.resize(np);
  groupCalls_.resize(np);
  for (size_t p = 0; p < np; ++p) {
    const auto& d = proc(p);
    seen_[p].assign(d.entries.size(), kSeenNone);
    p2p_[p].resize(d.comms.size());
    for (uint32_t ci = 0; ci < d.comms.size(); ++ci) {
      const auto& c = d.comms[ci];
      auto& q = p2p_[p][ci];
      q.resize(c.p2p.size());
      for (size_t k = 0; k < c.p2p.size(); ++k) {
        q[k].completed = completionKnown(p) ? c.p2p[k].lastCompletedSeq : -1;
        q[k].started = startKnown(p) ? std::max(c.p2p[k].lastStartedSeq, q[k].completed) : q[k].completed;
      }
    }
    if (!completionKnown(p)) continue;
    for (size_t k = 0; k < d.entries.size(); ++k) {
      const auto& e = d.entries[k];
      if (failedResult(e.result)) continue;  // refused: it never reached the GPU
      if (e.state == schema::EntryState::COMPLETED) seen_[p][k] = kSeenCompleted;
      if (e.state == schema::EntryState::STARTED && startKnown(p)) seen_[p][k] = kSeenStarted;
    }
    // The kept calls of each ncclGroup, together (ids are per process; ring order within).
    std::vector<std::pair<uint32_t, uint32_t>> grouped;
    for (size_t k = 0; k < d.entries.size(); ++k) {
      if (d.entries[k].groupId != 0) grouped.emplace_back(d.entries[k].groupId, static_cast<uint32_t>(k));
    }
    std::sort(grouped.begin(), grouped.end());
    for (size_t a = 0; a < grouped.size();) {
      size_t b = a;
      while (b < grouped.size() && grouped[b].first == grouped[a].first) ++b;
      if (b - a >= 2) {
        groupCalls_[p].emplace_back();
        for (size_t j = a; j < b; ++j) groupCalls_[p].back().push_back(grouped[j].second);
      }
      a = b;
    }
  }
  for (auto& g : groups_) {
    for (auto& m : g.members) {
      if (m.proc == kNone) continue;
      const auto& c = commOf(m);
      m.effCompleted = completionKnown(m.proc) ? c.lastCompletedSeq : -1;
      m.effStarted = startKnown(m.proc) ? std::max(c.lastStartedSeq, m.effCompleted) : m.effCompleted;
      // Communicator order, from the counters: the newest call that started proves the ones before
      // it finished.
      if (startKnown(m.proc) && c.lastStartedSeq <= c.lastEnqueuedSeq) raiseCompleted(m, c.lastStartedSeq - 1, Rule::kCommOrder, true);
    }
  }
  // Each round only raises states, each bounded by what was issued: a handful of rounds settle it.
  for (int round = 0; round < 16; ++round) {
    bool changed = false;
    for (size_t p = 0; p < np; ++p) {
      if (!completionKnown(p) || proc(p).entries.empty()) continue;
      changed = syncFromCounters(p) || changed;
      changed = commOrder(p) || changed;
      changed = streamOrder(p) || changed;
      changed = groupOrder(p) || changed;
      changed = syncToCounters(p) || changed;
    }
    changed = peersCompleted() || changed;
    if (!changed) break;
  }
  inferDelivered();
  addInferenceNotes();
}

template <typename F>
void Analyzer::logInference(Rule rule, F&& what) {
  RuleLog& l = inferred_[static_cast<size_t>(rule)];
  ++l.count;
  if (l.examples.size() < kExamplesPerRule) l.examples.push_back(what());
}

namespace {
const char* seenName(Seen s, schema::EntryState recorded) {
  if (s == kSeenCompleted) return "completed";
  if (s == kSeenStarted) return "started";
  return recorded == schema::EntryState::UNTRACKED ? "untracked" : "scheduled";
}
}  // namespace

void Analyzer::raiseEntry(size_t p, size_t k, Seen to, Rule rule) {
  const EntryView& e = proc(p).entries[k];
  Seen from = static_cast<Seen>(seen_[p][k]);
  seen_[p][k] = to;
  logInference(rule, [&] {
    return proc(p).label() + ": " + describeEntry(p, e) + " " + seenName(to, e.state) + " (recorded: " +
           seenName(from, e.state) + ")";
  });
}

bool Analyzer::raiseCompleted(Member& m, int64_t seq, Rule rule, bool log) {
  const auto& c = commOf(m);
  if (seq <= m.effCompleted || seq > c.lastEnqueuedSeq) return false;
  int64_t before = m.effCompleted;
  m.effCompleted = seq;
  m.effStarted = std::max(m.effStarted, seq);
  if (log) {
    logInference(rule, [&] {
      auto it = groupById_.find(c.id);
      return proc(m.proc).label() + ": " + (it != groupById_.end() ? commName(groups_[it->second]) : hexId(c.id)) +
             " completed up to #" + std::to_string(seq) + " (recorded: " +
             (before < 0 ? std::string("none") : "#" + std::to_string(before)) + ")";
    });
  }
  return true;
}

// Counters -> calls: a call at or below what its communicator view proves is that far.
bool Analyzer::syncFromCounters(size_t p) {
  const auto& d = proc(p);
  bool changed = false;
  for (size_t k = 0; k < d.entries.size(); ++k) {
    const auto& e = d.entries[k];
    if (seen_[p][k] == kSeenCompleted || e.state == schema::EntryState::CAPTURED || failedResult(e.result)) continue;
    auto [gi, mi] = where_[p][e.comm];
    Seen to = kSeenNone;
    Rule rule = Rule::kCommOrder;
    bool log = false;
    if (!e.isP2P()) {
      if (gi == kNone) continue;
      const Member& m = groups_[gi].members[mi];
      if (e.seq <= m.effCompleted) to = kSeenCompleted;
      else if (startKnown(p) && e.seq <= m.effStarted) to = kSeenStarted;
    } else {
      const P2PProgress* q = p2pProgress(p, e.comm, e.root, e.op == schema::Op::SEND);
      if (q && e.p2pSeq <= q->completed) to = kSeenCompleted;
      else if (q && startKnown(p) && e.p2pSeq <= q->started) to = kSeenStarted;
      // A collective issued after it started: it finished (communicator order).
      if (to != kSeenCompleted && gi != kNone && e.seq < groups_[gi].members[mi].effStarted) {
        to = kSeenCompleted;
        log = true;
      }
    }
    if (to <= seen_[p][k]) continue;
    if (log) {
      raiseEntry(p, k, to, rule);
    } else {
      seen_[p][k] = to;  // the view's own word (or a rule already noted on the view)
    }
    changed = true;
  }
  return changed;
}

// Calls -> counters: a collective seen started proves the earlier ones finished; a send/recv seen
// started proves the collectives issued before it finished.
bool Analyzer::syncToCounters(size_t p) {
  const auto& d = proc(p);
  bool changed = false;
  for (size_t k = 0; k < d.entries.size(); ++k) {
    Seen s = static_cast<Seen>(seen_[p][k]);
    if (s == kSeenNone) continue;
    const auto& e = d.entries[k];
    auto [gi, mi] = where_[p][e.comm];
    if (!e.isP2P()) {
      if (gi == kNone) continue;
      Member& m = groups_[gi].members[mi];
      if (s == kSeenCompleted) changed = raiseCompleted(m, e.seq, Rule::kCommOrder, false) || changed;
      changed = raiseCompleted(m, e.seq - 1, Rule::kCommOrder, true) || changed;
      if (s == kSeenStarted && startKnown(p) && e.seq > m.effStarted && e.seq <= commOf(m).lastEnqueuedSeq) {
        m.effStarted = e.seq;
        changed = true;
      }
      continue;
    }
    const CommView& c = d.comms[e.comm];
    if (const P2PCounterView* kc = c.p2pCounter(e.root, e.op == schema::Op::SEND)) {
      P2PProgress& q = p2p_[p][e.comm][static_cast<size_t>(kc - c.p2p.data())];
      if (e.p2pSeq <= kc->lastEnqueuedSeq) {
        if (s == kSeenCompleted && e.p2pSeq > q.completed) {
          q.completed = e.p2pSeq;
          changed = true;
        }
        if (e.p2pSeq > q.started) {
          q.started = e.p2pSeq;
          changed = true;
        }
      }
    }
    if (gi != kNone) changed = raiseCompleted(groups_[gi].members[mi], e.seq, Rule::kCommOrder, true) || changed;
  }
  return changed;
}

// A call that started proves every earlier call of its communicator finished, but for the calls
// of its own ncclGroup (they launched with it).
bool Analyzer::commOrder(size_t p) {
  const auto& d = proc(p);
  bool changed = false;
  std::vector<LaterEvidence> later(d.comms.size());
  for (size_t k = d.entries.size(); k-- > 0;) {
    const auto& e = d.entries[k];
    if (e.state == schema::EntryState::CAPTURED || failedResult(e.result)) continue;
    if (seen_[p][k] != kSeenCompleted && later[e.comm].outside(e.groupId)) {
      raiseEntry(p, k, kSeenCompleted, Rule::kCommOrder);
      changed = true;
    }
    if (seen_[p][k] != kSeenNone) later[e.comm].add(e.groupId);
  }
  return changed;
}

// Per (thread, stream): a later call seen started proves the earlier ones started; seen completed,
// completed (the load pass kept the newest evidence over the whole ring, StreamProgress).
bool Analyzer::streamOrder(size_t p) {
  const auto& d = proc(p);
  bool changed = false;
  struct Track {
    uint32_t thread;
    uint64_t stream;
    bool started;
    uint32_t startedGroup;  // group of the newest started call seen so far (started evidence
                            // from a group member counts for the whole group)
    LaterEvidence completed;
    const StreamProgress* recorded;
  };
  std::vector<Track> tracks;
  size_t at = SIZE_MAX;
  for (size_t k = d.entries.size(); k-- > 0;) {
    const auto& e = d.entries[k];
    if (e.state == schema::EntryState::CAPTURED || failedResult(e.result)) continue;
    if (at >= tracks.size() || tracks[at].thread != e.threadId || tracks[at].stream != e.stream) {
      at = SIZE_MAX;
      for (size_t j = 0; j < tracks.size(); ++j) {
        if (tracks[j].thread == e.threadId && tracks[j].stream == e.stream) at = j;
      }
      if (at == SIZE_MAX) {
        tracks.push_back({e.threadId, e.stream, false, 0, {}, d.streamProgress(e.threadId, e.stream)});
        at = tracks.size() - 1;
      }
    }
    Track& t = tracks[at];
    const StreamProgress* r = t.recorded;
    bool inGroup = e.groupId != 0;
    bool completed = t.completed.outside(e.groupId) ||
                     (r && r->lastCompletedIndex > static_cast<int64_t>(e.index) &&
                      !(inGroup && r->lastCompletedGroup == e.groupId));
    bool started = t.started || (r && (r->lastStartedIndex > static_cast<int64_t>(e.index) ||
                                       (inGroup && r->lastStartedGroup == e.groupId &&
                                        r->lastStartedIndex >= 0)));
    if (completed && seen_[p][k] != kSeenCompleted) {
      raiseEntry(p, k, kSeenCompleted, Rule::kStreamOrder);
      changed = true;
    } else if (started && startKnown(p) && seen_[p][k] == kSeenNone) {
      raiseEntry(p, k, kSeenStarted, Rule::kStreamOrder);
      changed = true;
    }
    if (seen_[p][k] == kSeenCompleted) t.completed.add(e.groupId);
    if (seen_[p][k] != kSeenNone) t.started = true;
  }
  return changed;
}

// Calls of one ncclGroup launch together (one started on a stream: all of it there started) and,
// on one communicator, finish together.
bool Analyzer::groupOrder(size_t p) {
  const auto& d = proc(p);
  bool changed = false;
  for (const auto& calls : groupCalls_[p]) {
    for (uint32_t a : calls) {
      const auto& x = d.entries[a];
      if (seen_[p][a] == kSeenNone || x.state == schema::EntryState::CAPTURED || failedResult(x.result)) continue;
      for (uint32_t b : calls) {
        const auto& y = d.entries[b];
        if (b == a || y.state == schema::EntryState::CAPTURED || failedResult(y.result)) continue;
        if (seen_[p][a] == kSeenCompleted && y.comm == x.comm && seen_[p][b] != kSeenCompleted) {
          raiseEntry(p, b, kSeenCompleted, Rule::kGroup);
          changed = true;
        } else if (startKnown(p) && seen_[p][b] == kSeenNone && y.stream == x.stream && y.threadId == x.threadId) {
          raiseEntry(p, b, kSeenStarted, Rule::kGroup);
          changed = true;
        }
      }
    }
  }
  return changed;
}

// An all-reduce (all-gather, ...) that one rank completed ran on every rank.
bool Analyzer::peersCompleted() {
  bool changed = false;
  for (auto& g : groups_) {
    int64_t cmax = -1;
    for (const auto& m : g.members) {
      if (m.proc != kNone && completionKnown(m.proc)) cmax = std::max(cmax, m.effCompleted);
    }
    for (auto& m : g.members) {
      if (m.proc == kNone || !completionKnown(m.proc) || m.effCompleted >= cmax) continue;
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
      changed = raiseCompleted(m, s - 1, Rule::kPeers, true) || changed;
    }
  }
  return changed;
}

// Sends whose receive completed on the peer: delivered (receive proves send).
void Analyzer::inferDelivered() {
  for (const auto& g : groups_) {
    for (const auto& m : g.members) {
      if (m.proc == kNone || !completionKnown(m.proc)) continue;
      const auto& c = commOf(m);
      for (size_t k = 0; k < c.p2p.size(); ++k) {
        const auto& kc = c.p2p[k];
        if (!kc.send || kc.peer < 0 || kc.peer >= g.size) continue;
        const Member& peer = g.members[static_cast<size_t>(g.memberOf[static_cast<size_t>(kc.peer)])];
        if (peer.proc == kNone || !completionKnown(peer.proc)) continue;
        const P2PProgress* r = p2pProgress(peer.proc, peer.comm, m.commRank, false);
        if (r) p2p_[m.proc][m.comm][k].delivered = std::min(r->completed, kc.lastEnqueuedSeq);
      }
    }
  }
  // Noted for the kept sends it decides.
  for (size_t p = 0; p < job_.processes.size(); ++p) {
    if (!completionKnown(p)) continue;
    const auto& d = proc(p);
    for (size_t k = 0; k < d.entries.size(); ++k) {
      const auto& e = d.entries[k];
      if (e.op != schema::Op::SEND || seen_[p][k] == kSeenCompleted) continue;
      const P2PProgress* q = p2pProgress(p, e.comm, e.root, true);
      if (q && e.p2pSeq > q->completed && e.p2pSeq <= q->delivered) {
        logInference(Rule::kDelivered, [&] { return d.label() + ": " + describeEntry(p, e) + " was delivered"; });
      }
    }
  }
}

void Analyzer::addInferenceNotes() {
  static const char* const kWhy[kRules] = {
      "communicator order (NCCL runs one communicator's calls in order: a call that started proves the ones "
      "before it finished)",
      "stream order (a stream runs its work in order: a call issued before, by the same thread on the same "
      "stream, got at least as far as a later one seen started or completed; calls of one ncclGroup launch "
      "together)",
      "ncclGroup (calls of one group launch together, and on one communicator finish together)",
      "peers' completion (an all-reduce, all-gather, reduce-scatter or all-to-all completes on no rank before "
      "every rank ran it)",
      "receive proves send (the peer's matching receive completed)",
  };
  for (size_t r = 0; r < kRules; ++r) {
    const RuleLog& l = inferred_[r];
    if (l.count == 0) continue;
    // A correction is one call's state, or one rank's completed-collectives counter on a communicator.
    std::string s = "further than the dumps show, inferred by " + std::string(kWhy[r]) + ": " +
                    plural(static_cast<int64_t>(l.count), "correction") + ": ";
    for (size_t k = 0; k < l.examples.size(); ++k) s += (k ? "; " : "") + l.examples[k];
    if (l.count > l.examples.size()) s += "; and " + std::to_string(l.count - l.examples.size()) + " more";
    v_.notes.push_back(std::move(s));
  }
  // Untracked calls nothing proved: read like an unmeasured rank's.
  std::vector<std::string> who;
  size_t calls = 0;
  for (size_t p = 0; p < job_.processes.size(); ++p) {
    const auto& d = proc(p);
    size_t n = 0;
    for (size_t k = 0; k < d.entries.size(); ++k) {
      if (completionKnown(p) && untrackedUnknown(p, d.entries[k]) && isPendingAlone(p, d.entries[k], true)) ++n;
    }
    if (n == 0) continue;
    calls += n;
    if (who.size() < 8) who.push_back(d.label() + ": " + std::to_string(n));
  }
  if (calls > 0) {
    std::string list;
    for (size_t k = 0; k < who.size(); ++k) list += (k ? ", " : "") + who[k];
    v_.notes.push_back("untracked: " + plural(static_cast<int64_t>(calls), "unfinished call") + " (" + list +
                       (who.size() == 8 ? " and more" : "") + ") " + (calls == 1 ? "has" : "have") +
                       " no GPU events (the recorder could attach none): whether " + (calls == 1 ? "it" : "they") +
                       " started or finished is not known, so " + (calls == 1 ? "it is" : "they are") +
                       " read like an unmeasured rank's calls, never as not started");
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
  auto it = groupById_.find(c.id);
  if (e.isP2P()) {
    s += " #" + std::to_string(e.p2pSeq) + (e.op == schema::Op::SEND ? " to " : " from ") +
         (it != groupById_.end() ? peerLabel(groups_[it->second], e.root) : "comm rank " + std::to_string(e.root));
  } else {
    s += " #" + std::to_string(e.seq);
  }
  s += " on " + (it != groupById_.end() ? commName(groups_[it->second]) : "comm " + hexId(c.id));
  return s;
}

std::string Analyzer::entryStateText(size_t p, const EntryView& e) const {
  if (failedResult(e.result) || e.state == schema::EntryState::ERROR) return "failed";
  if (e.state == schema::EntryState::CAPTURED) return "captured in a CUDA graph";
  if (!completionKnown(p)) return "GPU progress not measured";
  Seen s = seenOf(p, e);
  if (s == kSeenCompleted) return "completed";
  if (s == kSeenStarted) return "started on the GPU, not completed";
  if (e.state == schema::EntryState::UNTRACKED) return "no GPU events: progress not known";
  return startKnown(p) ? "not started on the GPU" : "not completed; start not measured";
}

std::string Analyzer::peerLabel(const Group& g, int32_t commRank) const {
  if (commRank >= 0 && commRank < g.size) {
    int32_t k = g.memberOf[static_cast<size_t>(commRank)];
    if (k >= 0) {
      const Member& m = g.members[static_cast<size_t>(k)];
      if (m.proc != kNone || m.globalRank >= 0) return refMember(g, m).label;
    }
  }
  // No dump and no global rank known: the communicator's own numbering is all there is.
  return "comm rank " + std::to_string(commRank);
}

RankRef Analyzer::peerRef(const Group& g, int32_t commRank) const {
  if (commRank >= 0 && commRank < g.size) {
    int32_t k = g.memberOf[static_cast<size_t>(commRank)];
    if (k >= 0) {
      const Member& m = g.members[static_cast<size_t>(k)];
      if (m.proc != kNone || m.globalRank >= 0) return refMember(g, m);
    }
  }
  RankRef r;
  r.label = peerLabel(g, commRank);
  return r;
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
          v_.notes.push_back("comm rank " + std::to_string(c.rank) + " of " + commName(g) + " is claimed by " +
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
  std::vector<int64_t> firstPending(job_.processes.size(), -2);  // entry index, -1 none, -2 not looked for
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
      } else if (startKnown(m.proc) && m.effStarted >= f) {
        m.state = RankState::kStarted;
      } else if (e && untrackedUnknown(m.proc, *e)) {
        // No GPU events: like an unmeasured rank's call, neither "queued" nor "pending" is known.
        m.state = RankState::kUnknown;
      } else if (!startKnown(m.proc)) {
        m.state = RankState::kPending;
      } else {
        m.state = RankState::kQueued;
      }
      if (g.frontierOp.empty() && e) g.frontierOp = enumName(e->op);
      // Without start times (endOnly) a call not completed may be stuck in the transport or queued
      // behind an earlier unfinished call of the same rank: with such a call, it is read as the
      // latter, and the chain goes on through that call (in full timing the same rank is queued).
      bool behindOwn = false;
      if (m.state == RankState::kPending && e) {
        // The process's oldest unfinished call, found once (rings hold thousands of calls).
        if (firstPending[m.proc] == -2) {
          const EntryView* x = earliestPending(m.proc, nullptr, false);
          firstPending[m.proc] = x ? static_cast<int64_t>(x->index) : -1;
        }
        behindOwn = firstPending[m.proc] >= 0 && firstPending[m.proc] < static_cast<int64_t>(e->index);
      }
      bool blocker = m.state == RankState::kNotEnqueued || m.state == RankState::kQueued || behindOwn ||
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
        return (m.state == RankState::kQueued || m.state == RankState::kPending) && !proc(m.proc).processDied;
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
        majority != 0 ? sigText(votes[majority][0], majority) + " (" + plural(static_cast<int64_t>(votes[majority].size()), "rank") + ")"
                      : std::string();
    std::string counted = nconf > 1 ? "; the calls differ at " + std::to_string(nconf) + " sequence numbers in all" : "";
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
        s.evidence = "at #" + std::to_string(seq) + " on " + commName(g) + " it called " + sigText(k, mine) +
                     "; the majority called " + majorityText + counted;
      } else {
        std::string theirs;
        for (const auto& [fp, who] : votes) {
          if (fp == mine) continue;
          if (!theirs.empty()) theirs += "; ";
          theirs += sigText(who[0], fp) + " (" + plural(static_cast<int64_t>(who.size()), "rank") + ")";
        }
        s.evidence = "at #" + std::to_string(seq) + " on " + commName(g) + " it called " + sigText(k, mine) +
                     "; the others called " + theirs + "; no majority says which is right" + counted;
      }
      for (size_t o : minority) {
        if (o != k) s.with.push_back(ref(g.members[o].proc));
      }
      if (minority.size() > 8) s.with.resize(8);
      s.blocking = static_cast<int64_t>(g.present) - 1;  // its peers on this communicator
      extra_.push_back({std::move(s), ""});
    }
  }
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
          int64_t theirs = sentUnmatched ? recvs : sends;
          x.evidence = std::string(sentUnmatched ? "completed send #" : "completed recv #") + std::to_string(x.seq) +
                       (sentUnmatched ? " to " : " from ") + ref(otherSide).label + " on " + commName(g) + ", but " +
                       ref(otherSide).label + " issued only " +
                       plural(theirs, sentUnmatched ? "receive from it" : "send to it",
                              sentUnmatched ? "receives from it" : "sends to it") +
                       (theirs > 0 ? " (#0 to #" + std::to_string(theirs - 1) + ")" : "") + ": it has no counterpart";
          x.with.push_back(ref(otherSide));
          x.peer = ref(otherSide);
          extra_.push_back({std::move(x), ""});
          continue;
        }
        // Recorded without GPU times (hostOnly), completion says nothing; the counts and the
        // order of calls still do. The first call of the side that issued more has no counterpart,
        // and when the other side has since issued collectives on this communicator past the point
        // where that call was issued, it skipped it: no later receive (send) can match it.
        const bool extraSends = sends > recvs;
        const Member& mx = extraSends ? ms : md;
        const Member& mo = extraSends ? md : ms;
        if (completionKnown(mx.proc)) continue;
        const int64_t first = extraSends ? recvs : sends;
        const EntryView* e = proc(mx.proc).findP2P(mx.comm, mo.commRank, extraSends, first);
        const int64_t past = commOf(mo).lastEnqueuedSeq;
        if (!e || past <= e->seq) continue;
        Suspect x;
        x.who = ref(mx.proc);
        x.comm = g.id;
        x.commRank = mx.commRank;
        x.seq = first;
        x.op = p2pOpName(extraSends);
        x.reason = Reason::kUnmatchedP2P;
        x.peer = ref(mo.proc);
        x.with.push_back(x.peer);
        const std::string other = x.peer.label;
        x.evidence = "issued " + x.op + " #" + std::to_string(first) + (extraSends ? " to " : " from ") + other +
                     " on " + commName(g) + " after collective #" + std::to_string(e->seq) + ", but " + other +
                     " issued only " +
                     plural(first, extraSends ? "receive from it" : "send to it",
                            extraSends ? "receives from it" : "sends to it") +
                     (first > 0 ? " (#0 to #" + std::to_string(first - 1) + ")" : "") +
                     ", although it went past that point (it issued collectives there up to #" + std::to_string(past) +
                     "): it has no counterpart; recorded with NCCLFR_TIMING=host, so this is read from the counts and "
                     "the order of calls alone (whether the GPU ever ran it was not measured)";
        extra_.push_back({std::move(x), ""});
      }
    }
  }
}

// What the call `e` of process p waits for, as nodes.
std::vector<Node> Analyzer::waitTargets(size_t p, const EntryView& e, std::string* why, WaitEnd* end,
                                         int depth) const {
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
        *why = e.seq == h.frontier ? std::string("is the first call not completed there, and this rank is behind on it")
                                   : "waits behind its own unfinished call #" + std::to_string(h.frontier) + " there";
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
      *why = "waits for " + names;
    } else {
      *why = "every rank issued, and none is behind";
      end->transportGroup = gi;
    }
    return out;
  }
  int32_t peer = e.root;
  if (peer < 0 || peer >= h.size) return {};
  const int32_t me = h.members[mi].commRank;
  const Member& pm = h.members[static_cast<size_t>(h.memberOf[static_cast<size_t>(peer)])];
  size_t pmi = static_cast<size_t>(h.memberOf[static_cast<size_t>(peer)]);
  bool send = e.op == schema::Op::SEND;
  std::string what = send ? "receive" : "send";
  if (pm.proc == kNone) {
    *why = "waits for " + peerLabel(h, peer) + ", which left no dump";
    return {{gi, pmi, RankState::kMissing, true, e.p2pSeq, me, e.seq, !send}};
  }
  const auto& pd = proc(pm.proc);
  const P2PCounterView* k = commOf(pm).p2pCounter(me, !send);
  int64_t enq = k ? k->lastEnqueuedSeq : -1;
  if (enq < e.p2pSeq) {
    *why = "waits for " + pd.label() + ", which never issued the matching " + what;
    return {{gi, pmi, RankState::kNotEnqueued, true, e.p2pSeq, me, e.seq, !send}};
  }
  // Its own side: a call its stream never started waits for nothing of the peer's yet, and nothing
  // of its own is in front of it (it is this rank's oldest unfinished call). That names this rank's
  // GPU only when nothing it issued later ran either: later calls that ran on other streams make the
  // recorder's "not started" a view it could not keep up (streams are ordered through events it
  // cannot see), so the start is read as not known.
  bool mineKnown = startKnown(p) && !untrackedUnknown(p, e);
  if (mineKnown && seenOf(p, e) == kSeenNone) {
    if (!laterProgress(p, e)) {
      *why = "its own stream never started";
      return {{gi, mi, RankState::kQueued, true, e.p2pSeq, peer, e.seq, send}};
    }
    *why = "its recorder never saw start, although calls it issued later ran: where it waits is not known";
    end->unknown = true;
    return {};
  }
  // The peer's side.
  const P2PProgress* q = p2pProgress(pm.proc, pm.comm, me, !send);
  int64_t started = q ? q->started : -1;
  // A collective it issued after the counterpart started: the counterpart ran (communicator order).
  if (pm.effStarted > e.seq) started = std::max(started, e.p2pSeq);
  const EntryView* theirs = pd.findP2P(pm.comm, me, !send, e.p2pSeq);
  bool theirsKnown = startKnown(pm.proc) && !(theirs && untrackedUnknown(pm.proc, *theirs));
  if (started < e.p2pSeq && theirsKnown && !(theirs && laterProgress(pm.proc, *theirs))) {
    *why = "waits for " + pd.label() + ", which issued the matching " + what + " but whose stream never started it";
    return {{gi, pmi, RankState::kQueued, true, e.p2pSeq, me, e.seq, !send}};
  }
  if (started < e.p2pSeq && theirsKnown) {
    *why = "waits for " + pd.label() + ", which issued the matching " + what +
           "; its recorder never saw that start, although calls it issued later ran: where it waits is not known";
    end->unknown = true;
    return {};
  }
  if ((started < e.p2pSeq && !theirsKnown) || !mineKnown) {
    size_t who = started < e.p2pSeq && !theirsKnown ? pm.proc : p;
    *why = "waits for " + pd.label() + ", which issued the matching " + what + "; whether " +
           (who == p ? "this call" : "that call") + " started on the GPU is not known (" +
           (untrackedUnknown(who, who == p ? e : *theirs) ? std::string("untracked") : enumName(timing_[who]) + " timing") +
           ")";
    end->unknown = true;
    return {};
  }
  // Both sides started it. If the counterpart was launched in one ncclGroup with a call that waits
  // for someone, that is what holds it (a group's calls finish together).
  if (depth == 0 && theirs && theirs->groupId != 0) {
    for (const auto& x : pd.entries) {
      if (&x == theirs || x.groupId != theirs->groupId || !isPending(pd, x)) continue;
      std::string w;
      WaitEnd ignored;
      auto held = waitTargets(pm.proc, x, &w, &ignored, depth + 1);
      if (!held.empty()) {
        *why = "waits for " + pd.label() + ", which started the matching " + what + ", launched in one ncclGroup with " +
               describeEntry(pm.proc, x) + ", which " + w;
        return held;
      }
    }
  }
  *why = "both sides started it and neither completed it";
  end->stuck = true;
  end->pair = {gi, send ? me : peer, send ? peer : me, e.p2pSeq};
  return {};
}

// What an unfinished call `e` of process p waits for. Calls of one ncclGroupStart/End launch and
// finish together, so the whole group is asked, and the member that waits on someone answers.
std::vector<Node> Analyzer::heldBy(size_t p, const EntryView& e, std::string* why, WaitEnd* end) const {
  std::vector<const EntryView*> calls{&e};
  if (e.groupId != 0) {
    for (const auto& x : proc(p).entries) {
      if (&x != &e && x.groupId == e.groupId && x.index > e.index && isPending(proc(p), x)) calls.push_back(&x);
    }
  }
  std::string firstWhy;
  WaitEnd firstEnd;
  for (const EntryView* c : calls) {
    std::string w;
    WaitEnd t;
    auto out = waitTargets(p, *c, &w, &t);
    if (!out.empty()) {
      *why = describeEntry(p, *c) + (c == &e ? "" : " (in one group with " + describeEntry(p, e) + ")") + ", which " + w;
      return out;
    }
    if (firstWhy.empty()) {
      firstWhy = describeEntry(p, *c) + ", which " + w;
      firstEnd = t;
    }
  }
  *why = firstWhy;
  *end = firstEnd;
  return {};
}

// Edges out of a node: why this rank has not done the call its peers wait in.
std::vector<Node> Analyzer::next(const Node& n, std::string* why, WaitEnd* end) const {
  *end = WaitEnd{};
  const Group& g = groups_[n.group];
  const Member& m = g.members[n.member];
  if (m.proc == kNone || proc(m.proc).processDied) return {};
  const auto& d = proc(m.proc);
  if (n.state == RankState::kNotEnqueued) {
    if (!completionKnown(m.proc)) return {};
    const EntryView* e = earliestPending(m.proc, nullptr, false);
    if (!e) return {};
    std::string w;
    auto out = heldBy(m.proc, *e, &w, end);
    *why = "never issued " + callText(n) + ": its host is held by " + w;
    return out;
  }
  if (n.state == RankState::kPending && !n.p2p) {
    // endOnly: issued, not completed, and an earlier call of its own is unfinished (computeFrontiers).
    const EntryView* mine = d.findCollective(m.comm, n.seq);
    const EntryView* e = mine ? earliestPending(m.proc, mine, false) : nullptr;
    std::string w;
    std::vector<Node> out;
    if (e) out = heldBy(m.proc, *e, &w, end);
    if (e) *why = "issued " + callText(n) + " (its start on the GPU not measured), behind " + w;
    if (out.empty() && end->transportGroup == kNone && !end->stuck) {
      // Nothing further to follow: never a culprit of its own (its start was not measured).
      end->unknown = true;
      if (!e) *why = "issued " + callText(n) + "; its start on the GPU was not measured";
    }
    return out;
  }
  if (n.state == RankState::kQueued) {
    const EntryView* mine = n.p2p ? d.findP2P(m.comm, n.peer, n.send, n.seq) : d.findCollective(m.comm, n.seq);
    // The ring no longer holds the call itself: everything it holds is newer, so nothing it holds
    // can be in front of it.
    if (!mine) return {};
    // Any earlier unfinished call can hold it: frameworks order each communicator's stream after
    // the compute stream with events, so a stuck call on one stream holds the next one's work.
    const EntryView* e = earliestPending(m.proc, mine, false);
    if (!e || (mine && e->index == mine->index)) return {};
    std::string w;
    auto out = heldBy(m.proc, *e, &w, end);
    *why = "issued " + callText(n) + ", but its stream is held by " + w;
    return out;
  }
  return {};
}

std::string Analyzer::callText(const Node& n) const {
  const Group& g = groups_[n.group];
  if (!n.p2p) return (g.frontierOp.empty() ? std::string("call") : g.frontierOp) + " #" + std::to_string(n.seq);
  return std::string(p2pOpName(n.send)) + " #" + std::to_string(n.seq) + (n.send ? " to " : " from ") +
         peerLabel(g, n.peer);
}

std::string Analyzer::nodeText(const Node& n) const { return callText(n) + " on " + commName(groups_[n.group]); }

ChainLink Analyzer::link(const Node& n, const std::string& why) const {
  const Group& g = groups_[n.group];
  const Member& m = g.members[n.member];
  ChainLink l;
  l.who = refMember(g, m);
  l.comm = g.id;
  l.commRank = m.commRank;
  l.seq = n.seq;
  l.op = n.p2p ? p2pOpName(n.send) : g.frontierOp;
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
            waitFor = satSub(proc(o.proc).dumpMonoNs, e->enqueueMonoNs);
          }
        }
      }
    }
  } else if (n.peer >= 0 && n.peer < g.size) {
    // The waiting side's send or receive: the counterpart of this rank's.
    const Member& w = g.members[static_cast<size_t>(g.memberOf[static_cast<size_t>(n.peer)])];
    if (w.proc != kNone) {
      const auto& wd = proc(w.proc);
      const EntryView* e = wd.findP2P(w.comm, m.commRank, !n.send, n.seq);
      if (e && wd.wallNs(e->enqueueMonoNs) > 0) {
        waitSince = wd.wallNs(e->enqueueMonoNs);
        waitFor = satSub(wd.dumpMonoNs, e->enqueueMonoNs);
      }
    }
  }
  r->waitSince = waitSince;
  // Who waits for it, and since when: `waiters` names the call, `waitersInIt` follows a sentence
  // that just did ("... allReduce #41 on comm X; 7 peers wait in it since ...").
  std::string waiters, waitersInIt;
  if (!n.p2p && waiting > 0) {
    std::string since;
    if (waitSince > 0) {
      since = " since " + fmtWall(waitSince) + " (" + fmtSeconds(waitFor) + " before " +
              (waiting == 1 ? "its dump)" : "their dumps)");
    }
    std::string who = waiting == 1 ? "1 peer waits in " : std::to_string(waiting) + " peers wait in ";
    waiters = who + call + since;
    waitersInIt = who + "it" + since;
  } else if (n.p2p) {
    std::string theirs = (n.send ? "recv #" : "send #") + std::to_string(n.seq) + (n.send ? " from it" : " to it");
    std::string since;
    if (waitSince > 0) since = " since " + fmtWall(waitSince) + " (" + fmtSeconds(waitFor) + " before its dump)";
    waitersInIt = peerLabel(g, n.peer) + " waits in its " + theirs + since;
    waiters = peerLabel(g, n.peer) + " waits in its " + theirs + " on " + commName(g) + since;
  }
  auto then = [](const std::string& s) { return s.empty() ? s : "; " + s; };

  if (m.proc == kNone) {
    r->reason = Reason::kMissing;
    r->evidence = "left no dump (it is comm rank " + std::to_string(m.commRank) + " of " + commName(g) +
                  (m.globalRank >= 0 ? "" : "; its global rank is not known") + ")" + then(waiters);
    bool allStarted = !n.p2p;
    for (const auto& o : g.members) {
      if (o.proc != kNone && o.state != RankState::kStarted && o.state != RankState::kCompleted) allStarted = false;
    }
    if (allStarted && g.present > 0) r->evidence += "; every rank with a dump started it on the GPU";
    return;
  }
  const auto& d = proc(m.proc);
  const auto& c = commOf(m);
  std::string last;
  if (const EntryView* e = d.newest()) {
    std::string ago;
    if (d.dumpMonoNs > 0 && e->enqueueMonoNs > 0) ago = fmtSeconds(satSub(d.dumpMonoNs, e->enqueueMonoNs)) + " before its dump";
    bool same = !n.p2p && !e->isP2P() && e->comm == m.comm && e->seq == n.seq;
    if (same) {
      last = "that was its last call" + (ago.empty() ? std::string() : ", issued " + ago);
    } else {
      last = "its last call was " + describeEntry(m.proc, *e) + " (" + entryStateText(m.proc, *e) + ")" +
             (ago.empty() ? std::string() : ", issued " + ago);
    }
  }
  if (d.processDied) {
    r->reason = Reason::kDied;
    std::string where;
    switch (n.state) {
      case RankState::kNotEnqueued: where = "it had not issued " + call; break;
      case RankState::kQueued: where = "it had issued " + call + ", not started on the GPU"; break;
      case RankState::kStarted: where = "it had started " + call + " on the GPU"; break;
      case RankState::kCompleted: where = "it had completed " + call; break;
      default: where = "it had issued " + call + " (its GPU progress not measured)"; break;
    }
    r->evidence = "the process died (" + salvageText(d) + "); " + where + then(waitersInIt) + then(last);
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
                  "; communicator state: " + enumName(c.state) + then(waiters);
    return;
  }
  if (n.p2p && n.state == RankState::kNotEnqueued) {
    // It never issued the counterpart. If it has since gone past the point where the waiting call
    // sits (issued later collectives on this communicator), it skipped it: unmatched.
    const Member& w = g.members[static_cast<size_t>(g.memberOf[static_cast<size_t>(n.peer)])];
    if (c.lastEnqueuedSeq > n.afterSeq) {
      r->reason = Reason::kUnmatchedP2P;
      r->evidence = "never issued " + call + ", which " + refMember(g, w).label +
                    " waits for, although it went past that point: " + refMember(g, w).label +
                    " issued its side after collective #" + std::to_string(n.afterSeq) +
                    ", and this rank has issued collectives up to #" + std::to_string(c.lastEnqueuedSeq) +
                    " there; it skipped the call" + then(last);
      if (w.proc != kNone) r->withProcs.push_back(w.proc);
      return;
    }
  }
  if (n.state == RankState::kQueued) {
    r->reason = Reason::kDeviceStall;
    r->evidence = "issued " + call +
                  (mine && mine->enqueueMonoNs > 0 ? " at " + fmtWall(d.wallNs(mine->enqueueMonoNs)) : "") +
                  ", but its GPU stream never started it, and no unfinished NCCL call of its own is ahead of it: "
                  "something outside NCCL holds that stream (a kernel that does not finish, a wait on other work, a "
                  "GPU fault)" + then(waitersInIt);
    return;
  }
  if (!completionKnown(m.proc)) {
    // Unmeasured GPU progress cannot say whether a call of its own holds its host, but a
    // communicator of its that reported an error can: the error comes first.
    for (const auto& ec : d.comms) {
      if (!hasError(ec)) continue;
      r->reason = Reason::kError;
      r->errorCode = ec.lastAsyncError;
      r->errorWallNs = d.wallNs(ec.lastAsyncErrorMonoNs);
      std::string where = "comm " + hexId(ec.id) + (ec.name.empty() ? std::string() : " (" + ec.name + ")");
      r->evidence = "its " + where + " reported " + std::string(ncclResultName(ec.lastAsyncError)) + " (" +
                    std::to_string(ec.lastAsyncError) + ")" +
                    (ec.lastAsyncErrorMonoNs > 0 ? " at " + fmtWall(r->errorWallNs) : "") + "; communicator state: " +
                    enumName(ec.state) + "; it never issued " + call +
                    " (recorded with NCCLFR_TIMING=host: whether that error holds its host is not measured)" +
                    then(waitersInIt);
      return;
    }
  }
  r->reason = Reason::kHostStall;
  std::string held = completionKnown(m.proc)
                         ? "it has no unfinished NCCL call, so what holds it back is outside NCCL"
                         : "its GPU progress was not measured (NCCLFR_TIMING=host), so whether a call of its own "
                           "holds it cannot be told";
  r->evidence = "never issued " + call + then(waitersInIt) + "; " + held + then(last);
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
  // order. The send/recv in question is the first one of the circle whose counts do not pair up
  // (else the first); the rank that issued it, whose peer never issued the counterpart, is named,
  // for that call. Without one, the first rank of the circle that left a dump.
  auto leftoverOf = [&](const Node& n) -> const P2PLeftover* {
    const Group& g = groups_[n.group];
    const int32_t lacking = g.members[n.member].commRank;
    const int32_t src = n.send ? lacking : n.peer, dst = n.send ? n.peer : lacking;
    for (const auto& l : v_.p2pLeftovers) {
      if (l.comm == g.id && l.srcCommRank == src && l.dstCommRank == dst) return &l;
    }
    return nullptr;
  };
  const Node* c = nullptr;
  for (const auto& n : cycle) {
    const Group& g = groups_[n.group];
    if (!n.p2p || n.peer < 0 || n.peer >= g.size || g.memberOf[static_cast<size_t>(n.peer)] < 0) continue;
    if (!c) c = &n;
    if (leftoverOf(n)) {
      c = &n;
      break;
    }
  }
  bool p2p = false;
  for (const auto& n : cycle) p2p = p2p || n.p2p;
  Root r;
  const Node* lead = nullptr;
  std::string detail;
  if (c) {
    const Group& g = groups_[c->group];
    const size_t wi = static_cast<size_t>(g.memberOf[static_cast<size_t>(c->peer)]);
    const Member& waiter = g.members[wi];
    const Member& lacking = g.members[c->member];
    for (const auto& n : cycle) {
      if (waiter.proc != kNone && groups_[n.group].members[n.member].proc == waiter.proc) {
        lead = &n;
        break;
      }
    }
    if (lead) {
      // Its own side, which has no counterpart.
      r.hasCall = true;
      r.call = Node{c->group, wi, RankState::kStarted, true, c->seq, lacking.commRank, c->afterSeq, !c->send};
    } else if (lacking.proc != kNone) {
      lead = c;
    }
    // "rank 1's send #1284 to rank 9 on comm X (pp) has no matching receive: rank 1 issued 1285
    // sends to rank 9 (#0 to #1284), rank 9 issued 1284 receives from rank 1 (#0 to #1283)".
    const std::string lackingLabel = refMember(g, lacking).label;
    const bool waiterSends = !c->send;
    detail = refMember(g, waiter).label + "'s " + p2pOpName(waiterSends) + " #" + std::to_string(c->seq) +
             (waiterSends ? " to " : " from ") + lackingLabel + " on " + commName(g) + " has no " +
             (waiterSends ? "matching receive" : "matching send");
    if (const P2PLeftover* l = leftoverOf(*c)) {
      auto span = [](int64_t k) { return k > 0 ? " (#0 to #" + std::to_string(k - 1) + ")" : std::string(); };
      detail += ": " + l->src.label + " issued " + plural(l->sends, "send") + " to " + l->dst.label + span(l->sends) +
                ", " + l->dst.label + " issued " + plural(l->receives, "receive") + " from " + l->src.label +
                span(l->receives);
    }
  }
  if (!lead) {
    for (const auto& n : cycle) {
      if (groups_[n.group].members[n.member].proc != kNone) {
        lead = &n;
        break;
      }
    }
  }
  if (!lead) lead = &cycle.front();
  r.node = *lead;
  r.reason = p2p ? Reason::kUnmatchedP2P : Reason::kMismatch;
  // "rank 1 (allReduce #1283 on comm X: issued it but the GPU never started it) waits for rank 9
  // (recv #1284 from rank 1 on comm X: never issued it), which waits for rank 1".
  std::string circle;
  for (const auto& x : cycle) {
    const Group& g = groups_[x.group];
    circle += (circle.empty() ? "" : " waits for ") + refMember(g, g.members[x.member]).label + " (" + nodeText(x) +
              ": " + rankStateText(x.state) + ")";
  }
  circle += ", which waits for " +
            refMember(groups_[cycle.front().group], groups_[cycle.front().group].members[cycle.front().member]).label;
  const Member& lm = groups_[lead->group].members[lead->member];
  for (const auto& x : cycle) {
    const Member& o = groups_[x.group].members[x.member];
    if (o.proc != kNone && o.proc != lm.proc &&
        std::find(r.withProcs.begin(), r.withProcs.end(), o.proc) == r.withProcs.end()) {
      r.withProcs.push_back(o.proc);
    }
  }
  r.evidence = (detail.empty() ? std::string(p2p ? "a send or receive without counterpart"
                                                  : "the ranks issued their calls in a different order")
                               : detail) +
               "; the ranks wait on each other in a circle: " + circle;
  r.chain = cycle;
  roots_.push_back(std::move(r));
  for (const auto& x : cycle) rootOf_[x] = roots_.size() - 1;
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
  auto recordTransport = [&](size_t tg) {
    transportGroups_.insert(tg);
    auto& w = transportWaiters_[tg];
    if (headGroup != tg) w.insert(headGroup);
    for (const auto& x : path) {
      if (x.group != tg) w.insert(x.group);
    }
  };
  auto mem = memo_.find(n);
  if (mem != memo_.end()) {
    for (size_t ri : mem->second) record(ri);
    auto mt = memoTransport_.find(n);
    if (mt != memoTransport_.end()) {
      for (size_t tg : mt->second) recordTransport(tg);
    }
    path.pop_back();
    return;
  }
  onPath.insert(n);
  std::string why;
  WaitEnd end;
  auto outs = next(n, &why, &end);
  whyOf_[n] = why;
  std::vector<size_t> found;
  std::set<size_t> ends;  // transport groups reached from here
  if (outs.empty()) {
    if (end.transportGroup != kNone) {
      // The chain ends in a call every rank started: the transport, not a rank.
      recordTransport(end.transportGroup);
      ends.insert(end.transportGroup);
    } else if (end.stuck) {
      stuckPairs_.insert(end.pair);
    } else if (end.unknown) {
      // The chain ends at a call whose GPU progress was not measured: no one to name from here.
      const Member& m = groups_[n.group].members[n.member];
      if (m.proc != kNone) unknownEnds_.emplace(m.proc, why);
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
    auto mt = memoTransport_.find(o);
    if (mt != memoTransport_.end()) ends.insert(mt->second.begin(), mt->second.end());
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  memo_[n] = found;
  if (!ends.empty()) memoTransport_[n] = std::move(ends);
  onPath.erase(n);
  path.pop_back();
}

// A snapshot of a running job (`ncclfr trigger`, a dump signal, a dump at exit) catches calls in
// flight: a collective some ranks have issued and others not yet, a stream still busy. That is no
// stall. When no dump of the incident was written because of a stall, an error or an abort, no
// process died and no communicator reported an error, and at every stalled communicator the
// longest-waiting rank has waited less than the stall timeout (every wait known), the stalls are read
// as calls in flight: no suspects come from them and the status can be ok. The timeout is the
// smallest NCCLFR_TIMEOUT the incident's dumps carry (the first rank to wait that long would have
// called it a stall), else kInFlightDefaultNs.
void Analyzer::checkSnapshot() {
  for (const auto& d : job_.processes) {
    switch (d.reason) {
      case schema::DumpReason::STALL:
      case schema::DumpReason::NCCL_ERROR:
      case schema::DumpReason::ABORT:
      case schema::DumpReason::SALVAGED:
        return;
      default:
        break;
    }
    if (d.processDied) return;
    for (const auto& c : d.comms) {
      if (hasError(c)) return;
    }
  }
  int64_t thresholdNs = 0;
  for (const auto& d : job_.processes) {
    if (d.timeoutNs > 0 && (thresholdNs == 0 || d.timeoutNs < thresholdNs)) thresholdNs = d.timeoutNs;
  }
  bool fromDumps = thresholdNs > 0;
  if (!fromDumps) thresholdNs = kInFlightDefaultNs;
  int64_t longest = -1;
  std::vector<size_t> stalled;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const Group& g = groups_[gi];
    if (!g.stalled) continue;
    stalled.push_back(gi);
    for (const auto& m : g.members) {
      if (m.proc == kNone) return;  // a rank without a dump: its part is not known
      if (m.state == RankState::kNotEnqueued || m.state == RankState::kCompleted) continue;
      const auto& d = proc(m.proc);
      const EntryView* e = d.findCollective(m.comm, g.frontier);
      if (!e || e->enqueueMonoNs <= 0 || d.dumpMonoNs <= 0) return;  // how long it waited is not known
      int64_t waited = satSub(d.dumpMonoNs, e->enqueueMonoNs);
      if (waited >= thresholdNs) return;
      longest = std::max(longest, waited);
    }
  }
  if (stalled.empty() || longest < 0) return;
  inFlightLongestNs_ = longest;
  inFlightUnder_ = fromDumps ? "under NCCLFR_TIMEOUT " + fmtWait(thresholdNs)
                             : "under the default " + fmtWait(thresholdNs) + ": the dumps do not say NCCLFR_TIMEOUT";
  for (size_t gi : stalled) {
    Group& g = groups_[gi];
    g.stalled = false;
    g.blockers.clear();
    inFlight_.insert(gi);
  }
  v_.notes.push_back("calls in flight at the snapshot on " + std::to_string(stalled.size()) +
                     (stalled.size() == 1 ? " communicator" : " communicators") + " (the longest waiting " +
                     fmtWait(longest) + ", " + inFlightUnder_ +
                     ") — not a hang: no dump was written because of a stall, an error or an abort");
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
    if (!g.stalled || g.frontier < 0) continue;  // only a collective every rank issued is the transport's
    // Calls that differ in content at or before the frontier explain why it never completes.
    if (g.mismatchSeq >= 0 && g.mismatchSeq <= g.frontier) continue;
    const Node frontierNode{gi, 0, RankState::kStarted, false, g.frontier, -1, -1};
    const std::string call = nodeText(frontierNode), callHere = callText(frontierNode);
    // Ranks whose start of it was not measured: it may wait on their GPU as well.
    std::string unsure;
    size_t nUnsure = 0;
    for (const auto& m : g.members) {
      if (m.proc == kNone || (m.state != RankState::kPending && m.state != RankState::kUnknown)) continue;
      if (nUnsure++ < 4) {
        const EntryView* e = proc(m.proc).findCollective(m.comm, g.frontier);
        unsure += (unsure.empty() ? "" : ", ") + proc(m.proc).label() + " (" +
                  (e && untrackedUnknown(m.proc, *e) ? std::string("untracked") : enumName(timing_[m.proc])) + ")";
      }
    }
    if (nUnsure > 4) unsure += " and " + std::to_string(nUnsure - 4) + " more";
    // `state` names the communicator (a suspect's evidence stands alone); `stateHere` follows it.
    const std::string verb = nUnsure == 0 ? "every rank started " : "every rank issued ";
    const std::string state = verb + call + " and none completed it";
    const std::string stateHere = verb + callHere + " and none completed it";
    const std::string where = nUnsure == 0 ? "stuck in the transport (the network, NVLink or NCCL's proxy thread)"
                                           : "stuck in the transport, or on the GPU of a rank whose start of it was "
                                             "not measured: " + unsure;
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
      s.evidence = state + ": " + where + "; on this rank the communicator reported " + ncclResultName(code) + " (" +
                   std::to_string(code) + "); communicator state: " + enumName(c.state);
      s.blocking = static_cast<int64_t>(g.present) - 1;  // its peers, all in the call
      extra_.push_back({std::move(s), ""});
    }
    if (nUnsure > 0) transportUnsure_.insert(gi);
    if (!any) {
      size_t behind = 0;
      auto w = transportWaiters_.find(gi);
      if (w != transportWaiters_.end()) {
        for (size_t o : w->second) behind += groups_[o].stalled ? 1 : 0;
      }
      v_.notes.push_back(commName(g) + ": " + stateHere + ": " + where + "; no rank reported an error" +
                         (behind > 0 ? "; " + plural(static_cast<int64_t>(behind), "other stalled communicator") +
                                           (behind == 1 ? " waits" : " wait") + " behind it"
                                     : std::string()));
    }
  }
  // Send/recv pairs a chain ended in: both sides started, neither completed (the verdict's p2p_stuck).
  for (const auto& sp : stuckPairs_) {
    const Group& g = groups_[sp.group];
    const Member& src = g.members[static_cast<size_t>(g.memberOf[static_cast<size_t>(sp.src)])];
    const Member& dst = g.members[static_cast<size_t>(g.memberOf[static_cast<size_t>(sp.dst)])];
    if (src.proc == kNone || dst.proc == kNone) continue;
    P2PStuck x;
    x.comm = g.id;
    x.srcCommRank = sp.src;
    x.dstCommRank = sp.dst;
    x.src = ref(src.proc);
    x.dst = ref(dst.proc);
    x.p2pSeq = sp.p2pSeq;
    v_.p2pStuck.push_back(x);
    // A side whose communicator reported an error is named, as for a collective.
    for (const Member* m : {&src, &dst}) {
      const auto& c = commOf(*m);
      if (!hasError(c)) continue;
      Suspect s;
      s.who = ref(m->proc);
      s.comm = g.id;
      s.commRank = m->commRank;
      s.seq = sp.p2pSeq;
      s.op = p2pOpName(m == &src);
      s.peer = ref((m == &src ? dst : src).proc);
      s.reason = Reason::kError;
      s.errorCode = c.lastAsyncError;
      s.errorWallNs = proc(m->proc).wallNs(c.lastAsyncErrorMonoNs);
      s.evidence = "send #" + std::to_string(sp.p2pSeq) + " from " + x.src.label + " to " + x.dst.label + " on " +
                   commName(g) + " and its matching recv: both sides started them and neither completed (stuck in "
                   "the transport); on this rank the communicator reported " + ncclResultName(c.lastAsyncError) +
                   " (" + std::to_string(c.lastAsyncError) + "); communicator state: " + enumName(c.state);
      s.with.push_back(ref((m == &src ? dst : src).proc));
      s.blocking = 1;  // the other side
      extra_.push_back({std::move(s), "send #" + std::to_string(sp.p2pSeq) + " from " + x.src.label + " to " +
                                          x.dst.label + " on " + commName(g)});
    }
  }
  // Chains that end where GPU progress was not measured: said, not guessed.
  if (!unknownEnds_.empty()) {
    std::string list;
    size_t n = 0;
    for (const auto& [p, why] : unknownEnds_) {
      if (n++ == 4) break;
      list += (list.empty() ? "" : "; ") + proc(p).label() + " " + why;
    }
    if (unknownEnds_.size() > 4) list += "; and " + std::to_string(unknownEnds_.size() - 4) + " more";
    v_.notes.push_back("not followed further (GPU progress not known there): " + list);
  }
}

std::string Analyzer::p2pAccount(size_t gi) const {
  const Group& g = groups_[gi];
  int64_t issued = 0, open = 0;
  bool unknown = false;
  std::string example;
  for (const auto& m : g.members) {
    if (m.proc == kNone) continue;
    const auto& cv = commOf(m);
    for (size_t k = 0; k < cv.p2p.size(); ++k) {
      const auto& kc = cv.p2p[k];
      if (kc.lastEnqueuedSeq < 0) continue;
      // Counts from a damaged dump may be anything: saturate.
      issued = issued > INT64_MAX - kc.lastEnqueuedSeq - 1 ? INT64_MAX : issued + kc.lastEnqueuedSeq + 1;
      if (!completionKnown(m.proc)) {
        unknown = true;
        continue;
      }
      const P2PProgress& q = p2p_[m.proc][m.comm][k];
      const int64_t done = kc.send ? std::max(q.completed, q.delivered) : q.completed;
      if (done >= kc.lastEnqueuedSeq) continue;
      const int64_t n = satSub(kc.lastEnqueuedSeq, done);
      open = open > INT64_MAX - n ? INT64_MAX : open + n;
      if (example.empty()) {
        const std::string me = refMember(g, m).label, peer = peerLabel(g, kc.peer);
        example = std::string(p2pOpName(kc.send)) + " #" + std::to_string(done + 1) + (kc.send ? " to " : " from ") +
                  peer + " by " + me + " not completed";
      }
    }
  }
  if (issued == 0) return "";
  if (open == 0 && !unknown) return kEveryP2PCompleted;
  if (open == 0) {
    return plural(issued, "send or receive", "sends and receives") +
           " issued (GPU completion not measured: NCCLFR_TIMING=host)";
  }
  // The best example: a pair stuck in the transport, else counts that do not pair up.
  size_t stuck = 0;
  for (const auto& x : v_.p2pStuck) {
    if (x.comm != g.id) continue;
    if (stuck++ == 0) {
      example = "send #" + std::to_string(x.p2pSeq) + " from " + x.src.label + " to " + x.dst.label +
                " and its matching recv both started, neither completed";
    }
  }
  if (stuck > 1) example += " (and " + plural(static_cast<int64_t>(stuck - 1), "more pair") + " like it)";
  if (stuck == 0) {
    for (const auto& l : v_.p2pLeftovers) {
      if (l.comm != g.id) continue;
      example = l.src.label + " issued " + plural(l.sends, "send") + " to " + l.dst.label + ", " + l.dst.label +
                " issued " + plural(l.receives, "receive") + " from " + l.src.label;
      break;
    }
  }
  return plural(open, "send or receive", "sends and receives") + " not completed: " + example;
}

const ProcessDump* Analyzer::alarmDump() const {
  const ProcessDump* alarm = nullptr;
  for (const auto& d : job_.processes) {
    bool bad = d.reason == schema::DumpReason::STALL || d.reason == schema::DumpReason::NCCL_ERROR ||
               d.reason == schema::DumpReason::ABORT || d.processDied;
    if (bad && (!alarm || d.globalRank == d.triggerRank)) alarm = &d;
  }
  return alarm;
}

void Analyzer::collectOtherSuspects() {
  // Ranks without a dump in communicators recorded without GPU times, where every present rank issued
  // the same collectives: whether the peers wait for them cannot be told, but that they left no dump
  // is known. When the dumps say something went wrong, they are named, with that caveat.
  if (const ProcessDump* alarm = alarmDump()) {
    std::set<std::string> named;
    for (const auto& r : roots_) {
      const Group& g = groups_[r.node.group];
      named.insert(refMember(g, g.members[r.node.member]).label);
    }
    // The communicator with the most peers with a dump first: it says the most.
    std::vector<size_t> order;
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
      if (groups_[gi].frontierUnknown && groups_[gi].present < groups_[gi].members.size()) order.push_back(gi);
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return groups_[a].present > groups_[b].present; });
    for (size_t gi : order) {
      const Group& g = groups_[gi];
      int64_t upTo = -1;
      for (const auto& m : g.members) {
        if (m.proc != kNone) upTo = std::max(upTo, commOf(m).lastEnqueuedSeq);
      }
      size_t listed = 0;  // as for a stalled communicator's blockers; ranks.missing lists them all
      for (const auto& m : g.members) {
        if (m.proc != kNone || listed == kMaxMissingBlockers) continue;
        Suspect s;
        s.who = refMember(g, m);
        if (!named.insert(s.who.label).second) continue;
        ++listed;
        s.comm = g.id;
        s.commRank = m.commRank;
        s.reason = Reason::kMissing;
        const std::string peers = g.present == 1 ? "its peer with a dump there issued"
                                                 : "its " + std::to_string(g.present) +
                                                       " peers with a dump there issued the same";
        const char* why = alarm->processDied                                  ? "a process that died"
                          : alarm->reason == schema::DumpReason::STALL      ? "a stall"
                          : alarm->reason == schema::DumpReason::NCCL_ERROR ? "an NCCL error"
                                                                            : "an abort";
        s.evidence = "left no dump (it is comm rank " + std::to_string(m.commRank) + " of " + commName(g) +
                     (m.globalRank >= 0 ? "" : "; its global rank is not known") + "); " + peers +
                     " collectives up to #" + std::to_string(upTo) + ", and the dumps were written because of " +
                     why + " (" + alarm->label() + "); recorded with NCCLFR_TIMING=host, so whether its peers wait "
                     "for it (or for what) cannot be told";
        extra_.push_back({std::move(s), ""});
      }
    }
  }
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
    s.evidence = "the process died (" + salvageText(d) + ")";
    std::string call;
    if (const EntryView* e = d.newest()) {
      s.comm = d.comms[e->comm].id;
      s.commRank = d.comms[e->comm].rank;
      s.seq = e->isP2P() ? e->p2pSeq : e->seq;
      s.op = enumName(e->op);
      if (e->isP2P()) {
        auto [gi, mi] = where_[p][e->comm];
        (void)mi;
        if (gi != kNone) s.peer = peerRef(groups_[gi], e->root);
      }
      call = describeEntry(p, *e);
      s.evidence += "; its last call was " + call + " (" + entryStateText(p, *e) + ")";
    }
    extra_.push_back({std::move(s), std::move(call)});
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

const EntryView* Analyzer::witnessEntry(size_t w, const Root& r) const {
  const Group& g = groups_[r.node.group];
  const auto& d = proc(w);
  for (const auto& e : d.entries) {
    if (e.isP2P() != r.node.p2p) continue;
    if (r.node.p2p ? e.p2pSeq != r.node.seq : e.seq != r.node.seq) continue;
    const CommView& c = d.comms[e.comm];
    if (c.id != g.id) {
      // In the same program a sibling communicator (another TP or DP group of the same split: same
      // parent, size and name) makes the same call at the same sequence number.
      if (r.node.p2p || g.parentId == 0 || c.parentId != g.parentId || c.size != g.size || c.name != g.name) continue;
      if (!g.frontierOp.empty() && enumName(e.op) != g.frontierOp) continue;
    }
    return &e;
  }
  return nullptr;
}

// The stalled rank's program never ran either call, so its peers say which comes first: a peer that
// made both calls (or a sibling group's twin of one of them) issued them in program order, on one
// clock. Peers vote; without a witness, the one peers began waiting in first (earliest enqueue, wall
// clock) comes first; then the lower communicator id and sequence number, so the answer never
// depends on the order the chains were followed in.
bool Analyzer::issuedBefore(const Root& a, const Root& b) const {
  std::vector<size_t> witnesses;
  for (const Root* r : {&a, &b}) {
    const Group& g = groups_[r->node.group];
    size_t n = 0;
    for (const auto& m : g.members) {
      if (m.proc == kNone || m.commRank == g.members[r->node.member].commRank) continue;
      witnesses.push_back(m.proc);
      if (++n == 64) break;
    }
  }
  std::sort(witnesses.begin(), witnesses.end());
  witnesses.erase(std::unique(witnesses.begin(), witnesses.end()), witnesses.end());
  int votes = 0;
  for (size_t w : witnesses) {
    const EntryView* x = witnessEntry(w, a);
    const EntryView* y = witnessEntry(w, b);
    if (!x || !y || x->index == y->index) continue;
    votes += x->index < y->index ? 1 : -1;
  }
  if (votes != 0) return votes > 0;
  if (a.waitSince != b.waitSince && a.waitSince > 0 && b.waitSince > 0) return a.waitSince < b.waitSince;
  const Group& ga = groups_[a.node.group];
  const Group& gb = groups_[b.node.group];
  return std::tie(ga.id, a.node.p2p, a.node.seq) < std::tie(gb.id, b.node.p2p, b.node.seq);
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
    if (r.reason == Reason::kHostStall) {
      // A rank that never issued several calls its peers wait in: name the first it failed to
      // issue (the others come after it in its program).
      if (issuedBefore(r, kept)) keep[k] = ri;
    } else if (r.reason == Reason::kError &&
               groups_[r.node.group].members[r.node.member].error !=
                   groups_[kept.node.group].members[kept.node.member].error) {
      // Name the error where it was reported (a hostOnly rank's host stall elsewhere is read as it).
      if (groups_[r.node.group].members[r.node.member].error) keep[k] = ri;
    } else if (r.waitingGroups.size() > kept.waitingGroups.size() ||
               (r.waitingGroups.size() == kept.waitingGroups.size() && r.chain.size() > kept.chain.size())) {
      keep[k] = ri;
    }
  }
  std::vector<Finding> all;
  for (size_t k = 0; k < keep.size(); ++k) {
    const Root& r = roots_[keep[k]];
    const Node& named = r.named();
    const Group& g = groups_[named.group];
    const Member& m = g.members[named.member];
    Suspect s;
    s.who = refMember(g, m);
    s.comm = g.id;
    s.commRank = m.commRank;
    s.seq = named.seq;
    s.op = named.p2p ? p2pOpName(named.send) : g.frontierOp;
    if (named.p2p) s.peer = peerRef(g, named.peer);
    s.reason = r.reason;
    s.evidence = r.evidence;
    // Rank-communicator pairs that wait on it: in each stalled communicator that leads here, the
    // members that issued the call and have not completed it, this rank not counted.
    int64_t blocking = 0;
    for (size_t gi : waiting[k]) {
      for (const auto& o : groups_[gi].members) {
        if (o.proc == kNone || o.proc == m.proc) continue;
        if (o.state == RankState::kNotEnqueued || o.state == RankState::kCompleted) continue;
        ++blocking;
      }
    }
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
    all.push_back({std::move(s), ""});
  }
  // A mismatch found by content and the same rank found by a cycle: keep one.
  for (auto& f : extra_) {
    const Suspect& s = f.suspect;
    bool dup = false;
    for (const auto& a : all) {
      dup = dup || (a.suspect.who.label == s.who.label && a.suspect.reason == s.reason && a.suspect.comm == s.comm);
    }
    if (!dup) all.push_back(std::move(f));
  }
  std::stable_sort(all.begin(), all.end(), [](const Finding& fa, const Finding& fb) {
    const Suspect& a = fa.suspect;
    const Suspect& b = fb.suspect;
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
  for (auto& f : all) v_.suspects.push_back(std::move(f.suspect));

  // Per-communicator reports.
  std::vector<std::string> hostOnlyComms;  // communicators where only enqueue counts are known
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
    // The communicator's own summary: its id and name stand beside it wherever it is shown.
    const Node frontierNode{gi, 0, RankState::kStarted, false, g.frontier, -1, -1};
    if (g.stalled) {
      std::map<RankState, size_t> counts;
      for (const auto& m : g.members) ++counts[m.state];
      std::string parts;
      for (auto [st, n] : counts) parts += (parts.empty() ? "" : "; ") + std::to_string(n) + " " + rankStateText(st);
      c.summary = "stalled at " + callText(frontierNode) + ": " + parts;
    } else if (inFlight_.count(gi)) {
      c.summary = callText(frontierNode) + " was in flight at the snapshot (not completed on every rank yet)";
    } else if (g.frontierUnknown) {
      int64_t upTo = commOf(g.members[0].proc != kNone ? g.members[0] : g.members.back()).lastEnqueuedSeq;
      c.summary = "every rank issued the same collectives, up to #" + std::to_string(upTo) +
                  "; GPU completion not measured (NCCLFR_TIMING=host), so a stall after that cannot be located";
      hostOnlyComms.push_back(commName(g) + " up to #" + std::to_string(upTo));
    } else {
      bool issued = false;
      for (const auto& m : g.members) issued = issued || (m.proc != kNone && commOf(m).lastEnqueuedSeq >= 0);
      // Sends and receives count too: a communicator can carry nothing else.
      const std::string p2p = p2pAccount(gi);
      if (p2p.empty()) {
        c.summary = issued ? "every call completed on every rank with a dump" : "no collective was issued on it";
      } else if (p2p == kEveryP2PCompleted) {
        c.summary = issued ? "every call completed on every rank with a dump" : "no collective was issued on it; " + p2p;
      } else {
        c.summary = (issued ? "every collective completed on every rank with a dump; "
                            : "no collective was issued on it; ") +
                    p2p;
      }
    }
    if (g.mismatchSeq >= 0) c.summary += "; the ranks' calls differ from #" + std::to_string(g.mismatchSeq) + " on";
    v_.comms.push_back(std::move(c));
  }
  if (!hostOnlyComms.empty()) {
    std::string list;
    for (size_t k = 0; k < hostOnlyComms.size() && k < 4; ++k) list += (k ? ", " : "") + hostOnlyComms[k];
    if (hostOnlyComms.size() > 4) list += " and " + std::to_string(hostOnlyComms.size() - 4) + " more";
    v_.notes.push_back("on " + plural(static_cast<int64_t>(hostOnlyComms.size()), "communicator") +
                       " every rank issued the same collectives (" + list +
                       "); GPU completion was not measured (NCCLFR_TIMING=host), so a stall after those calls cannot "
                       "be located");
  }
  // Where the suspects are first, then the other stalled communicators.
  std::set<uint64_t> suspectComms;
  for (const auto& s : v_.suspects) suspectComms.insert(s.comm);
  for (size_t gi : transportGroups_) suspectComms.insert(groups_[gi].id);
  for (const auto& x : v_.p2pStuck) suspectComms.insert(x.comm);
  std::stable_sort(v_.comms.begin(), v_.comms.end(), [&](const CommReport& a, const CommReport& b) {
    auto rank = [&](const CommReport& c) { return suspectComms.count(c.id) ? 0 : c.stalled ? 1 : 2; };
    return rank(a) < rank(b);
  });

  bool stalled = false;
  for (const auto& g : groups_) stalled = stalled || g.stalled;
  // With hostOnly timing nothing stalls in the analysis's eyes once every rank issued the same
  // calls; the recorders' own reason for dumping still says whether something went wrong.
  bool hostOnly = false;
  for (size_t p = 0; p < job_.processes.size(); ++p) hostOnly = hostOnly || !completionKnown(p);
  const ProcessDump* alarm = alarmDump();
  if (!job_.unreadable.empty()) {
    v_.status = Status::kIncomplete;
  } else if (!v_.suspects.empty() && (v_.suspects[0].reason == Reason::kMismatch ||
                                      v_.suspects[0].reason == Reason::kUnmatchedP2P)) {
    v_.status = Status::kDesync;
  } else if (stalled || !v_.suspects.empty()) {
    v_.status = Status::kHang;
  } else if (!v_.missingRanks.empty()) {
    v_.status = Status::kIncomplete;
  } else if (hostOnly && alarm) {
    v_.status = Status::kHang;  // the recorders saw a stall or an error; where is not measured
  } else {
    v_.status = Status::kOk;
  }

  // Summary line.
  std::string sum;
  if (!v_.suspects.empty()) {
    const auto& s = v_.suspects[0];
    sum = s.who.label + ": " + reasonName(s.reason);
    std::string call = all[0].call;
    if (call.empty()) {
      if (!s.op.empty() && s.seq >= 0) call = s.op + " #" + std::to_string(s.seq);
      if (!call.empty() && !s.peer.label.empty()) {
        call += (s.op == "send" ? " to " : s.op == "recv" ? " from " : " with ") + s.peer.label;
      }
      if (s.comm != 0) {
        auto it = groupById_.find(s.comm);
        call += (call.empty() ? "" : " ") + std::string("on ") +
                (it != groupById_.end() ? commName(groups_[it->second]) : "comm " + hexId(s.comm));
      }
    }
    if (!call.empty()) sum += (call.rfind("on ", 0) == 0 ? " " : " in ") + call;
    // The others named with it, unless the call already names its one peer.
    bool named = s.with.size() == 1 && call.find(" " + s.with[0].label + " on ") != std::string::npos;
    if (!s.with.empty() && !named) {
      sum += " (with ";
      for (size_t k = 0; k < s.with.size() && k < 3; ++k) sum += (k ? ", " : "") + s.with[k].label;
      if (s.with.size() > 3) sum += " and " + std::to_string(s.with.size() - 3) + " more";
      sum += ")";
    }
  } else if (stalled) {
    size_t places = 0;
    std::string at, how;
    bool unsure = false;
    for (size_t gi : transportGroups_) {
      if (!groups_[gi].stalled || groups_[gi].frontier < 0) continue;
      if (places++ == 0) {
        at = nodeText({gi, 0, RankState::kStarted, false, groups_[gi].frontier, -1, -1});
        how = "every rank started it, none completed it";
        unsure = transportUnsure_.count(gi) > 0;
      }
    }
    for (const auto& x : v_.p2pStuck) {
      if (places++ == 0) {
        auto it = groupById_.find(x.comm);
        at = "send #" + std::to_string(x.p2pSeq) + " from " + x.src.label + " to " + x.dst.label + " on " +
             (it != groupById_.end() ? commName(groups_[it->second]) : "comm " + hexId(x.comm));
        how = "it and its matching recv both started, neither completed";
      }
    }
    std::string more = places > 1 ? " (and " + std::to_string(places - 1) + " more like it)" : "";
    if (places > 0 && unsure) {
      sum = "stalled, and no rank is known to be behind: " + at + " is stuck in the transport or on the GPU of a rank "
            "whose start of it was not measured" + more;
    } else if (places > 0) {
      sum = "stalled, and no rank is behind: " + at + " is stuck in the transport (" + how + ")" + more;
    } else if (!unknownEnds_.empty()) {
      sum = "stalled, and no rank is known to be behind: where the GPU progress was not measured, it cannot be told "
            "(see the notes)";
    } else {
      sum = "stalled, and no rank is behind";
    }
  } else if (!inFlight_.empty()) {
    sum = "calls in flight at the snapshot (the longest waiting " + fmtWait(inFlightLongestNs_) + ", " +
          inFlightUnder_ + ") — not a hang";
  } else if (hostOnly && alarm) {
    const char* why = alarm->processDied                                  ? "a process died"
                      : alarm->reason == schema::DumpReason::STALL      ? "a stall"
                      : alarm->reason == schema::DumpReason::NCCL_ERROR ? "an NCCL error"
                                                                        : "an abort";
    sum = std::string("the dumps were written because of ") + why + " (" + alarm->label() +
          (alarm->detail.empty() ? std::string() : ": " + alarm->detail) +
          "), but every rank issued the same collectives and GPU completion was not measured (NCCLFR_TIMING=host): "
          "the cause cannot be told from host-only recording";
  } else if (hostOnly) {
    sum = "every call was issued and matched (GPU completion not measured: NCCLFR_TIMING=host)";
  } else {
    sum = "every call completed and matched";
  }
  if (v_.status == Status::kIncomplete) {
    std::string lost;
    if (!job_.unreadable.empty()) lost = plural(static_cast<int64_t>(job_.unreadable.size()), "unreadable dump");
    if (!v_.missingRanks.empty()) {
      lost += (lost.empty() ? "" : ", ") + plural(static_cast<int64_t>(v_.missingRanks.size()), "rank") +
              " without a dump";
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
    v_.notes.push_back(plural(static_cast<int64_t>(noCompletion), "process", "processes") +
                       " recorded with NCCLFR_TIMING=host (hostOnly): GPU completion is not known for " +
                       (noCompletion == 1 ? "it" : "them"));
  } else if (noStart > 0) {
    v_.notes.push_back(plural(static_cast<int64_t>(noStart), "process", "processes") +
                       " recorded with NCCLFR_TIMING=end (endOnly): whether a call started on the GPU is not known for " +
                       (noStart == 1 ? "it" : "them") +
                       " (a call queued behind other GPU work and one stuck in the transport look the same)");
  }
  buildGroups();
  checkMeasured();
  inferProgress();
  inferMissingRanks();
  computeFrontiers();
  checkMismatches();
  matchP2P();
  checkSnapshot();
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
