// End-to-end tests of libncclfr.so on sim/: multi-process jobs started by ncclfr-simrun with
// LD_PRELOAD, as users run them, with GPU timing through sim/'s CUDA driver (events, streams).
// They cover what needs real NCCL semantics between ranks: exactness across ranks with GPU times,
// a host stall (the stalled rank's dump exists thanks to the peer trigger), a device stall, and a
// SIGKILLed rank whose ring `ncclfr salvage` recovers whole; and, on the PyTorch-like 8-rank
// tensor/data-parallel job (one stream per communicator, streams ordered through events), that every
// dump keeps stream order and exact counters (dump_invariants.h): clean, with several threads, with
// a host stall and with a device stall.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <utility>

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

// NCCLFR_TIMEOUT: long where a run must stay free of stall dumps (8 processes starting on a
// loaded 2-core machine can wait in ncclCommInitRank for seconds, and init counts as pending); short
// where a test plants a stall and waits for its dumps.
constexpr const char* kNoStalls = "60s";
constexpr const char* kStallTimeout = "2s";

std::map<std::string, std::string> simEnv(const Workspace& w, const char* timeout = kNoStalls) {
  return {{"LD_PRELOAD", preload()},
          {"NCCLFR_SHM_DIR", w.shm()},
          {"NCCLFR_DUMP_DIR", w.dumps()},
          {"NCCLFR_TIMEOUT", timeout},
          {"NCCLFR_TRIGGER_POLL", "100ms"}};
}

std::vector<std::string> simrun(int ranks, const std::string& job, std::vector<std::string> program) {
  std::vector<std::string> a = {NCCLFR_TEST_SIMRUN, "-q", "-n", std::to_string(ranks), "--job-id", job,
                                "--timeout", "90", "--grace", "10", "--"};
  a.insert(a.end(), program.begin(), program.end());
  return a;
}

// The dumps of one incident, by global rank.
std::map<int, ncclfr::schema::Dump::Reader> byRank(const std::vector<std::unique_ptr<ncclfr::DumpFile>>& files,
                                                   const std::string& incident) {
  std::map<int, ncclfr::schema::Dump::Reader> m;
  for (auto& f : files) {
    auto d = f->dump();
    if (incident.empty() || incident == d.getInfo().getIncidentId().cStr()) m.emplace(d.getProcess().getGlobalRank(), d);
  }
  return m;
}

// The first incident about work: an incident whose stall dump names a communicator still being
// created (ranks of a loaded machine that started seconds apart) is not the planted fault.
std::string firstIncident(const std::vector<std::unique_ptr<ncclfr::DumpFile>>& files) {
  std::set<std::string> aboutCreation;
  for (auto& f : files) {
    auto info = f->dump().getInfo();
    std::string detail = info.getDetail().cStr();
    if (info.getReason() == DumpReason::STALL &&
        (detail.rfind("initialization of", 0) == 0 || detail.rfind("ncclCommSplit of", 0) == 0)) {
      aboutCreation.insert(info.getIncidentId().cStr());
    }
  }
  std::string first;
  for (auto& f : files) {
    std::string id = f->dump().getInfo().getIncidentId().cStr();
    if (aboutCreation.count(id) == 0 && (first.empty() || id < first)) first = id;
  }
  return first;
}

// The number of dumps of the first incident (a slow rank's later stall could start a second).
size_t firstIncidentDumps(const std::string& dir) {
  if (countDumps(dir) == 0) return 0;
  auto files = dumpsIn(dir);
  return byRank(files, firstIncident(files)).size();
}

void requireSound(const std::map<int, ncclfr::schema::Dump::Reader>& ranks, bool clean) {
  int behind = 0;
  std::string all;
  for (auto& [rank, d] : ranks) {
    auto report = checkDumpInvariants(d, clean);
    behind += report.pendingBehindCompleted;
    for (size_t i = 0; i < report.problems.size() && i < 20; ++i) all += report.problems[i] + "\n";
  }
  INFO(all);
  CHECK(behind == 0);
  CHECK(all.empty());
}

// The 8-rank tensor/data-parallel job of the demo: TP groups of 2, DP groups of 4.
constexpr int kTpDpRanks = 8;
std::vector<std::string> tpDpJob(std::vector<std::string> extra) {
  std::vector<std::string> a = {NCCLFR_TEST_NCCL_JOB, "--layout", "tp-dp", "--tp", "2", "--step-ms", "1", "--quiet"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// The tp-dp job run to a clean exit with NCCLFR_DUMP_ON_EXIT: its dumps.
std::vector<std::unique_ptr<ncclfr::DumpFile>> runCleanTpDp(const Workspace& w, const std::string& job,
                                                            std::vector<std::string> extra) {
  auto env = simEnv(w);
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  return runToExit(w, env, simrun(kTpDpRanks, job, tpDpJob(std::move(extra))), std::chrono::seconds(120));
}

unsigned commNamed(ncclfr::schema::Dump::Reader d, const std::string& name) {
  auto comms = d.getComms();
  for (unsigned i = 0; i < comms.size(); ++i) {
    if (name == comms[i].getName().cStr()) return i;
  }
  FAIL("no communicator named " << name);
  return 0;
}

// The entry of collective `seq` on communicator `comm`.
ncclfr::schema::Entry::Reader collective(ncclfr::schema::Dump::Reader d, unsigned comm, int64_t seq) {
  for (auto e : d.getEntries()) {
    if (e.getComm() == comm && e.getOp() != Op::SEND && e.getOp() != Op::RECV && e.getSeq() == seq) return e;
  }
  FAIL("rank " << d.getProcess().getGlobalRank() << " has no collective " << seq << " on comm " << comm);
  return d.getEntries()[0];
}

}  // namespace

TEST_CASE("sim: every call of every rank, thread and communicator is recorded once, with GPU times") {
  Workspace w;
  auto env = simEnv(w);
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  constexpr int kRanks = 4, kThreads = 2, kComms = 2, kRounds = 12;
  Process job(simrun(kRanks, "exact",
                     {NCCLFR_TEST_JOB, "--scenario", "exact", "--cuda", "--calls", std::to_string(kRounds), "--threads",
                      std::to_string(kThreads), "--comms", std::to_string(kComms)}),
              env, w.path("out"), w.path("err"));
  REQUIRE(job.wait(std::chrono::seconds(120)));
  INFO(job.describe() + "\n" + job.out() + job.err());
  REQUIRE(job.exitedWith(0));
  auto files = dumpsIn(w.dumps());
  REQUIRE(files.size() == kRanks);
  auto ranks = byRank(files, "");
  REQUIRE(ranks.size() == kRanks);
  std::vector<uint64_t> ids;
  for (auto c : ranks.at(0).getComms()) ids.push_back(c.getId());
  REQUIRE(ids.size() == kThreads * kComms + 1);
  for (auto& [rank, d] : ranks) {
    CHECK(d.getProcess().getTiming() == ncclfr::schema::TimingMode::FULL);
    CHECK(d.getProcess().getSimulated());
    auto comms = d.getComms();
    REQUIRE(comms.size() == ids.size());
    for (unsigned i = 0; i < comms.size(); ++i) {
      // NCCL's commHash is the same on every rank.
      CHECK(comms[i].getId() == ids[i]);
      CHECK(comms[i].getRank() == rank);
      CHECK(comms[i].getSize() == kRanks);
      if (i == 0) continue;
      CHECK(comms[i].getLastEnqueuedSeq() == 5 * kRounds - 1);
      CHECK(comms[i].getLastStartedSeq() == comms[i].getLastEnqueuedSeq());
      CHECK(comms[i].getLastCompletedSeq() == comms[i].getLastEnqueuedSeq());
      CHECK(comms[i].getTotalEntries() == 7 * kRounds);
      for (auto p : comms[i].getP2p()) CHECK(p.getLastCompletedSeq() == kRounds - 1);
    }
    auto entries = d.getEntries();
    REQUIRE(entries.size() == kThreads * kComms * 7 * kRounds);
    std::map<uint32_t, int64_t> nextSeq;
    for (auto e : entries) {
      CHECK(e.getState() == EntryState::COMPLETED);
      CHECK(e.getStartMonoNs() > 0);
      CHECK(e.getEndMonoNs() >= e.getStartMonoNs());
      if (e.getOp() != Op::SEND && e.getOp() != Op::RECV) CHECK(e.getSeq() == nextSeq[e.getComm()]++);
    }
  }
}

TEST_CASE("sim: NCCLFR_TIMING=end and host record what they can measure") {
  for (std::string timing : {"end", "host"}) {
    Workspace w;
    auto env = simEnv(w);
    env["NCCLFR_DUMP_ON_EXIT"] = "1";
    env["NCCLFR_TIMING"] = timing;
    Process job(simrun(2, "timing-" + timing, {NCCLFR_TEST_JOB, "--scenario", "exact", "--cuda", "--calls", "4"}), env,
                w.path("out"), w.path("err"));
    REQUIRE(job.wait(std::chrono::seconds(120)));
    INFO(timing + ": " + job.describe() + "\n" + job.err());
    REQUIRE(job.exitedWith(0));
    auto files = dumpsIn(w.dumps());
    REQUIRE(files.size() == 2);
    for (auto& f : files) {
      auto d = f->dump();
      auto c = d.getComms()[1];
      CHECK(c.getLastStartedSeq() == -1);  // neither mode sees a start
      for (auto e : d.getEntries()) CHECK(e.getStartMonoNs() == 0);
      if (timing == "end") {
        CHECK(d.getProcess().getTiming() == ncclfr::schema::TimingMode::END_ONLY);
        CHECK(c.getLastCompletedSeq() == c.getLastEnqueuedSeq());
        for (auto e : d.getEntries()) {
          CHECK(e.getState() == EntryState::COMPLETED);
          CHECK(e.getEndMonoNs() > 0);
        }
      } else {
        CHECK(d.getProcess().getTiming() == ncclfr::schema::TimingMode::HOST_ONLY);
        CHECK(c.getLastCompletedSeq() == -1);
        for (auto e : d.getEntries()) {
          CHECK(e.getState() == EntryState::SCHEDULED);
          CHECK(e.getEndMonoNs() == 0);
          CHECK(e.getCallDurationNs() > 0);
        }
      }
    }
  }
}

TEST_CASE("sim: a host stall: the stalled rank's dump exists thanks to the peer trigger") {
  Workspace w;
  constexpr int kRanks = 4, kStalled = 2;
  Process job(simrun(kRanks, "hoststall",
                     {NCCLFR_TEST_NCCL_JOB, "--steps", "50", "--step-ms", "2", "--fault", "host_stall", "--fault-rank",
                      std::to_string(kStalled), "--fault-step", "5"}),
              simEnv(w, kStallTimeout), w.path("out"), w.path("err"));
  REQUIRE(waitUntil([&] { return firstIncidentDumps(w.dumps()) >= kRanks; }));
  auto files = dumpsIn(w.dumps());
  std::string incident = firstIncident(files);
  auto ranks = byRank(files, incident);
  INFO(job.err());
  REQUIRE(ranks.size() == kRanks);
  int stalls = 0;
  for (auto& [rank, d] : ranks) {
    if (rank == kStalled) {
      // Nothing pending at all: it dumped because a peer asked.
      CHECK(d.getInfo().getReason() == DumpReason::PEER_REQUEST);
      for (auto e : d.getEntries()) CHECK(e.getState() == EntryState::COMPLETED);
    } else {
      // The waiting ranks see the stall themselves, unless a quicker peer's trigger reached them
      // before their own NCCLFR_TIMEOUT ran out (a slow machine, a sanitizer).
      auto reason = d.getInfo().getReason();
      CHECK((reason == DumpReason::STALL || reason == DumpReason::PEER_REQUEST));
      stalls += reason == DumpReason::STALL;
      bool pending = false;
      for (auto e : d.getEntries()) pending |= e.getState() != EntryState::COMPLETED;
      CHECK(pending);
    }
    CHECK(d.getInfo().getTriggerRank() != kStalled);
  }
  CHECK(stalls >= 1);
  job.signal(SIGTERM);
  CHECK(job.wait());
}

TEST_CASE("sim: a device stall: the rank whose stream is blocked shows its call not started") {
  Workspace w;
  constexpr int kRanks = 3, kStalled = 1;
  Process job(simrun(kRanks, "devstall",
                     {NCCLFR_TEST_NCCL_JOB, "--steps", "50", "--step-ms", "2", "--fault", "device_stall", "--fault-rank",
                      std::to_string(kStalled), "--fault-step", "4"}),
              simEnv(w, kStallTimeout), w.path("out"), w.path("err"));
  REQUIRE(waitUntil([&] { return firstIncidentDumps(w.dumps()) >= kRanks; }));
  auto files = dumpsIn(w.dumps());
  auto ranks = byRank(files, firstIncident(files));
  INFO(job.err());
  REQUIRE(ranks.size() == kRanks);
  auto stalled = ranks.at(kStalled);
  auto reason = stalled.getInfo().getReason();
  CHECK((reason == DumpReason::STALL || reason == DumpReason::PEER_REQUEST));
  // Its all-reduce of the faulty step was issued on the host but never started on its GPU, while a
  // peer's started (and waits for it).
  auto comm = stalled.getComms()[0];
  CHECK(comm.getLastEnqueuedSeq() > comm.getLastStartedSeq());
  auto peer = ranks.at(0).getComms()[0];
  CHECK(peer.getLastStartedSeq() > peer.getLastCompletedSeq());
  CHECK(peer.getLastStartedSeq() == comm.getLastStartedSeq() + 1);
  job.signal(SIGTERM);
  CHECK(job.wait());
}

TEST_CASE("sim: a SIGKILLed rank's ring is salvaged whole") {
  Workspace w;
  constexpr int kRanks = 2, kDead = 1;
  auto env = simEnv(w, kStallTimeout);
  Process job(simrun(kRanks, "die",
                     {NCCLFR_TEST_NCCL_JOB, "--steps", "30", "--step-ms", "1", "--fault", "die", "--fault-rank",
                      std::to_string(kDead), "--fault-step", "10"}),
              env, w.path("out"), w.path("err"));
  REQUIRE(job.wait(std::chrono::seconds(120)));
  // The launcher ended the job when the rank died; the survivor's ring is gone with its clean
  // SIGTERM dump, the dead rank's ring waits for salvage.
  REQUIRE(countFiles(w.shm(), ".ring") == 1);
  std::string salvaged = w.path("salvaged");
  Process salvage({NCCLFR_TEST_CLI, "salvage", "--shm-dir", w.shm(), "-o", salvaged}, {}, w.path("s-out"),
                  w.path("s-err"));
  REQUIRE(salvage.wait());
  INFO(salvage.out() + salvage.err());
  REQUIRE(salvage.exitedWith(0));
  CHECK(salvage.outContains("rank 1 pid"));
  CHECK(salvage.outContains("dead (killed without a chance to dump"));
  auto files = dumpsIn(salvaged);
  REQUIRE(files.size() == 1);
  auto d = files[0]->dump();
  CHECK(d.getProcess().getGlobalRank() == kDead);
  CHECK(d.getInfo().getProcessDied());
  CHECK(d.getInfo().getTornEntries() == 0);
  CHECK(d.getInfo().getEvictedEntries() == 0);
  // Every call it ever made is there, with the sequence numbers its counters say.
  uint64_t total = 0;
  for (auto c : d.getComms()) total += c.getTotalEntries();
  CHECK(d.getEntries().size() == total);
  CHECK(d.getInfo().getTotalEntries() == total);
  CHECK(total > 10);
}

// The regression tests for lost completions: on the tensor/data-parallel job, launches that became
// visible to the watchdog together were queued on their streams out of order, and the ones that
// landed behind a later, pending launch were never polled again: about 95 calls per 8-rank run
// stayed "scheduled" although their streams had long passed them.

TEST_CASE("sim: tp-dp, 8 ranks, clean run: every call completed, in stream order, counters exact") {
  Workspace w;
  auto files = runCleanTpDp(w, "tpdp-clean", {"--steps", "20"});
  auto ranks = byRank(files, "");
  REQUIRE(ranks.size() == kTpDpRanks);
  for (auto& [rank, d] : ranks) {
    CHECK(d.getInfo().getReason() == DumpReason::EXIT);
    // 20 steps: tp all-gather + reduce-scatter, a send/recv pair, the dp all-reduce, and a
    // broadcast every fifth step.
    CHECK(d.getEntries().size() == 20 * 5 + 4);
  }
  requireSound(ranks, true);
}

// The same job on non-blocking communicators (config.blocking = 0: inits and splits return before
// they are done, calls may return ncclInProgress): every call is recorded and completes all the same.
TEST_CASE("sim: tp-dp, 8 ranks, non-blocking communicators: every call completed, in stream order") {
  Workspace w;
  auto files = runCleanTpDp(w, "tpdp-nb", {"--steps", "10", "--nonblocking"});
  auto ranks = byRank(files, "");
  REQUIRE(ranks.size() == kTpDpRanks);
  for (auto& [rank, d] : ranks) {
    CHECK(d.getInfo().getReason() == DumpReason::EXIT);
    CHECK(d.getEntries().size() == 10 * 5 + 2);
    for (auto c : d.getComms()) CHECK_FALSE(c.getBlocking());
  }
  requireSound(ranks, true);
}

TEST_CASE("sim: tp-dp, 8 ranks, three threads on their own communicators: every call completed, in stream order") {
  Workspace w;
  auto files = runCleanTpDp(w, "tpdp-threads", {"--steps", "12", "--threads", "3"});
  auto ranks = byRank(files, "");
  REQUIRE(ranks.size() == kTpDpRanks);
  for (auto& [rank, d] : ranks) {
    std::set<uint32_t> threads;
    for (auto e : d.getEntries()) threads.insert(e.getThreadId());
    CHECK(threads.size() == 3);
    CHECK(d.getEntries().size() == 12 * 5 + 3 + 2 * 12);
  }
  requireSound(ranks, true);
}

TEST_CASE("sim: tp-dp, 8 ranks, a host stall: every dump in stream order, the stalled rank finished all it issued") {
  Workspace w;
  constexpr int kStalled = 5, kStep = 6;
  Process job(simrun(kTpDpRanks, "tpdp-host",
                     tpDpJob({"--steps", "40", "--fault", "host_stall", "--fault-rank", std::to_string(kStalled),
                              "--fault-step", std::to_string(kStep), "--fault-comm", "tp"})),
              simEnv(w, kStallTimeout), w.path("out"), w.path("err"));
  REQUIRE(waitUntil([&] { return firstIncidentDumps(w.dumps()) >= kTpDpRanks; }, std::chrono::seconds(90)));
  auto files = dumpsIn(w.dumps());
  auto ranks = byRank(files, firstIncident(files));
  INFO(job.err());
  REQUIRE(ranks.size() == kTpDpRanks);
  requireSound(ranks, false);
  // The stalled rank waited for every step it began: everything it issued completed.
  auto stalled = ranks.at(kStalled);
  for (auto e : stalled.getEntries()) CHECK(e.getState() == EntryState::COMPLETED);
  // Its tensor-parallel partner's all-gather of that step started and waits for it.
  auto partner = ranks.at(kStalled ^ 1);
  auto gather = collective(partner, commNamed(partner, "tp"), 2 * kStep);
  CHECK(gather.getOp() == Op::ALL_GATHER);
  CHECK(gather.getState() == EntryState::STARTED);
  job.signal(SIGTERM);
  CHECK(job.wait());
}

TEST_CASE("sim: tp-dp, 8 ranks, a device stall: the stalled rank's call never started, its peers' did") {
  Workspace w;
  constexpr int kStalled = 3, kStep = 6;  // not a broadcast step: the stall is the dp all-reduce's alone
  Process job(simrun(kTpDpRanks, "tpdp-device",
                     tpDpJob({"--steps", "40", "--fault", "device_stall", "--fault-rank", std::to_string(kStalled),
                              "--fault-step", std::to_string(kStep), "--fault-comm", "dp"})),
              simEnv(w, kStallTimeout), w.path("out"), w.path("err"));
  REQUIRE(waitUntil([&] { return firstIncidentDumps(w.dumps()) >= kTpDpRanks; }, std::chrono::seconds(90)));
  auto files = dumpsIn(w.dumps());
  auto ranks = byRank(files, firstIncident(files));
  INFO(job.err());
  REQUIRE(ranks.size() == kTpDpRanks);
  requireSound(ranks, false);
  // A never-ending "kernel" sits on the stalled rank's dp stream in front of the all-reduce of step
  // kStep: the all-reduce was issued and never started there; on its dp peers it started and waits.
  for (auto& [rank, d] : ranks) {
    if (rank % 2 != kStalled % 2) continue;
    INFO("rank " << rank);
    unsigned dp = commNamed(d, "dp");
    auto frontier = collective(d, dp, kStep);
    CHECK(frontier.getOp() == Op::ALL_REDUCE);
    auto comm = d.getComms()[dp];
    CHECK(comm.getLastEnqueuedSeq() == kStep);
    CHECK(comm.getLastCompletedSeq() == kStep - 1);
    if (rank == kStalled) {
      CHECK(frontier.getState() == EntryState::SCHEDULED);
      CHECK(frontier.getStartMonoNs() == 0);
      CHECK(comm.getLastStartedSeq() == kStep - 1);
    } else {
      CHECK(frontier.getState() == EntryState::STARTED);
      CHECK(frontier.getStartMonoNs() > 0);
      CHECK(comm.getLastStartedSeq() == kStep);
    }
  }
  job.signal(SIGTERM);
  CHECK(job.wait());
}

// A peer dies; the survivors see ncclRemoteError and abort their communicator, which cuts their
// hung all-reduce short: its kernels exit and the events behind them fire. That is no completion:
// in the dumps written after the abort the call is an error and the counters did not move.
TEST_CASE("sim: a call cut short by ncclCommAbort is an error in later dumps, never completed") {
  Workspace w;
  auto env = simEnv(w);
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  constexpr int kRanks = 4, kDead = 2;
  Process job({NCCLFR_TEST_SIMRUN, "-q", "-n", std::to_string(kRanks), "--job-id", "abort-cut", "--timeout", "90",
               "--no-kill-on-failure", "--", NCCLFR_TEST_NCCL_JOB, "--steps", "8", "--step-ms", "5", "--quiet",
               "--fault", "die", "--fault-rank", std::to_string(kDead), "--fault-step", "3"},
              env, w.path("out"), w.path("err"));
  REQUIRE(job.wait(std::chrono::seconds(120)));
  INFO(job.err());
  int exitDumps = 0;
  for (auto& f : dumpsIn(w.dumps())) {
    auto d = f->dump();
    if (d.getInfo().getReason() != DumpReason::EXIT) continue;
    int rank = d.getProcess().getGlobalRank();
    INFO("rank " << rank);
    CHECK(rank != kDead);
    ++exitDumps;
    auto comm = d.getComms()[0];
    CHECK(comm.getState() == ncclfr::schema::CommState::ABORTED);
    CHECK(comm.getLastCompletedSeq() < comm.getLastEnqueuedSeq());
    // The call its stream was stuck in (an all-reduce, or a send/recv with the dead rank ahead of
    // it) was cut short: an error although NCCL accepted it (result 0). Work queued behind it may
    // have run after the abort (an error too) or never (still pending): never completed.
    int cut = 0;
    for (auto e : d.getEntries()) {
      if (e.getComm() != 0) continue;
      cut += e.getState() == EntryState::ERROR && e.getResult() == 0;
      bool collective = e.getOp() != Op::SEND && e.getOp() != Op::RECV;
      if (collective && e.getSeq() > comm.getLastCompletedSeq()) CHECK(e.getState() != EntryState::COMPLETED);
    }
    CHECK(cut >= 1);
  }
  CHECK(exitDumps == kRanks - 1);
}

// ncclCommAbort returns before the GPU has finished the work it cut short. The exit dump written
// when the last communicator ends waits (a bounded while) for those launches, so it says how they
// ended: here all-reduces queued behind a stream held until 50 ms after the abort run only then,
// which makes them errors. Without the wait they were still `scheduled` in the dump.
TEST_CASE("sim: the exit dump after an abort waits for the launches the abort cut short") {
  Workspace w;
  auto env = simEnv(w);
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  constexpr int kCalls = 3;
  auto files = runToExit(w, env,
                         simrun(1, "held-abort",
                                {NCCLFR_TEST_JOB, "--scenario", "heldabort", "--cuda", "--calls",
                                 std::to_string(kCalls), "--hold-ms", "50"}));
  int exitDumps = 0;
  for (auto& f : files) {
    auto d = f->dump();
    if (d.getInfo().getReason() != DumpReason::EXIT) continue;
    ++exitDumps;
    auto comm = d.getComms()[0];
    CHECK(comm.getState() == ncclfr::schema::CommState::ABORTED);
    CHECK(comm.getLastEnqueuedSeq() == 2 * kCalls - 1);
    CHECK(comm.getLastCompletedSeq() == kCalls - 1);
    auto entries = d.getEntries();
    REQUIRE(entries.size() == 2 * kCalls);
    for (auto e : entries) {
      INFO("seq " << e.getSeq());
      if (e.getSeq() < kCalls) {
        CHECK(e.getState() == EntryState::COMPLETED);
      } else {
        CHECK(e.getState() == EntryState::ERROR);
        CHECK(e.getResult() == 0);
        CHECK(e.getEndMonoNs() > 0);
      }
    }
  }
  CHECK(exitDumps == 1);
}

// The wait is bounded: behind a stream held for good, the exit dump is written anyway, the calls
// still `scheduled`, and the process goes on.
TEST_CASE("sim: the exit dump after an abort does not wait for a stream held for good") {
  Workspace w;
  auto env = simEnv(w);
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  constexpr int kCalls = 2;
  Process job(simrun(1, "held-forever",
                     {NCCLFR_TEST_JOB, "--scenario", "heldabort", "--cuda", "--calls", std::to_string(kCalls),
                      "--hold-ms", "-1"}),
              env, w.path("out"), w.path("err"));
  auto exitDump = [&] {
    for (auto& f : dumpsIn(w.dumps())) {
      if (f->dump().getInfo().getReason() == DumpReason::EXIT) return true;
    }
    return false;
  };
  REQUIRE(waitUntil([&] { return job.outContains("ready"); }, std::chrono::seconds(60)));
  INFO(job.out() + job.err());
  REQUIRE(waitUntil(exitDump, std::chrono::seconds(20)));
  CHECK_FALSE(job.wait(std::chrono::milliseconds(0)));  // still running: nothing waited for the stream
  for (auto& f : dumpsIn(w.dumps())) {
    auto d = f->dump();
    if (d.getInfo().getReason() != DumpReason::EXIT) continue;
    CHECK(d.getComms()[0].getState() == ncclfr::schema::CommState::ABORTED);
    for (auto e : d.getEntries()) {
      INFO("seq " << e.getSeq());
      CHECK(e.getState() == (e.getSeq() < kCalls ? EntryState::COMPLETED : EntryState::SCHEDULED));
    }
  }
  job.signal(SIGKILL);
  CHECK(job.wait());
}
