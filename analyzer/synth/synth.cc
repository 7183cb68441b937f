#include "ncclfr/synth.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <capnp/message.h>

#include "ncclfr/dump_file.h"
#include "ncclfr/version.h"

namespace ncclfr::synth {
namespace fs = std::filesystem;

const std::vector<std::string>& scenarioNames() {
  static const std::vector<std::string> names = {"healthy", "host_stall", "device_stall", "mismatch", "unmatched_p2p",
                                                 "died",    "missing",    "error",        "transport"};
  return names;
}

namespace {

using schema::Op;

// Clocks of the synthetic job: every host boots at the same monotonic time (only differences matter).
constexpr int64_t kMonoBase = 1'000'000'000'000;          // 1000 s after boot
constexpr int64_t kWallBase = 1'795'000'000'000'000'000;  // 2026-11-19
constexpr int64_t kStepNs = 100'000'000;                  // 100 ms per training step
constexpr int64_t kOpGapNs = 1'000'000;                   // 1 ms between calls
constexpr int64_t kStallTimeoutNs = 60'000'000'000;       // NCCLFR_TIMEOUT

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 29;
  return h;
}

enum CommKind { kTP = 0, kDP = 1, kPP = 2, kKinds = 3 };

struct Call {
  CommKind comm;
  Op op;
  schema::DataType dtype;
  uint64_t count;
  int32_t peer = -1;  // comm rank, p2p only
};

// Everything about the job that does not depend on the rank.
struct Plan {
  Options o;
  int32_t tp = 1, pp = 1, dp = 1;
  int64_t steps = 0;  // steps fully completed before the fault step (healthy: all of them)
  bool fault = false;
  int32_t faultRank = -1;
  size_t faultCall = 0;  // index into the fault rank's fault-step program
  uint64_t worldId = 0;

  int32_t tpIdx(int32_t r) const { return r % tp; }
  int32_t dpIdx(int32_t r) const { return (r / tp) % dp; }
  int32_t ppIdx(int32_t r) const { return r / (tp * dp); }
  int32_t size(CommKind k) const { return k == kTP ? tp : k == kDP ? dp : pp; }
  int32_t commRank(CommKind k, int32_t r) const { return k == kTP ? tpIdx(r) : k == kDP ? dpIdx(r) : ppIdx(r); }
  int32_t color(CommKind k, int32_t r) const {
    return k == kTP ? ppIdx(r) * dp + dpIdx(r) : k == kDP ? ppIdx(r) * tp + tpIdx(r) : dpIdx(r) * tp + tpIdx(r);
  }
  // NCCL derives a split's commHash from (parent hash, split count, color).
  uint64_t commId(CommKind k, int32_t r) const {
    return mix(mix(mix(worldId, static_cast<uint64_t>(k) + 1), static_cast<uint64_t>(color(k, r))), 0x51);
  }
  int32_t globalOf(CommKind k, int32_t r, int32_t commRank) const {
    int32_t t = tpIdx(r), d = dpIdx(r), p = ppIdx(r);
    if (k == kTP) t = commRank;
    if (k == kDP) d = commRank;
    if (k == kPP) p = commRank;
    return p * tp * dp + d * tp + t;
  }

  // One training step of rank r: pipeline receive, two tensor-parallel all-reduces, pipeline send,
  // a loss all-reduce over the pipeline, then data-parallel reduce-scatter + all-gather.
  std::vector<Call> program(int32_t r, bool faultStep) const {
    std::vector<Call> calls;
    int32_t s = ppIdx(r);
    if (pp > 1 && s > 0) calls.push_back({kPP, Op::RECV, schema::DataType::BFLOAT16, 1 << 18, s - 1});
    if (tp > 1) {
      calls.push_back({kTP, Op::ALL_REDUCE, schema::DataType::BFLOAT16, 1 << 20, -1});
      calls.push_back({kTP, Op::ALL_REDUCE, schema::DataType::BFLOAT16, 1 << 18, -1});
    }
    if (pp > 1 && s < pp - 1) {
      if (faultStep && r == faultRank && o.scenario == "unmatched_p2p") {
        calls.push_back({kPP, Op::SEND, schema::DataType::BFLOAT16, 1 << 18, s + 1});  // the extra one
      }
      calls.push_back({kPP, Op::SEND, schema::DataType::BFLOAT16, 1 << 18, s + 1});
    }
    if (pp > 1) calls.push_back({kPP, Op::ALL_REDUCE, schema::DataType::FLOAT32, 1, -1});
    if (dp > 1) {
      calls.push_back({kDP, Op::REDUCE_SCATTER, schema::DataType::FLOAT32, 1 << 16, -1});
      calls.push_back({kDP, Op::ALL_GATHER, schema::DataType::BFLOAT16, 1 << 16, -1});
    }
    return calls;
  }
};

// Where one call of the fault step ended up on one rank.
struct Outcome {
  bool enqueued = false, started = false, completed = false, error = false;
};

// The fault step, simulated: hosts issue their step's calls in order (asynchronously, as NCCL
// does) unless stalled; each rank's single stream starts a call when the previous one completed;
// a collective completes when every member started it, a send/recv when both sides did; the fault
// blocks one place. Iterated to a fixpoint, this is the state a hung job is found in.
class FaultStep {
 public:
  explicit FaultStep(const Plan& plan) : p_(plan) {}

  std::vector<std::vector<Outcome>> run() {
    int32_t n = p_.o.ranks;
    ranks_.resize(static_cast<size_t>(n));
    for (int32_t r = 0; r < n; ++r) {
      Rank& x = ranks_[static_cast<size_t>(r)];
      x.calls = p_.program(r, true);
      x.out.resize(x.calls.size());
      // Sequence numbers within the step, per communicator and per p2p direction.
      int32_t seqInStep[kKinds] = {0, 0, 0};
      int32_t sendN = 0, recvN = 0;
      for (const auto& c : x.calls) {
        Key k;
        if (c.op == Op::SEND || c.op == Op::RECV) {
          bool send = c.op == Op::SEND;
          int32_t src = send ? p_.ppIdx(r) : c.peer;
          int32_t n2 = send ? sendN++ : recvN++;
          k = {3, static_cast<uint64_t>(p_.color(kPP, r)), static_cast<uint64_t>(src), static_cast<uint64_t>(n2)};
        } else {
          k = {static_cast<uint64_t>(c.comm), static_cast<uint64_t>(p_.color(c.comm, r)),
               static_cast<uint64_t>(seqInStep[c.comm]++), 0};
        }
        x.keys.push_back(k);
      }
    }
    if (p_.fault) {
      Rank& f = ranks_[static_cast<size_t>(p_.faultRank)];
      const std::string& s = p_.o.scenario;
      size_t fc = p_.faultCall;
      if (s == "host_stall") f.hostStop = fc;
      if (s == "device_stall") f.streamStop = fc;
      if (s == "died" || s == "missing" || s == "error") {
        f.hostStop = fc + 1;
        f.streamStop = fc + 1;
      }
      if (s == "died" || s == "missing" || s == "error" || s == "mismatch" || s == "transport") {
        blocked_[keyHash(f.keys[fc])] = true;
      }
      if (s == "error") f.errorAt = fc;
    }
    for (bool changed = true; changed;) {
      changed = false;
      for (auto& x : ranks_) changed = advance(x) || changed;
    }
    std::vector<std::vector<Outcome>> out;
    out.reserve(ranks_.size());
    for (auto& x : ranks_) out.push_back(std::move(x.out));
    return out;
  }

 private:
  struct Key {
    uint64_t a, b, c, d;
  };
  struct Rank {
    std::vector<Call> calls;
    std::vector<Key> keys;
    std::vector<Outcome> out;
    size_t hostPos = 0, streamPos = 0;
    bool running = false;
    size_t hostStop = SIZE_MAX, streamStop = SIZE_MAX, errorAt = SIZE_MAX;
  };
  static uint64_t keyHash(const Key& k) { return mix(mix(mix(mix(7, k.a), k.b), k.c), k.d); }

  bool advance(Rank& x) {
    bool changed = false;
    while (x.hostPos < x.calls.size() && x.hostPos != x.hostStop) {
      x.out[x.hostPos++].enqueued = true;
      changed = true;
    }
    for (;;) {
      if (!x.running) {
        if (x.streamPos >= x.hostPos || x.streamPos == x.streamStop || x.streamPos >= x.calls.size()) break;
        x.running = true;
        x.out[x.streamPos].started = true;
        if (x.streamPos == x.errorAt) x.out[x.streamPos].error = true;
        const Key& k = x.keys[x.streamPos];
        const Call& c = x.calls[x.streamPos];
        if (c.op == Op::SEND || c.op == Op::RECV) {
          started_[keyHash(k) ^ (c.op == Op::SEND ? 1 : 2)] += 1;
        } else {
          started_[keyHash(k)] += 1;
        }
        changed = true;
      }
      const Key& k = x.keys[x.streamPos];
      const Call& c = x.calls[x.streamPos];
      uint64_t h = keyHash(k);
      if (blocked_.count(h)) break;
      bool done;
      if (c.op == Op::SEND || c.op == Op::RECV) {
        done = started_[h ^ 1] > 0 && started_[h ^ 2] > 0;
      } else {
        done = started_[h] >= p_.size(c.comm);
      }
      if (!done) break;
      x.out[x.streamPos].completed = true;
      ++x.streamPos;
      x.running = false;
      changed = true;
    }
    return changed;
  }

  const Plan& p_;
  std::vector<Rank> ranks_;
  std::unordered_map<uint64_t, int32_t> started_;
  std::unordered_map<uint64_t, bool> blocked_;
};

struct Rec {
  uint32_t comm;
  Op op;
  schema::EntryState state;
  schema::DataType dtype;
  int32_t root;
  int64_t seq, p2pSeq;
  uint32_t opSeq, groupId;
  uint64_t count;
  int64_t enq, start, end;
  int32_t result;
};

struct CommCounters {
  int64_t enq = -1, started = -1, completed = -1;
  uint64_t total = 0;
  uint32_t opSeq[16] = {};
  struct P2P {
    int64_t enq = -1, started = -1, completed = -1;
  };
  P2P send, recv;  // the pipeline has one peer per direction
  int32_t sendPeer = -1, recvPeer = -1;
  int32_t asyncError = 0;
  int64_t asyncErrorMono = 0;
};

// Builds and writes the dump of rank r. `steps` healthy steps, then the fault step's outcomes (if
// any). Returns the number of entries written.
uint64_t writeRank(const Plan& plan, int32_t r, int64_t steps, const std::vector<Outcome>* faultStep,
                   const std::string& path, bool salvaged, const std::string& incident, int32_t triggerRank,
                   std::string* error) {
  const Options& o = plan.o;
  const auto timing = o.timing;
  std::vector<CommKind> kinds;
  if (plan.tp > 1) kinds.push_back(kTP);
  if (plan.dp > 1) kinds.push_back(kDP);
  if (plan.pp > 1) kinds.push_back(kPP);
  // comm index in the dump: 0 is the world communicator the splits came from.
  auto commIndex = [&](CommKind k) {
    return static_cast<uint32_t>(1 + (std::find(kinds.begin(), kinds.end(), k) - kinds.begin()));
  };
  std::vector<CommCounters> counters(1 + kinds.size());
  const uint32_t cap = std::max<uint32_t>(o.entries, 1);
  std::vector<Rec> ring(cap);
  uint64_t total = 0;
  uint32_t groupId = 0;

  // Untracked calls: no GPU events, so neither their entry nor the exact counters see them run.
  const bool canTrack = timing != schema::TimingMode::HOST_ONLY;
  auto emit = [&](const Call& c, int64_t enq, const Outcome& done, bool untracked) {
    Outcome out = done;
    if (untracked) out.started = out.completed = false;
    uint32_t ci = commIndex(c.comm);
    CommCounters& k = counters[ci];
    Rec e{};
    e.comm = ci;
    e.op = c.op;
    e.dtype = c.dtype;
    e.count = c.count;
    e.enq = enq;
    bool p2p = c.op == Op::SEND || c.op == Op::RECV;
    e.root = p2p ? c.peer : -1;
    e.opSeq = k.opSeq[static_cast<unsigned>(c.op) & 15]++;
    if (p2p) {
      e.seq = k.enq;  // the last collective issued before it
      auto& d = c.op == Op::SEND ? k.send : k.recv;
      (c.op == Op::SEND ? k.sendPeer : k.recvPeer) = c.peer;
      e.p2pSeq = ++d.enq;
      e.groupId = ++groupId;
      if (out.started) d.started = e.p2pSeq;
      if (out.completed) d.completed = e.p2pSeq;
    } else {
      e.seq = ++k.enq;
      e.p2pSeq = -1;
      if (out.started) k.started = e.seq;
      if (out.completed) k.completed = e.seq;
    }
    ++k.total;
    e.start = out.started ? enq + 200'000 : 0;
    e.end = out.completed ? enq + 700'000 : 0;
    e.state = out.completed ? schema::EntryState::COMPLETED
              : out.started ? schema::EntryState::STARTED
              : untracked   ? schema::EntryState::UNTRACKED
                            : schema::EntryState::SCHEDULED;
    if (out.error) {
      e.state = schema::EntryState::ERROR;
      k.asyncError = 2;  // ncclSystemError
      k.asyncErrorMono = enq + 5'000'000'000;
    }
    e.result = 0;
    ring[total % cap] = e;
    ++total;
  };

  const Outcome done{true, true, true, false};
  const bool untrackedRank = canTrack && r == o.untrackedRank;
  for (int64_t s = 0; s < steps; ++s) {
    auto calls = plan.program(r, false);
    bool untracked = untrackedRank && !faultStep && s == steps - 1;
    for (size_t i = 0; i < calls.size(); ++i) {
      emit(calls[i], kMonoBase + s * kStepNs + static_cast<int64_t>(i) * kOpGapNs, done, untracked);
    }
  }
  int64_t endMono = kMonoBase + steps * kStepNs;
  int64_t dumpMono = endMono + 1'000'000'000;
  if (faultStep) {
    auto calls = plan.program(r, true);
    for (size_t i = 0; i < calls.size(); ++i) {
      if (!(*faultStep)[i].enqueued) break;
      Call c = calls[i];
      if (o.scenario == "mismatch" && r == plan.faultRank && i == plan.faultCall) c.count *= 2;
      emit(c, endMono + static_cast<int64_t>(i) * kOpGapNs, (*faultStep)[i], untrackedRank);
    }
    dumpMono = endMono + kStallTimeoutNs + 500'000'000;
  }
  if (o.dumpDelayNs >= 0) dumpMono = endMono + o.dumpDelayNs;

  capnp::MallocMessageBuilder message(static_cast<unsigned>(std::min<uint64_t>(cap, total) * 13 + 4096));
  auto d = message.initRoot<schema::Dump>();
  auto p = d.initProcess();
  std::string host = "node" + std::to_string(r / 8);
  p.setHost(host);
  p.setPid(static_cast<uint32_t>(20000 + r % 8 * 101 + r / 8 % 7));
  p.setStartWallNs(kWallBase);
  p.setGlobalRank(o.noGlobalRank ? -1 : r);
  p.setWorldSize(o.noGlobalRank ? -1 : o.ranks);
  p.setLocalRank(o.noGlobalRank ? -1 : r % 8);
  p.setRankSource(o.noGlobalRank ? "" : "RANK");
  p.setJobId(o.jobId);
  p.setJobIdSource("NCCLFR_JOB_ID");
  p.setNcclVersion(22809);
  p.setCudaDriverVersion(13000);
  p.setRecorderVersion(NCCLFR_VERSION_STRING);
  auto clock = p.initClock();
  clock.setMonoNs(dumpMono);
  clock.setWallNs(kWallBase + 3'600'000'000'000 + dumpMono - kMonoBase);
  p.setCmdline("ncclfr synth --scenario " + o.scenario);
  p.setTiming(timing);
  p.setRingCapacity(cap);

  auto info = d.initInfo();
  info.setWallNs(clock.getWallNs());
  info.setMonoNs(dumpMono);
  if (salvaged) {
    info.setReason(schema::DumpReason::SALVAGED);
    info.setDetail("salvaged from /dev/shm");
    info.setWriterHost(host);
    info.setWriterPid(99);
    info.setProcessDied(faultStep != nullptr);
  } else if (o.onDemand) {
    info.setReason(schema::DumpReason::ON_DEMAND);
    info.setIncidentId(incident);
    info.setIncidentWallNs(clock.getWallNs());
    info.setDetail("requested with `ncclfr trigger`");
  } else if (!faultStep) {
    info.setReason(schema::DumpReason::EXIT);
    info.setIncidentId(incident);
    info.setDetail("dump at exit");
  } else {
    info.setReason(r == triggerRank ? schema::DumpReason::STALL : schema::DumpReason::PEER_REQUEST);
    info.setIncidentId(incident);
    info.setIncidentWallNs(kWallBase + 3'600'000'000'000 + endMono + kStallTimeoutNs - kMonoBase);
    info.setTriggerRank(triggerRank);
    info.setDetail(r == triggerRank ? "a call stayed pending longer than NCCLFR_TIMEOUT" : "asked by a peer");
  }
  uint64_t held = std::min<uint64_t>(total, cap);
  info.setTotalEntries(total);
  info.setEvictedEntries(total - held);
  info.setLastEvictedIndex(total > held ? static_cast<int64_t>(total - held - 1) : -1);
  if (!salvaged) info.setTimeoutNs(o.timeoutNs);

  auto comms = d.initComms(static_cast<unsigned>(1 + kinds.size()));
  comms[0].setId(plan.worldId);
  comms[0].setRank(r);
  comms[0].setSize(o.ranks);
  comms[0].setCudaDevice(r % 8);
  comms[0].setCreatedMonoNs(kMonoBase - 5'000'000'000);
  comms[0].setInitDurationNs(800'000'000);
  comms[0].setState(schema::CommState::LIVE);
  comms[0].setCreatedBy(schema::CommOrigin::INIT_RANK);
  comms[0].setName("world");
  for (size_t k = 0; k < kinds.size(); ++k) {
    CommKind kind = kinds[k];
    const CommCounters& c = counters[k + 1];
    auto x = comms[static_cast<unsigned>(k + 1)];
    x.setId(plan.commId(kind, r));
    x.setParentId(plan.worldId);
    x.setSplitColor(plan.color(kind, r));
    x.setSplitKey(plan.commRank(kind, r));
    x.setRank(plan.commRank(kind, r));
    x.setSize(plan.size(kind));
    x.setCudaDevice(r % 8);
    x.setCreatedMonoNs(kMonoBase - 4'000'000'000);
    x.setInitDurationNs(300'000'000);
    x.setState(schema::CommState::LIVE);
    x.setCreatedBy(schema::CommOrigin::SPLIT);
    x.setName(kind == kTP ? "tp" : kind == kDP ? "dp" : "pp");
    x.setLastAsyncError(c.asyncError);
    x.setLastAsyncErrorMonoNs(c.asyncErrorMono);
    x.setLastEnqueuedSeq(c.enq);
    x.setLastStartedSeq(timing == schema::TimingMode::FULL ? c.started : -1);
    x.setLastCompletedSeq(timing != schema::TimingMode::HOST_ONLY ? c.completed : -1);
    x.setTotalEntries(c.total);
    uint64_t heldHere = 0;
    for (uint64_t i = total - held; i < total; ++i) heldHere += ring[i % cap].comm == k + 1 ? 1 : 0;
    x.setEvictedEntries(c.total - heldHere);
    int n = (c.sendPeer >= 0 ? 1 : 0) + (c.recvPeer >= 0 ? 1 : 0);
    auto list = x.initP2p(static_cast<unsigned>(n));
    unsigned li = 0;
    for (int dir = 0; dir < 2; ++dir) {
      int32_t peer = dir == 0 ? c.sendPeer : c.recvPeer;
      if (peer < 0) continue;
      const auto& q = dir == 0 ? c.send : c.recv;
      list[li].setPeer(peer);
      list[li].setSend(dir == 0);
      list[li].setLastEnqueuedSeq(q.enq);
      list[li].setLastStartedSeq(timing == schema::TimingMode::FULL ? q.started : -1);
      list[li].setLastCompletedSeq(timing != schema::TimingMode::HOST_ONLY ? q.completed : -1);
      ++li;
    }
  }

  auto entries = d.initEntries(static_cast<unsigned>(held));
  for (uint64_t i = total - held, j = 0; i < total; ++i, ++j) {
    const Rec& e = ring[i % cap];
    auto x = entries[static_cast<unsigned>(j)];
    x.setComm(e.comm);
    x.setOp(e.op);
    auto state = e.state;
    int64_t start = e.start, end = e.end;
    if (timing != schema::TimingMode::FULL) {
      start = 0;
      if (state == schema::EntryState::STARTED) state = schema::EntryState::SCHEDULED;
    }
    if (timing == schema::TimingMode::HOST_ONLY) {
      end = 0;
      if (state == schema::EntryState::COMPLETED) state = schema::EntryState::SCHEDULED;
    }
    x.setState(state);
    x.setDtype(e.dtype);
    x.setRedOp(schema::RedOp::SUM);
    x.setRoot(e.root);
    x.setSeq(e.seq);
    x.setP2pSeq(e.p2pSeq);
    x.setOpSeq(e.opSeq);
    x.setGroupId(e.groupId);
    x.setCount(e.count);
    x.setStream(0x7f00'0000'1000ULL + static_cast<uint64_t>(r % 8) * 0x100);
    x.setEnqueueMonoNs(e.enq);
    x.setStartMonoNs(start);
    x.setEndMonoNs(end);
    x.setThreadId(static_cast<uint32_t>(30000 + r % 8));
    x.setResult(e.result);
    x.setCallDurationNs(12'000);
  }
  if (!writeDumpFile(path, message, error)) return UINT64_MAX;
  return held;
}

}  // namespace

bool writeJob(const Options& opts, const std::string& dir, Result* result, std::string* error) {
  *result = Result{};
  Plan plan;
  plan.o = opts;
  const Options& o = plan.o;
  if (o.ranks < 2 || o.ranks > (1 << 22)) {
    *error = "--ranks must be between 2 and 4194304";
    return false;
  }
  const auto& names = scenarioNames();
  if (std::find(names.begin(), names.end(), o.scenario) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    *error = "unknown scenario '" + o.scenario + "' (one of: " + list + ")";
    return false;
  }
  plan.tp = o.tp > 0 ? o.tp : std::min(8, o.ranks);
  while (o.tp <= 0 && o.ranks % plan.tp != 0) --plan.tp;
  // A pipeline is needed for point-to-point traffic: leave room for two stages.
  while (o.tp <= 0 && o.pp <= 0 && o.scenario == "unmatched_p2p" && plan.tp > 1 && o.ranks / plan.tp < 2) {
    do {
      --plan.tp;
    } while (o.ranks % plan.tp != 0);
  }
  if (o.pp > 0) {
    plan.pp = o.pp;
  } else {
    int32_t rest = o.ranks / std::max(plan.tp, 1);
    plan.pp = rest % 4 == 0 && rest >= 8 ? 4 : rest % 2 == 0 && rest >= 4 ? 2 : 1;
    if (o.scenario == "unmatched_p2p" && plan.pp == 1 && rest >= 2 && rest % 2 == 0) plan.pp = 2;
  }
  if (plan.tp < 1 || plan.pp < 1 || o.ranks % (plan.tp * plan.pp) != 0) {
    *error = "--ranks must be divisible by --tp * --pp";
    return false;
  }
  plan.dp = o.ranks / (plan.tp * plan.pp);
  if (o.scenario == "unmatched_p2p" && plan.pp < 2) {
    *error = "scenario unmatched_p2p needs a pipeline (--pp 2 or more)";
    return false;
  }
  plan.worldId = mix(0x6e63636c, std::hash<std::string>{}(o.jobId));
  plan.fault = o.scenario != "healthy";
  int32_t fr = o.faultRank >= 0 ? o.faultRank : (o.ranks / 2 + 1) % o.ranks;
  if (fr >= o.ranks) {
    *error = "--fault-rank must be below --ranks";
    return false;
  }
  if (o.untrackedRank >= o.ranks) {
    *error = "--untracked-rank must be below --ranks";
    return false;
  }
  if (o.scenario == "unmatched_p2p" && plan.ppIdx(fr) == plan.pp - 1) {
    if (o.faultRank >= 0) {
      *error = "scenario unmatched_p2p: the fault rank sends an extra message down the pipeline, so it cannot be in the last stage";
      return false;
    }
    fr = plan.globalOf(kPP, fr, 0);
  }
  plan.faultRank = fr;
  // The fault hits the first tensor-parallel all-reduce (or the first collective there is).
  {
    auto calls = plan.program(fr, true);
    plan.faultCall = 0;
    while (plan.faultCall < calls.size() &&
           (calls[plan.faultCall].op == Op::SEND || calls[plan.faultCall].op == Op::RECV)) {
      ++plan.faultCall;
    }
    if (plan.faultCall == calls.size()) {
      *error = "this layout has no collective to plant the fault in";
      return false;
    }
  }
  size_t perStep = plan.program(0, false).size();
  plan.steps = o.steps > 0 ? o.steps : static_cast<int64_t>(o.entries * 5 / 4 / std::max<size_t>(perStep, 1) + 3);

  std::vector<std::vector<Outcome>> outcomes;
  if (plan.fault) outcomes = FaultStep(plan).run();
  // The rank that noticed first: a peer of the fault rank (on its tensor-parallel group).
  int32_t trigger = plan.fault ? plan.globalOf(kTP, fr, (plan.tpIdx(fr) + 1) % plan.tp) : -1;
  if (trigger == fr) trigger = (fr + 1) % o.ranks;
  std::string incident = o.incidentId;
  if (incident.empty()) {
    incident = plan.fault ? "20261121T203400.000Z-r" + std::to_string(trigger) : "20261121T203400.000Z-exit";
  }

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    *error = dir + ": " + ec.message();
    return false;
  }
  result->faultRank = plan.fault ? fr : -1;
  result->tp = plan.tp;
  result->pp = plan.pp;
  result->dp = plan.dp;
  std::vector<std::string> files(static_cast<size_t>(o.ranks));
  std::atomic<int32_t> next{0};
  std::atomic<size_t> done{0};
  std::atomic<uint64_t> written{0};
  std::mutex errorMutex;
  std::string firstError;
  auto work = [&](bool reporter) {
    for (;;) {
      int32_t r = next.fetch_add(1);
      if (r >= o.ranks) break;
      bool isFault = plan.fault && r == fr;
      if (isFault && o.scenario == "missing") {
        ++done;
        continue;
      }
      char name[64];
      std::snprintf(name, sizeof name, "rank%06d.ncclfr", r);
      std::string path = (fs::path(dir) / name).string();
      bool salvaged = isFault && o.scenario == "died";
      std::string why;
      uint64_t n = writeRank(plan, r, plan.steps, plan.fault ? &outcomes[static_cast<size_t>(r)] : nullptr, path,
                             salvaged, incident, trigger, &why);
      if (n == UINT64_MAX) {
        std::lock_guard<std::mutex> lock(errorMutex);
        if (firstError.empty()) firstError = why;
        break;
      }
      written += n;
      files[static_cast<size_t>(r)] = path;
      if (r == o.staleCopyOfRank) {
        std::snprintf(name, sizeof name, "rank%06d.salvaged.ncclfr", r);
        std::string stale = (fs::path(dir) / name).string();
        if (writeRank(plan, r, std::max<int64_t>(plan.steps - 5, 1), nullptr, stale, true, "", -1, &why) ==
            UINT64_MAX) {
          std::lock_guard<std::mutex> lock(errorMutex);
          if (firstError.empty()) firstError = why;
          break;
        }
      }
      size_t d = ++done;
      if (reporter && o.progress && d % 256 == 0) o.progress(d, static_cast<size_t>(o.ranks));
    }
  };
  unsigned threads = std::max(1u, o.threads);
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, false);
  work(true);
  for (auto& t : pool) t.join();
  if (!firstError.empty()) {
    *error = firstError;
    return false;
  }
  if (o.progress) o.progress(static_cast<size_t>(o.ranks), static_cast<size_t>(o.ranks));
  for (auto& f : files) {
    if (!f.empty()) result->files.push_back(std::move(f));
  }
  result->entriesWritten = written;
  return true;
}

}  // namespace ncclfr::synth
