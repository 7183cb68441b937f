// End-to-end tests of the recorder's GPU-launch tracking where the ring laps a launch or a
// non-blocking communicator defers its end, over the fake NCCL and the fake CUDA driver (events
// complete when recorded): who owns an event pair while its call is inside NCCL, launches whose
// leader the ring took, deferred launches resolved late, early, or through any of a group's
// communicators. Each scenario is made to happen deterministically with a tiny ring, a call that
// blocks inside the fake NCCL, or the fake's non-blocking communicators.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "dump_invariants.h"
#include "process_harness.h"

using namespace rectest;
using ncclfr::schema::DumpReason;
using ncclfr::schema::EntryState;

namespace {

std::string preload() {
  std::string runtime = NCCLFR_TEST_SANITIZER_RUNTIME;
  return runtime.empty() ? std::string(NCCLFR_TEST_RECORDER_LIB) : runtime + " " + NCCLFR_TEST_RECORDER_LIB;
}

// The fake NCCL with the fake CUDA driver: GPU timing is on.
std::map<std::string, std::string> gpuJobEnv(const Workspace& w, const std::string& job) {
  return {
      {"LD_PRELOAD", preload()},
      {"LD_LIBRARY_PATH", std::string(NCCLFR_TEST_FAKE_NCCL_DIR) + ":" + NCCLFR_TEST_FAKE_CUDA_DIR + ":" +
                              NCCLFR_TEST_CUDA_LIB_DIR},
      {"NCCLFR_SHM_DIR", w.shm()},
      {"NCCLFR_DUMP_DIR", w.dumps()},
      {"NCCLFR_JOB", job},
      {"NCCLFR_TIMEOUT", "30s"},
      {"NCCLFR_TRIGGER_POLL", "100ms"},
      {"NCCLFR_RANK", "0"},
      {"NCCLFR_DUMP_ON_EXIT", "1"},
      {"RANK", "0"},
      {"WORLD_SIZE", "1"},
  };
}

std::vector<std::string> jobArgs(const Workspace& w, const std::string& scenario, int calls,
                                 std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {NCCLFR_TEST_JOB, "--uid-file", w.path("uid"), "--scenario", scenario,
                                "--calls", std::to_string(calls)};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

void requireSound(ncclfr::schema::Dump::Reader d) {
  auto report = checkDumpInvariants(d, false);
  std::string all;
  for (const auto& p : report.problems) all += p + "\n";
  INFO(all);
  CHECK(report.problems.empty());
}

// The one dump written for `reason`.
ncclfr::schema::Dump::Reader dumpFor(const std::vector<std::unique_ptr<ncclfr::DumpFile>>& dumps, DumpReason reason) {
  const ncclfr::DumpFile* found = nullptr;
  for (const auto& f : dumps) {
    if (f->dump().getInfo().getReason() == reason) {
      REQUIRE(found == nullptr);
      found = f.get();
    }
  }
  REQUIRE(found != nullptr);
  return found->dump();
}

// Runs a job to its end and returns its exit dump (every call it made has finished by then).
void requireAllCompleted(ncclfr::schema::Dump::Reader d) {
  REQUIRE(d.getEntries().size() > 0);
  for (unsigned i = 0; i < d.getEntries().size(); ++i) {
    INFO(describeEntry(d, i));
    CHECK(d.getEntries()[i].getState() == EntryState::COMPLETED);
  }
  requireSound(d);
}

}  // namespace

TEST_CASE("a call the ring laps while it is inside NCCL keeps its event pair until it returns") {
  // One event pair in all (the watchdog's reference event + 2). Thread A's call takes it and
  // blocks inside NCCL while thread B laps the 64-entry ring: the writer that replaces A's entry
  // must not hand A's pair to anyone (A still records its end event on it when it returns), so B
  // gets no events until A is back; then A returns the pair and B's calls are timed again.
  Workspace w;
  auto env = gpuJobEnv(w, "lapincall");
  env["NCCLFR_BUFFER"] = "64";
  env["FAKE_CUDA_EVENT_LIMIT"] = "3";
  env["FAKE_NCCL_BLOCK_AT"] = "0";
  env["FAKE_NCCL_BLOCKED_MARK"] = w.path("a-blocked");  // B starts once A is inside NCCL
  env["FAKE_NCCL_BLOCK_UNTIL"] = w.path("release-a");   // A returns once the dump is written
  env["NCCLFR_DUMP_SIGNAL"] = "SIGUSR2";
  Process p(jobArgs(w, "lapincall", 150), env, w.path("out"), w.path("err"));
  REQUIRE(waitUntil([&] { return p.outContains("ready"); }));
  p.signal(SIGUSR2);
  REQUIRE(waitUntil([&] { return countDumps(w.dumps()) == 1; }));
  { std::ofstream release(w.path("release-a")); }
  REQUIRE(p.wait());
  INFO(p.err());
  REQUIRE(p.exitedWith(0));
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 2);

  // While A was inside NCCL: B's calls (all the ring holds) got no events.
  auto during = dumpFor(dumps, DumpReason::SIGNAL);
  REQUIRE(during.getEntries().size() >= 56);
  for (unsigned i = 0; i < during.getEntries().size(); ++i) {
    INFO(describeEntry(during, i));
    CHECK(during.getEntries()[i].getState() == EntryState::UNTRACKED);
    CHECK(during.getEntries()[i].getComm() == 1);
  }
  requireSound(during);

  // After A returned: the pair is back (A returned it), so B's first call after that was timed.
  auto after = dumpFor(dumps, DumpReason::EXIT);
  int timed = 0;
  for (auto e : after.getEntries()) timed += e.getState() == EntryState::COMPLETED && e.getEndMonoNs() > 0;
  CHECK(timed >= 1);
  requireSound(after);
}

TEST_CASE("a group longer than the ring: the members left in it complete with the next timed call") {
  // The group's leader (its first call) is gone from the 64-entry ring before the watchdog sees
  // it; the members still there must not stay scheduled behind the later calls that completed.
  Workspace w;
  auto env = gpuJobEnv(w, "biggroup");
  env["NCCLFR_BUFFER"] = "64";
  auto dumps = runToExit(w, env, jobArgs(w, "biggroup", 100));
  REQUIRE(dumps.size() == 1);
  auto d = dumps[0]->dump();
  REQUIRE(d.getEntries().size() >= 56);  // the ring's last lap (less the positions reserved, unused)
  requireAllCompleted(d);
  CHECK(d.getComms()[0].getLastCompletedSeq() == 102);
}

TEST_CASE("a deferred group resolved through its fifth communicator completes") {
  // ncclGroupEnd returns ncclInProgress; the application asks ncclCommGetAsyncError of the last of
  // the group's five non-blocking communicators only.
  Workspace w;
  auto env = gpuJobEnv(w, "nbgroup5");
  auto dumps = runToExit(w, env, jobArgs(w, "nbgroup", 10, {"--comms", "5"}));
  REQUIRE(dumps.size() == 1);
  auto d = dumps[0]->dump();
  REQUIRE(d.getEntries().size() == 10 + 41);
  requireAllCompleted(d);
  for (unsigned c = 1; c <= 5; ++c) CHECK(d.getComms()[c].getLastCompletedSeq() == 1);
}

TEST_CASE("a deferred group whose leader the ring takes after its end was recorded still completes") {
  // The watchdog holds the group's pair while it is deferred; the application resolves it and at
  // once makes 40 calls on the 64-entry ring, which takes the leader (and some members) before
  // the watchdog looks again. The members left must complete, not stay scheduled.
  Workspace w;
  auto env = gpuJobEnv(w, "nbgrouplap");
  env["NCCLFR_BUFFER"] = "64";
  auto dumps = runToExit(w, env, jobArgs(w, "nbgroup", 32, {"--comms", "1"}));
  REQUIRE(dumps.size() == 1);
  auto d = dumps[0]->dump();
  REQUIRE(d.getEntries().size() >= 50);
  REQUIRE(d.getEntries()[0].getComm() == 1);  // some of the group's members are still in the ring
  requireAllCompleted(d);
  CHECK(d.getComms()[0].getLastCompletedSeq() == 40);
  CHECK(d.getComms()[1].getLastCompletedSeq() == 31);
}

TEST_CASE("a success reported by another thread while a non-blocking call is inside NCCL resolves it") {
  // The fake NCCL has another thread ask ncclCommGetAsyncError (success) before the call returns
  // ncclInProgress, and the application never asks again: the call must still complete.
  Workspace w;
  auto env = gpuJobEnv(w, "nbrace");
  env["FAKE_NCCL_POLL_IN_CALL"] = "1";
  constexpr int kCalls = 5;
  auto dumps = runToExit(w, env, jobArgs(w, "nonblocking", kCalls, {"--no-poll"}));
  REQUIRE(dumps.size() == 1);
  auto d = dumps[0]->dump();
  REQUIRE(d.getEntries().size() == kCalls);
  requireAllCompleted(d);
  CHECK(d.getComms()[0].getLastCompletedSeq() == kCalls - 1);
}
