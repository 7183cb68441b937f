// End-to-end tests of libncclfr.so preloaded into real processes, over the test-only fake NCCL
// (tests/recorder/fake_nccl.cc): no GPU and no sim/ needed, so timing is host-only unless a test
// adds the fake CUDA driver (tests/recorder/fake_cuda.cc: events complete when recorded, and can be
// made to run out). They cover the interposition (every call once, NCCL's internal calls not twice),
// the ring and its counters, every trigger that needs no GPU, signals, fork, salvage (field by field
// against the live dump), untracked calls, and degradation. The GPU side (events, device stalls) is
// tested on sim/ in e2e_sim_test.cc.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <ctime>
#include <map>
#include <set>

#include "comm_hash.h"
#include "dump_invariants.h"
#include "process_harness.h"

using namespace rectest;
using ncclfr::schema::DumpReason;
using ncclfr::schema::EntryState;
using ncclfr::schema::Op;

namespace {

std::string preload() {
  std::string runtime = NCCLFR_TEST_SANITIZER_RUNTIME;
  return runtime.empty() ? std::string(NCCLFR_TEST_RECORDER_LIB) : runtime + " " + NCCLFR_TEST_RECORDER_LIB;
}

// Each process of a fake-NCCL job is a world of its own (the fake has no wires); NCCLFR_RANK gives
// it its place in the job, which is all the recorder's triggers need.
std::map<std::string, std::string> jobEnv(const Workspace& w, const std::string& job, int rank = 0) {
  return {
      {"LD_PRELOAD", preload()},
      {"LD_LIBRARY_PATH", std::string(NCCLFR_TEST_FAKE_NCCL_DIR) + ":" + NCCLFR_TEST_CUDA_LIB_DIR},
      {"NCCLFR_SHM_DIR", w.shm()},
      {"NCCLFR_DUMP_DIR", w.dumps()},
      {"NCCLFR_JOB", job},
      {"NCCLFR_TIMEOUT", "1s"},
      {"NCCLFR_TRIGGER_POLL", "100ms"},
      {"NCCLFR_RANK", std::to_string(rank)},
      {"RANK", "0"},
      {"WORLD_SIZE", "1"},
  };
}

std::vector<std::string> jobArgs(const Workspace& w, const std::string& scenario, int calls,
                                 std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {NCCLFR_TEST_JOB, "--uid-file", w.path("uid-" + scenario + std::to_string(calls)),
                                "--scenario", scenario, "--calls", std::to_string(calls)};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// The fake NCCL with the fake CUDA driver (events that complete when recorded): GPU timing is on.
std::map<std::string, std::string> gpuJobEnv(const Workspace& w, const std::string& job) {
  auto env = jobEnv(w, job);
  env["LD_LIBRARY_PATH"] = std::string(NCCLFR_TEST_FAKE_NCCL_DIR) + ":" + NCCLFR_TEST_FAKE_CUDA_DIR + ":" +
                           NCCLFR_TEST_CUDA_LIB_DIR;
  return env;
}

// Runs `ncclfr salvage` over the workspace's rings into `out`; the salvaged dumps.
std::vector<std::unique_ptr<ncclfr::DumpFile>> salvageInto(const Workspace& w, const std::string& out) {
  Process salvage({NCCLFR_TEST_CLI, "salvage", "--shm-dir", w.shm(), "-o", out}, {}, w.path("s-out"), w.path("s-err"));
  REQUIRE(salvage.wait());
  INFO(salvage.out() + salvage.err());
  REQUIRE(salvage.exitedWith(0));
  return dumpsIn(out);
}

// Every field of every entry, and every counter, of two dumps of one ring.
void requireSameRing(ncclfr::schema::Dump::Reader a, ncclfr::schema::Dump::Reader b) {
  auto ea = a.getEntries(), eb = b.getEntries();
  REQUIRE(ea.size() == eb.size());
  for (unsigned i = 0; i < ea.size(); ++i) {
    INFO("entry " << i);
    auto x = ea[i], y = eb[i];
    CHECK(x.getComm() == y.getComm());
    CHECK(x.getOp() == y.getOp());
    CHECK(x.getState() == y.getState());
    CHECK(x.getDtype() == y.getDtype());
    CHECK(x.getRedOp() == y.getRedOp());
    CHECK(x.getRoot() == y.getRoot());
    CHECK(x.getSeq() == y.getSeq());
    CHECK(x.getP2pSeq() == y.getP2pSeq());
    CHECK(x.getOpSeq() == y.getOpSeq());
    CHECK(x.getGroupId() == y.getGroupId());
    CHECK(x.getCount() == y.getCount());
    CHECK(x.getStream() == y.getStream());
    CHECK(x.getEnqueueMonoNs() == y.getEnqueueMonoNs());
    CHECK(x.getStartMonoNs() == y.getStartMonoNs());
    CHECK(x.getEndMonoNs() == y.getEndMonoNs());
    CHECK(x.getThreadId() == y.getThreadId());
    CHECK(x.getResult() == y.getResult());
    CHECK(x.getStackIndex() == y.getStackIndex());
    CHECK(x.getCallDurationNs() == y.getCallDurationNs());
  }
  auto ca = a.getComms(), cb = b.getComms();
  REQUIRE(ca.size() == cb.size());
  for (unsigned i = 0; i < ca.size(); ++i) {
    CHECK(ca[i].getId() == cb[i].getId());
    CHECK(ca[i].getLastEnqueuedSeq() == cb[i].getLastEnqueuedSeq());
    CHECK(ca[i].getLastStartedSeq() == cb[i].getLastStartedSeq());
    CHECK(ca[i].getLastCompletedSeq() == cb[i].getLastCompletedSeq());
    CHECK(ca[i].getTotalEntries() == cb[i].getTotalEntries());
    REQUIRE(ca[i].getP2p().size() == cb[i].getP2p().size());
    for (unsigned k = 0; k < ca[i].getP2p().size(); ++k) {
      auto p = ca[i].getP2p()[k], q = cb[i].getP2p()[k];
      CHECK(p.getPeer() == q.getPeer());
      CHECK(p.getSend() == q.getSend());
      CHECK(p.getLastEnqueuedSeq() == q.getLastEnqueuedSeq());
      CHECK(p.getLastStartedSeq() == q.getLastStartedSeq());
      CHECK(p.getLastCompletedSeq() == q.getLastCompletedSeq());
    }
  }
}

void requireSound(ncclfr::schema::Dump::Reader d, bool clean) {
  auto report = checkDumpInvariants(d, clean);
  std::string all;
  for (const auto& p : report.problems) all += p + "\n";
  INFO(all);
  CHECK(report.problems.empty());
}

// Lines ncclfr printed, leaving out the one about this machine having no CUDA driver (the fake NCCL
// runs without one).
int warnings(const std::string& err) { return countLines(err, "ncclfr[") - countLines(err, "no CUDA driver"); }

// Expected counts printed by recorder_test_job's exact scenario.
struct Expected {
  long coll = 0;
  std::map<int, long> send, recv;
};
std::map<int, Expected> parseExpected(const std::string& out) {
  std::map<int, Expected> m;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream l(line);
    std::string word;
    int comm;
    if (!(l >> word) || word != "comm" || !(l >> comm)) continue;
    Expected e;
    while (l >> word) {
      if (word == "coll") l >> e.coll;
      else if (word == "send" || word == "recv") {
        int peer;
        long n;
        l >> peer >> n;
        (word == "send" ? e.send : e.recv)[peer] = n;
      }
    }
    m[comm] = e;
  }
  return m;
}

}  // namespace

TEST_CASE("exactness: every call of several threads and communicators is recorded once, with exact sequence numbers") {
  Workspace w;
  auto env = jobEnv(w, "exact");
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  constexpr int kThreads = 4, kComms = 2, kRounds = 40;
  Process p(jobArgs(w, "exact", kRounds, {"--threads", std::to_string(kThreads), "--comms", std::to_string(kComms)}),
            env, w.path("out"), w.path("err"));
  REQUIRE(p.wait());
  INFO(p.err());
  REQUIRE(p.exitedWith(0));
  auto expected = parseExpected(p.out());
  REQUIRE(expected.size() == kThreads * kComms + 1);
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 1);
  auto d = dumps[0]->dump();
  CHECK(d.getInfo().getReason() == DumpReason::EXIT);
  CHECK(d.getInfo().getEvictedEntries() == 0);
  CHECK(d.getInfo().getTornEntries() == 0);
  auto comms = d.getComms();
  REQUIRE(comms.size() == kThreads * kComms + 1);
  long total = 0;
  for (auto& [i, e] : expected) {
    long p2p = 0;
    for (auto& [peer, n] : e.send) p2p += n;
    for (auto& [peer, n] : e.recv) p2p += n;
    total += e.coll + p2p;
    auto c = comms[static_cast<unsigned>(i)];
    CHECK(c.getTotalEntries() == static_cast<uint64_t>(e.coll + p2p));
    CHECK(c.getLastEnqueuedSeq() == e.coll - 1);
    CHECK(c.getEvictedEntries() == 0);
    CHECK(c.getState() == ncclfr::schema::CommState::DESTROYED);
    CHECK(c.getRank() == 0);
    CHECK(c.getSize() == 1);
    if (i > 0) {
      CHECK(c.getCreatedBy() == ncclfr::schema::CommOrigin::SPLIT);
      CHECK(c.getParentId() == comms[0].getId());
      CHECK(c.getSplitColor() == 0);
    } else {
      CHECK(c.getCreatedBy() == ncclfr::schema::CommOrigin::INIT_RANK);
    }
  }
  // All children of one parent get distinct ids (the split count is hashed in).
  std::set<uint64_t> ids;
  for (auto c : comms) ids.insert(c.getId());
  CHECK(ids.size() == comms.size());
  auto entries = d.getEntries();
  REQUIRE(entries.size() == static_cast<unsigned>(total));
  CHECK(d.getInfo().getTotalEntries() == static_cast<uint64_t>(total));
  // Per communicator: seq counts every collective in call order, opSeq each type, p2pSeq each
  // (peer, direction); one thread per communicator; send and recv of a round share a group.
  std::map<uint32_t, int64_t> nextSeq;
  std::map<std::pair<uint32_t, int>, uint32_t> nextOpSeq;
  std::map<std::tuple<uint32_t, int, bool>, int64_t> nextP2p;
  std::map<uint32_t, uint32_t> threadOf;
  std::map<uint32_t, long> broadcasts;
  std::map<uint32_t, uint32_t> lastGroup;  // per communicator: threads' entries interleave
  for (auto e : entries) {
    uint32_t c = e.getComm();
    auto [it, fresh] = threadOf.emplace(c, e.getThreadId());
    CHECK(it->second == e.getThreadId());
    CHECK(e.getCallDurationNs() > 0);
    CHECK(e.getResult() == 0);
    if (e.getOp() == Op::SEND || e.getOp() == Op::RECV) {
      bool send = e.getOp() == Op::SEND;
      CHECK(e.getP2pSeq() == nextP2p[{c, e.getRoot(), send}]++);
      CHECK(e.getSeq() == nextSeq[c] - 1);  // the last collective issued before it
      CHECK(e.getGroupId() != 0);
      if (send) lastGroup[c] = e.getGroupId();
      else CHECK(e.getGroupId() == lastGroup[c]);
    } else {
      CHECK(e.getSeq() == nextSeq[c]++);
      CHECK(e.getOpSeq() == nextOpSeq[{c, static_cast<int>(e.getOp())}]++);
      CHECK(e.getP2pSeq() == -1);
      CHECK(e.getGroupId() == 0);
      if (e.getOp() == Op::BROADCAST) ++broadcasts[c];
    }
  }
  // ncclBcast calls ncclBroadcast inside NCCL: one entry per call, not two.
  for (uint32_t c = 1; c < comms.size(); ++c) CHECK(broadcasts[c] == kRounds);
  for (uint32_t c = 1; c < comms.size(); ++c) {
    REQUIRE(comms[c].getP2p().size() == 2);
    CHECK(comms[c].getP2p()[0].getLastEnqueuedSeq() == kRounds - 1);
  }
  // Clean exit: the ring file is gone.
  CHECK(countFiles(w.shm(), ".ring") == 0);
}

TEST_CASE("a full ring evicts the oldest calls and keeps the counters exact") {
  Workspace w;
  auto env = jobEnv(w, "wrap");
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  env["NCCLFR_BUFFER"] = "64";
  Process p(jobArgs(w, "exact", 30), env, w.path("out"), w.path("err"));
  REQUIRE(p.wait());
  REQUIRE(p.exitedWith(0));
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 1);
  auto d = dumps[0]->dump();
  constexpr long kTotal = 30 * 7;
  // The ring holds the newest 64 positions; a thread reserves them 8 at a time, so up to 7 of them
  // may be reserved and not (yet) used.
  long held = static_cast<long>(d.getEntries().size());
  CHECK(held >= 64 - 7);
  CHECK(held <= 64);
  CHECK(d.getInfo().getTotalEntries() == kTotal);
  CHECK(d.getInfo().getEvictedEntries() == static_cast<uint64_t>(kTotal - held));
  CHECK(d.getInfo().getLastEvictedIndex() >= kTotal - 64 - 1);
  auto c = d.getComms()[1];
  CHECK(c.getTotalEntries() == kTotal);
  CHECK(c.getEvictedEntries() == static_cast<uint64_t>(kTotal - held));
  CHECK(c.getLastEnqueuedSeq() == 30 * 5 - 1);
  CHECK(c.getP2p()[0].getLastEnqueuedSeq() == 29);
}

TEST_CASE("NCCLFR_ENABLE=0 is a pure passthrough") {
  Workspace w;
  auto env = jobEnv(w, "off");
  env["NCCLFR_ENABLE"] = "0";
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  Process p(jobArgs(w, "exact", 5), env, w.path("out"), w.path("err"));
  REQUIRE(p.wait());
  CHECK(p.exitedWith(0));
  CHECK(p.err().empty());
  CHECK_FALSE(fs::exists(w.shm()));
  CHECK_FALSE(fs::exists(w.dumps()));
}

TEST_CASE("a call stuck inside NCCL is a stall, and the peer trigger makes the other rank dump too") {
  Workspace w;
  auto stuckEnv = jobEnv(w, "stall", 0);
  stuckEnv["FAKE_NCCL_BLOCK_AT"] = "5";
  auto idleEnv = jobEnv(w, "stall", 1);
  // Two processes of one job that do not talk to each other (the fake NCCL has no wires): rank 0
  // gets stuck in its 6th all-reduce; rank 1 has nothing pending at all.
  Process idle(jobArgs(w, "idle", 3, {"--uid-file", w.path("uid1")}), idleEnv, w.path("out1"), w.path("err1"));
  REQUIRE(waitUntil([&] { return idle.outContains("ready"); }));
  Process stuck(jobArgs(w, "idle", 10, {"--uid-file", w.path("uid0")}), stuckEnv, w.path("out0"), w.path("err0"));
  REQUIRE(waitUntil([&] { return countDumps(w.dumps()) >= 2; }));
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 2);
  std::map<int, ncclfr::schema::Dump::Reader> byRank;
  for (auto& f : dumps) byRank.emplace(f->dump().getProcess().getGlobalRank(), f->dump());
  REQUIRE(byRank.count(0));
  REQUIRE(byRank.count(1));
  auto d0 = byRank.at(0), d1 = byRank.at(1);
  CHECK(d0.getInfo().getReason() == DumpReason::STALL);
  CHECK(std::string(d0.getInfo().getDetail().cStr()).find("has not returned") != std::string::npos);
  CHECK(d1.getInfo().getReason() == DumpReason::PEER_REQUEST);
  CHECK(std::string(d0.getInfo().getIncidentId().cStr()) == d1.getInfo().getIncidentId().cStr());
  CHECK(d0.getInfo().getTriggerRank() == 0);
  CHECK(d1.getInfo().getTriggerRank() == 0);
  // Each dump carries the stall timeout it was written under (NCCLFR_TIMEOUT=1s), for the analyzer.
  CHECK(d0.getInfo().getTimeoutNs() == 1'000'000'000);
  CHECK(d1.getInfo().getTimeoutNs() == 1'000'000'000);
  // The stuck call is in rank 0's dump, not returned.
  auto e0 = d0.getEntries();
  REQUIRE(e0.size() == 6);
  CHECK(e0[5].getCallDurationNs() == 0);
  CHECK(e0[4].getCallDurationNs() > 0);
  CHECK(d1.getEntries().size() == 3);
  // One incident: nobody dumps again while it lasts.
  CHECK_FALSE(waitUntil([&] { return countDumps(w.dumps()) > 2; }, std::chrono::milliseconds(1500)));
}

TEST_CASE("a stall that ends is one incident, and a later stall is a new one") {
  Workspace w;
  auto env = jobEnv(w, "twice");
  env["FAKE_NCCL_BLOCK_AT"] = "2,6";
  env["FAKE_NCCL_BLOCK_MS"] = "4000";  // NCCLFR_TIMEOUT is 1s: 3 s to see each stall, however loaded
  Process p(jobArgs(w, "idle", 10), env, w.path("out"), w.path("err"));
  REQUIRE(waitUntil([&] { return p.outContains("ready") && countDumps(w.dumps()) >= 2; }));
  auto files = dumpsIn(w.dumps());
  REQUIRE(files.size() == 2);
  std::set<std::string> ids;
  for (auto& f : files) {
    CHECK(f->dump().getInfo().getReason() == DumpReason::STALL);
    ids.insert(f->dump().getInfo().getIncidentId().cStr());
  }
  CHECK(ids.size() == 2);
  // Sorted by time: the first incident's dump holds calls 0-2, the second's calls 0-6.
  std::map<std::string, unsigned> sizes;
  for (auto& f : files) sizes[f->dump().getInfo().getIncidentId().cStr()] = f->dump().getEntries().size();
  CHECK(sizes.begin()->second == 3);
  CHECK(sizes.rbegin()->second == 7);
}

TEST_CASE("an error returned by a call is an incident") {
  Workspace w;
  auto env = jobEnv(w, "error");
  env["FAKE_NCCL_FAIL_AT"] = "3";
  Process p(jobArgs(w, "idle", 6, {"--keep-going"}), env, w.path("out"), w.path("err"));
  REQUIRE(waitUntil([&] { return countDumps(w.dumps()) == 1; }));
  auto files = dumpsIn(w.dumps());
  auto d = files[0]->dump();
  CHECK(d.getInfo().getReason() == DumpReason::NCCL_ERROR);
  CHECK(std::string(d.getInfo().getDetail().cStr()).find("ncclInternalError") != std::string::npos);
  auto e = d.getEntries();
  REQUIRE(e.size() >= 4);
  CHECK(e[3].getResult() == 3);
  CHECK(e[3].getState() == ncclfr::schema::EntryState::ERROR);
  CHECK(d.getComms()[0].getLastAsyncError() == 3);
}

TEST_CASE("ncclCommGetAsyncError reporting an error is an incident") {
  Workspace w;
  auto env = jobEnv(w, "async");
  env["FAKE_NCCL_ASYNC_ERROR_AFTER"] = "2";
  Process p(jobArgs(w, "idle", 2), env, w.path("out"), w.path("err"));
  REQUIRE(waitUntil([&] { return countDumps(w.dumps()) == 1; }));
  auto files = dumpsIn(w.dumps());
  auto d = files[0]->dump();
  CHECK(d.getInfo().getReason() == DumpReason::NCCL_ERROR);
  CHECK(std::string(d.getInfo().getDetail().cStr()).find("ncclRemoteError") != std::string::npos);
  CHECK(d.getComms()[0].getLastAsyncError() == 6);
}

TEST_CASE("ncclCommAbort dumps first, then forwards") {
  Workspace w;
  Process p(jobArgs(w, "abort", 4), jobEnv(w, "abort"), w.path("out"), w.path("err"));
  REQUIRE(p.wait());
  INFO(p.err());
  CHECK(p.exitedWith(0));
  CHECK(p.outContains("aborted"));
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 1);
  auto d = dumps[0]->dump();
  CHECK(d.getInfo().getReason() == DumpReason::ABORT);
  CHECK(d.getEntries().size() == 4);
  // Dumped before the abort went through: the communicator was still live in the dump.
  CHECK(d.getComms()[0].getState() == ncclfr::schema::CommState::LIVE);
}

TEST_CASE("ncclCommRevoke dumps first, then forwards") {
  Workspace w;
  Process p(jobArgs(w, "revoke", 3), jobEnv(w, "revoke"), w.path("out"), w.path("err"));
  REQUIRE(p.wait());
  INFO(p.err());
  CHECK(p.exitedWith(0));
  CHECK(p.outContains("revoked"));
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 1);
  auto d = dumps[0]->dump();
  CHECK(d.getInfo().getReason() == DumpReason::ABORT);
  CHECK(std::string(d.getInfo().getDetail().cStr()).find("ncclCommRevoke") != std::string::npos);
  CHECK(d.getComms()[0].getState() == ncclfr::schema::CommState::LIVE);
}

TEST_CASE("SIGTERM: a full dump, then the handler installed before us runs") {
  Workspace w;
  Process p(jobArgs(w, "idle", 5, {"--term-handler", "--marker", w.path("marker")}), jobEnv(w, "term"), w.path("out"),
            w.path("err"));
  REQUIRE(waitUntil([&] { return p.outContains("ready"); }));
  p.signal(SIGTERM);
  REQUIRE(p.wait());
  INFO(p.err());
  CHECK(p.exitedWith(42));
  CHECK(readFile(w.path("marker")) == "term handler ran\n");
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 1);
  CHECK(dumps[0]->dump().getInfo().getReason() == DumpReason::SIGNAL);
  CHECK(std::string(dumps[0]->dump().getInfo().getDetail().cStr()).find("SIGTERM") != std::string::npos);
  CHECK(dumps[0]->dump().getEntries().size() == 5);
}

TEST_CASE("SIGTERM with the default disposition: a dump, then the process ends by SIGTERM") {
  Workspace w;
  Process p(jobArgs(w, "idle", 5), jobEnv(w, "term-default"), w.path("out"), w.path("err"));
  REQUIRE(waitUntil([&] { return p.outContains("ready"); }));
  p.signal(SIGTERM);
  REQUIRE(p.wait());
  CHECK(p.killedBy(SIGTERM));
  REQUIRE(countDumps(w.dumps()) == 1);
  // The dump holds everything, so the ring's shared memory was freed.
  CHECK(countFiles(w.shm(), ".ring") == 0);
}

TEST_CASE("NCCLFR_DUMP_SIGNAL asks for a dump and the process runs on") {
  Workspace w;
  auto env = jobEnv(w, "usr2");
  env["NCCLFR_DUMP_SIGNAL"] = "SIGUSR2";
  Process p(jobArgs(w, "idle", 3), env, w.path("out"), w.path("err"));
  REQUIRE(waitUntil([&] { return p.outContains("ready"); }));
  p.signal(SIGUSR2);
  REQUIRE(waitUntil([&] { return countDumps(w.dumps()) == 1; }));
  CHECK_FALSE(p.wait(std::chrono::milliseconds(300)));  // still running
  auto files = dumpsIn(w.dumps());
  auto d = files[0]->dump();
  CHECK(d.getInfo().getReason() == DumpReason::SIGNAL);
  CHECK(std::string(d.getInfo().getDetail().cStr()).find("SIGUSR2") != std::string::npos);
}

TEST_CASE("ncclfr trigger asks every rank of a live job for dumps, and a second trigger is a new incident") {
  Workspace w;
  Process r0(jobArgs(w, "idle", 2, {"--uid-file", w.path("u0")}), jobEnv(w, "manual", 0), w.path("o0"), w.path("e0"));
  Process r1(jobArgs(w, "idle", 3, {"--uid-file", w.path("u1")}), jobEnv(w, "manual", 1), w.path("o1"), w.path("e1"));
  REQUIRE(waitUntil([&] { return r0.outContains("ready") && r1.outContains("ready"); }));
  std::string jobDir = w.dumps() + "/manual";
  for (int round = 1; round <= 2; ++round) {
    Process cli({NCCLFR_TEST_CLI, "trigger", jobDir, "--detail", "round " + std::to_string(round)}, {},
                w.path("cli-out"), w.path("cli-err"));
    REQUIRE(cli.wait());
    INFO(cli.err());
    REQUIRE(cli.exitedWith(0));
    CHECK(cli.outContains("asked every rank"));
    REQUIRE(waitUntil([&] { return countDumps(w.dumps()) == static_cast<size_t>(2 * round); }));
  }
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 4);
  std::map<std::string, int> perIncident;
  for (auto& f : dumps) {
    auto info = f->dump().getInfo();
    CHECK(info.getReason() == DumpReason::ON_DEMAND);
    CHECK(info.getTriggerRank() == -1);
    ++perIncident[info.getIncidentId().cStr()];
  }
  REQUIRE(perIncident.size() == 2);
  for (auto& [id, n] : perIncident) {
    CHECK(n == 2);
    CHECK(id.find("-manual") != std::string::npos);
  }
}

TEST_CASE("after SIGKILL, ncclfr salvage recovers every entry and says the process died") {
  Workspace w;
  constexpr int kCalls = 300;
  Process p(jobArgs(w, "idle", kCalls), jobEnv(w, "killed"), w.path("out"), w.path("err"));
  REQUIRE(waitUntil([&] { return p.outContains("ready"); }));
  p.signal(SIGKILL);
  REQUIRE(p.wait());
  REQUIRE(countFiles(w.shm(), ".ring") == 1);
  Process salvage({NCCLFR_TEST_CLI, "salvage", "--shm-dir", w.shm(), "-o", w.dumps()}, {}, w.path("s-out"),
                  w.path("s-err"));
  REQUIRE(salvage.wait());
  INFO(salvage.out() + salvage.err());
  REQUIRE(salvage.exitedWith(0));
  CHECK(salvage.outContains("dead (killed without a chance to dump"));
  CHECK(salvage.outContains("1 dead, 0 alive"));
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 1);
  auto d = dumps[0]->dump();
  CHECK(d.getInfo().getReason() == DumpReason::SALVAGED);
  CHECK(d.getInfo().getProcessDied());
  CHECK(d.getInfo().getWriterPid() != 0);
  CHECK(d.getInfo().getTimeoutNs() == 0);  // the shared-memory header does not hold NCCLFR_TIMEOUT
  CHECK(d.getProcess().getPid() == static_cast<uint32_t>(p.pid()));
  REQUIRE(d.getEntries().size() == kCalls);
  CHECK(d.getInfo().getTornEntries() == 0);
  for (uint32_t i = 0; i < kCalls; ++i) CHECK(d.getEntries()[i].getSeq() == i);
  CHECK(d.getComms()[0].getLastEnqueuedSeq() == kCalls - 1);
  // The dump's time is the salvage's CLOCK_MONOTONIC (same boot): after every call, before now.
  {
    int64_t newest = 0;
    for (auto e : d.getEntries()) newest = std::max({newest, e.getEnqueueMonoNs(), e.getEndMonoNs()});
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
    CHECK(newest > 0);
    CHECK(d.getInfo().getMonoNs() >= newest);
    CHECK(d.getInfo().getMonoNs() <= now);
    CHECK(d.getInfo().getMonoNs() - newest < int64_t{120} * 1'000'000'000);
  }
  // Salvaged rings are removed once dumped.
  CHECK(countFiles(w.shm(), ".ring") == 0);
}

TEST_CASE("a crash marks the ring, and salvage names the signal") {
  Workspace w;
  Process p(jobArgs(w, "crash", 7), jobEnv(w, "crash"), w.path("out"), w.path("err"));
  REQUIRE(p.wait());
  CHECK(p.killedBy(SIGABRT));
  REQUIRE(countFiles(w.shm(), ".ring") == 1);
  Process salvage({NCCLFR_TEST_CLI, "salvage", "--shm-dir", w.shm(), "-o", w.dumps()}, {}, w.path("s-out"),
                  w.path("s-err"));
  REQUIRE(salvage.wait());
  REQUIRE(salvage.exitedWith(0));
  CHECK(salvage.outContains("crashed with SIGABRT"));
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 1);
  CHECK(dumps[0]->dump().getEntries().size() == 7);
}

TEST_CASE("a forked child records nothing into the parent's ring, and an exec'd child records on its own") {
  Workspace w;
  auto env = jobEnv(w, "fork");
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  Process p(jobArgs(w, "fork", 10, {"--exec-child"}), env, w.path("out"), w.path("err"));
  REQUIRE(p.wait());
  INFO(p.err());
  REQUIRE(p.exitedWith(0));
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 2);
  int parents = 0, children = 0;
  for (auto& f : dumps) {
    auto d = f->dump();
    if (d.getProcess().getPid() == static_cast<uint32_t>(p.pid())) {
      ++parents;
      // 10 calls before the fork and 10 after; the child's 10 in between are not here.
      REQUIRE(d.getEntries().size() == 20);
      std::set<uint32_t> threads;
      for (auto e : d.getEntries()) threads.insert(e.getThreadId());
      CHECK(threads == std::set<uint32_t>{static_cast<uint32_t>(p.pid())});
      CHECK(d.getComms()[0].getLastEnqueuedSeq() == 19);
    } else {
      ++children;
      CHECK(d.getEntries().size() == 10 * 7);  // the exec'd `exact` run
    }
  }
  CHECK(parents == 1);
  CHECK(children == 1);
  CHECK(countFiles(w.shm(), ".ring") == 0);
}

TEST_CASE("an unwritable dump folder: the job runs on, with one warning") {
  Workspace w;
  { std::ofstream(w.path("plain-file")) << "not a folder\n"; }
  auto env = jobEnv(w, "unwritable");
  env["NCCLFR_DUMP_DIR"] = w.path("plain-file") + "/dumps";
  env["FAKE_NCCL_FAIL_AT"] = "2";
  Process p(jobArgs(w, "abort", 5, {"--keep-going"}), env, w.path("out"), w.path("err"));
  REQUIRE(p.wait());
  INFO(p.err());
  CHECK(p.exitedWith(0));
  CHECK(p.outContains("aborted"));
  CHECK(warnings(p.err()) == 1);
  CHECK(countLines(p.err(), "cannot write the") == 1);
  // The ring stays for salvage, since no dump could be written.
  CHECK(countFiles(w.shm(), ".ring") == 1);
}

TEST_CASE("a non-blocking communicator is recorded once it is ready") {
  Workspace w;
  auto env = jobEnv(w, "nb");
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  Process p(jobArgs(w, "nonblocking", 4), env, w.path("out"), w.path("err"));
  REQUIRE(p.wait());
  INFO(p.err());
  REQUIRE(p.exitedWith(0));
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 1);
  auto d = dumps[0]->dump();
  auto c = d.getComms()[0];
  CHECK_FALSE(c.getBlocking());
  CHECK(std::string(c.getName().cStr()) == "nb-world");
  CHECK(c.getCreatedBy() == ncclfr::schema::CommOrigin::INIT_RANK_CONFIG);
  CHECK(c.getInitDurationNs() > 0);
  CHECK(d.getEntries().size() == 4);
  for (auto e : d.getEntries()) CHECK(e.getResult() == 7);  // ncclInProgress, passed through
}

// NCCL writes a split's handle only once the child is ready: at ncclGroupEnd inside a group, when
// the non-blocking parent reports success otherwise (the split itself returns ncclSuccess). The
// child's calls are recorded under the child, never as an unknown communicator.
TEST_CASE("children whose handle NCCL writes after the split returned are recorded as themselves") {
  Workspace w;
  auto env = jobEnv(w, "latesplit");
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  constexpr int kCalls = 3;
  auto dumps = runToExit(w, env, jobArgs(w, "latesplit", kCalls));
  REQUIRE(dumps.size() == 1);
  auto d = dumps[0]->dump();
  auto comms = d.getComms();
  // world, its non-blocking child, three children of that one (one variable), the grouped one.
  REQUIRE(comms.size() == 6);
  auto world = comms[0], nb = comms[1], unused = comms[4], grouped = comms[5];
  std::set<uint64_t> ids;
  for (auto c : comms) ids.insert(c.getId());
  CHECK(ids.size() == 6);
  CHECK(ids.count(0) == 0);
  for (unsigned i : {2u, 3u, 4u}) CHECK(comms[i].getParentId() == nb.getId());
  CHECK(grouped.getParentId() == world.getId());
  for (unsigned i : {2u, 3u, 4u, 5u}) {
    INFO("comm " << i);
    auto c = comms[i];
    CHECK(c.getCreatedBy() == ncclfr::schema::CommOrigin::SPLIT);
    CHECK(c.getState() == ncclfr::schema::CommState::DESTROYED);
    CHECK(c.getRank() == 0);
    CHECK(c.getSize() == 1);
    CHECK(c.getInitDurationNs() > 0);
    CHECK(c.getLastEnqueuedSeq() == (i == 4 ? -1 : kCalls - 1));
  }
  CHECK_FALSE(comms[2].getBlocking());
  CHECK(grouped.getBlocking());
  CHECK(unused.getState() == ncclfr::schema::CommState::DESTROYED);
  REQUIRE(d.getEntries().size() == 3 * kCalls);
  for (auto e : d.getEntries()) CHECK((e.getComm() == 2 || e.getComm() == 3 || e.getComm() == 5));
}

// A non-blocking parent's split that fails in the background: NCCL says so through the parent's
// ncclCommGetAsyncError, and the child, whose handle never came, failed its initialization.
TEST_CASE("a split that fails in the background fails its child when the parent reports the error") {
  Workspace w;
  auto env = jobEnv(w, "latesplitfail");
  env["FAKE_NCCL_SPLIT_FAIL"] = "1";
  Process p(jobArgs(w, "latesplitfail", 1), env, w.path("out"), w.path("err"));
  REQUIRE(waitUntil([&] { return p.outContains("ready") && countDumps(w.dumps()) == 1; }));
  INFO(p.out() + p.err());
  CHECK(p.outContains("split ended with 3"));
  auto dumps = dumpsIn(w.dumps());
  auto d = dumps[0]->dump();
  CHECK(d.getInfo().getReason() == DumpReason::NCCL_ERROR);
  auto comms = d.getComms();
  REQUIRE(comms.size() == 3);  // world, the non-blocking parent, the failed child
  CHECK(comms[2].getParentId() == comms[1].getId());
  CHECK(comms[2].getState() == ncclfr::schema::CommState::INIT_FAILED);
  CHECK(comms[2].getLastAsyncError() == 3);  // ncclInternalError
  CHECK(comms[1].getState() == ncclfr::schema::CommState::LIVE);
}

TEST_CASE("a bad NCCLFR_ value gives one warning line and the default") {
  Workspace w;
  auto env = jobEnv(w, "badvalue");
  env["NCCLFR_TIMEOUT"] = "soonish";
  Process p(jobArgs(w, "exact", 2), env, w.path("out"), w.path("err"));
  REQUIRE(p.wait());
  CHECK(p.exitedWith(0));
  CHECK(warnings(p.err()) == 1);
  CHECK(countLines(p.err(), "NCCLFR_TIMEOUT='soonish'") == 1);
}

TEST_CASE("CUDA-graph capture: captured calls are recorded as such and the capture is never broken") {
  Workspace w;
  auto env = jobEnv(w, "capture");
  // A CUDA driver that polices capture rules, with a global-mode capture running all along.
  env["LD_LIBRARY_PATH"] = std::string(NCCLFR_TEST_FAKE_NCCL_DIR) + ":" + NCCLFR_TEST_FAKE_CUDA_DIR + ":" +
                           NCCLFR_TEST_CUDA_LIB_DIR;
  env["FAKE_CUDA_GLOBAL_CAPTURE"] = "1";
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  constexpr int kRounds = 20;
  Process p(jobArgs(w, "capture", kRounds), env, w.path("out"), w.path("err"));
  REQUIRE(p.wait());
  INFO(p.err());
  REQUIRE(p.exitedWith(0));
  // No event on the capturing stream, and no unsafe call from a thread in global mode (the
  // watchdog polls its events in relaxed mode).
  CHECK(p.err().find("fake-cuda: 0 capture violations") != std::string::npos);
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 1);
  auto d = dumps[0]->dump();
  CHECK(d.getProcess().getTiming() == ncclfr::schema::TimingMode::FULL);
  auto entries = d.getEntries();
  REQUIRE(entries.size() == 4 * kRounds);
  int captured = 0, completed = 0;
  for (auto e : entries) {
    if (e.getStream() == 0xca97) {
      ++captured;
      CHECK(e.getState() == ncclfr::schema::EntryState::CAPTURED);
      CHECK(e.getStartMonoNs() == 0);
    } else {
      ++completed;
      CHECK(e.getState() == ncclfr::schema::EntryState::COMPLETED);
      CHECK(e.getStartMonoNs() > 0);
      CHECK(e.getEndMonoNs() >= e.getStartMonoNs());
    }
  }
  CHECK(captured == 3 * kRounds);
  CHECK(completed == kRounds);
  auto c = d.getComms()[0];
  CHECK(c.getLastEnqueuedSeq() == 2 * kRounds - 1);
  CHECK(c.getLastCompletedSeq() == 2 * kRounds - 2);  // the last all-reduce on the normal stream
}

TEST_CASE("a salvaged ring's entries equal the live dump's, field by field") {
  Workspace w;
  auto env = gpuJobEnv(w, "same");
  env["NCCLFR_DUMP_SIGNAL"] = "SIGUSR2";
  constexpr int kRounds = 25;
  Process p(jobArgs(w, "busy", kRounds), env, w.path("out"), w.path("err"));
  REQUIRE(waitUntil([&] { return p.outContains("ready"); }));
  p.signal(SIGUSR2);
  REQUIRE(waitUntil([&] { return countDumps(w.dumps()) == 1; }));
  p.signal(SIGKILL);
  REQUIRE(p.wait());
  auto live = dumpsIn(w.dumps());
  auto salvaged = salvageInto(w, w.path("salvaged"));
  REQUIRE(live.size() == 1);
  REQUIRE(salvaged.size() == 1);
  auto a = live[0]->dump(), b = salvaged[0]->dump();
  CHECK(b.getInfo().getReason() == DumpReason::SALVAGED);
  REQUIRE(a.getEntries().size() == 7 * kRounds);
  requireSameRing(a, b);
  // What the calls were: roots and peers are the job's, and every call completed on the "GPU".
  for (auto e : a.getEntries()) {
    CHECK(e.getState() == EntryState::COMPLETED);
    CHECK(e.getStartMonoNs() > 0);
    bool rooted = e.getOp() == Op::BROADCAST || e.getOp() == Op::REDUCE || e.getOp() == Op::SEND || e.getOp() == Op::RECV;
    CHECK(e.getRoot() == (rooted ? 0 : -1));
  }
  requireSound(a, true);
  requireSound(b, true);
}

TEST_CASE("calls the recorder could attach no CUDA events to are untracked, in live dumps and in salvage") {
  // 0 events: the context's set-up fails; 1: only the watchdog's reference event, the pool stays
  // empty and the calling threads cannot make pairs either.
  for (const char* limit : {"0", "1"}) {
    INFO("FAKE_CUDA_EVENT_LIMIT=" << limit);
    Workspace w;
    auto env = gpuJobEnv(w, std::string("untracked") + limit);
    env["FAKE_CUDA_EVENT_LIMIT"] = limit;
    env["NCCLFR_DUMP_SIGNAL"] = "SIGUSR2";
    constexpr int kRounds = 6;
    Process p(jobArgs(w, "busy", kRounds), env, w.path("out"), w.path("err"));
    REQUIRE(waitUntil([&] { return p.outContains("ready"); }));
    // The watchdog says it once, at its next look.
    std::string warning = std::string(limit) == "0" ? "cannot set up CUDA events" : "CUDA events ran short";
    CHECK(waitUntil([&] { return countLines(p.err(), warning) == 1; }));
    p.signal(SIGUSR2);
    REQUIRE(waitUntil([&] { return countDumps(w.dumps()) == 1; }));
    p.signal(SIGKILL);
    REQUIRE(p.wait());
    CHECK(countLines(p.err(), warning) == 1);
    auto live = dumpsIn(w.dumps());
    auto salvaged = salvageInto(w, w.path("salvaged"));
    REQUIRE(live.size() == 1);
    REQUIRE(salvaged.size() == 1);
    for (auto* f : {live[0].get(), salvaged[0].get()}) {
      auto d = f->dump();
      CHECK(d.getProcess().getTiming() == ncclfr::schema::TimingMode::FULL);
      REQUIRE(d.getEntries().size() == 7 * kRounds);
      for (auto e : d.getEntries()) {
        CHECK(e.getState() == EntryState::UNTRACKED);
        CHECK(e.getStartMonoNs() == 0);
        CHECK(e.getEndMonoNs() == 0);
        CHECK(e.getCallDurationNs() > 0);
      }
      CHECK(d.getComms()[0].getLastStartedSeq() == -1);
      CHECK(d.getComms()[0].getLastCompletedSeq() == -1);
      requireSound(d, false);
    }
    requireSameRing(live[0]->dump(), salvaged[0]->dump());
  }
}

TEST_CASE("an event pool that runs dry: untimed calls complete when a later timed one on their stream does") {
  // One event pair in all: the first call gets it, most later ones none until the watchdog hands
  // it back. An untracked call followed by a completed timed one on its stream has completed too.
  Workspace w;
  auto env = gpuJobEnv(w, "dry");
  env["FAKE_CUDA_EVENT_LIMIT"] = "3";
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  constexpr int kRounds = 40;
  Process p(jobArgs(w, "exact", kRounds), env, w.path("out"), w.path("err"));
  REQUIRE(p.wait());
  INFO(p.err());
  REQUIRE(p.exitedWith(0));
  CHECK(countLines(p.err(), "CUDA events ran short") == 1);
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 1);
  auto d = dumps[0]->dump();
  REQUIRE(d.getEntries().size() == 7 * kRounds);
  int untracked = 0, timed = 0;
  for (auto e : d.getEntries()) {
    untracked += e.getState() == EntryState::UNTRACKED;
    timed += e.getState() == EntryState::COMPLETED && e.getEndMonoNs() > 0;
    CHECK((e.getState() == EntryState::UNTRACKED || e.getState() == EntryState::COMPLETED));
  }
  CHECK(timed >= 1);
  CHECK(untracked >= 1);
  requireSound(d, false);
}

TEST_CASE("communicator ids follow NCCL's commHash for ncclCommInitAll, splits and shrinks") {
  Workspace w;
  auto env = jobEnv(w, "derive");
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  Process p(jobArgs(w, "derive", 1), env, w.path("out"), w.path("err"));
  REQUIRE(p.wait());
  INFO(p.err());
  REQUIRE(p.exitedWith(0));
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 1);
  auto comms = dumps[0]->dump().getComms();
  REQUIRE(comms.size() == 5);
  // The fake NCCL's unique id (made inside ncclCommInitAll, caught through the PLT).
  unsigned char id[128];
  for (int i = 0; i < 128; ++i) id[i] = static_cast<unsigned char>((i * 7 + p.pid()) & 0xff);
  uint64_t world = ncclfr::recorder::commHashFromUniqueId(id);
  CHECK(comms[0].getId() == world);
  CHECK(comms[1].getId() == world);  // every rank ncclCommInitAll makes shares the id
  CHECK(comms[0].getCreatedBy() == ncclfr::schema::CommOrigin::INIT_ALL);
  CHECK(comms[1].getRank() == 1);
  CHECK(comms[2].getId() == ncclfr::recorder::commHashOfChild(world, 1, 0));
  CHECK(comms[3].getId() == ncclfr::recorder::commHashOfChild(world, 3, 5));  // the NOCOLOR split counted
  CHECK(comms[3].getSplitColor() == 5);
  CHECK(comms[4].getId() == ncclfr::recorder::commHashOfShrink(world));
  CHECK(comms[4].getCreatedBy() == ncclfr::schema::CommOrigin::SHRINK);
  CHECK(comms[4].getParentId() == world);
}

TEST_CASE("an initialization that never finishes is a stall") {
  Workspace w;
  auto env = jobEnv(w, "initstall");
  env["FAKE_NCCL_BLOCK_INIT"] = "1";
  Process p(jobArgs(w, "idle", 1), env, w.path("out"), w.path("err"));
  REQUIRE(waitUntil([&] { return countDumps(w.dumps()) == 1; }));
  auto files = dumpsIn(w.dumps());
  auto d = files[0]->dump();
  CHECK(d.getInfo().getReason() == DumpReason::STALL);
  CHECK(std::string(d.getInfo().getDetail().cStr()).find("initialization of comm") != std::string::npos);
  CHECK(d.getComms()[0].getState() == ncclfr::schema::CommState::INITIALIZING);
}

TEST_CASE("NCCLFR_STACKS records each call's stack and the modules to symbolize it") {
  Workspace w;
  auto env = jobEnv(w, "stacks");
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  env["NCCLFR_STACKS"] = "1";
  Process p(jobArgs(w, "exact", 3), env, w.path("out"), w.path("err"));
  REQUIRE(p.wait());
  REQUIRE(p.exitedWith(0));
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 1);
  auto d = dumps[0]->dump();
  REQUIRE(d.getStacks().size() > 0);
  CHECK(d.getProcess().getModules().size() > 0);
  for (auto e : d.getEntries()) {
    REQUIRE(e.getStackIndex() >= 0);
    auto s = d.getStacks()[static_cast<unsigned>(e.getStackIndex())];
    CHECK(s.getFrames().size() > 0);
    CHECK(s.getSymbols().size() == s.getFrames().size());
  }
}
