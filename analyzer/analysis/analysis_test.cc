// The analysis on synthetic dumps (synth/): every reason, healthy runs, chains, rings that do not
// start at seq 0, evicted entries, missing ranks, merges, several jobs and incidents.
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <array>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "ncclfr/analysis/analyze.h"
#include "ncclfr/analysis/load.h"
#include "ncclfr/analysis/render.h"
#include "ncclfr/dump_file.h"
#include "ncclfr/synth.h"

#include <capnp/message.h>

namespace fs = std::filesystem;
using namespace ncclfr;
using namespace ncclfr::analysis;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/ncclfr-analysis-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { fs::remove_all(path); }
};

synth::Options opts(const std::string& scenario, int32_t ranks = 16) {
  synth::Options o;
  o.scenario = scenario;
  o.ranks = ranks;
  o.entries = 256;
  o.threads = 2;  // the writer threads run under TSan too
  return o;
}

struct Outcome {
  Verdict v;
  Job job;
  synth::Result made;
};

Outcome analyzeDir(const fs::path& dir, const SelectOptions& so = {}) {
  Outcome out;
  std::vector<Problem> problems;
  auto files = findDumpFiles({dir.string()}, &problems);
  REQUIRE(problems.empty());
  auto loaded = loadDumps(files, {});
  std::string error;
  REQUIRE(selectJob(std::move(loaded), so, &out.job, &error));
  out.v = analyze(out.job);
  return out;
}

Outcome run(const synth::Options& o, TempDir& tmp) {
  synth::Result made;
  std::string error;
  REQUIRE(synth::writeJob(o, tmp.path.string(), &made, &error));
  Outcome out = analyzeDir(tmp.path);
  out.made = made;
  return out;
}

Outcome run(const synth::Options& o) {
  TempDir tmp;
  return run(o, tmp);
}

void expectSuspect(const Outcome& out, int32_t rank, Reason reason) {
  INFO(renderText(out.v, true));
  REQUIRE(!out.v.suspects.empty());
  CHECK(out.v.suspects[0].who.rank == rank);
  CHECK(reasonName(out.v.suspects[0].reason) == std::string(reasonName(reason)));
}

bool anyNoteContains(const Verdict& v, const std::string& what) {
  for (const auto& n : v.notes) {
    if (n.find(what) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a healthy run is ok with no suspects") {
  for (int32_t ranks : {2, 8, 16, 64}) {
    auto out = run(opts("healthy", ranks));
    INFO(renderText(out.v, true));
    CHECK(out.v.status == Status::kOk);
    CHECK(out.v.suspects.empty());
    CHECK(out.v.p2pLeftovers.empty());
    for (const auto& c : out.v.comms) {
      CHECK(!c.stalled);
      CHECK(c.divergeSeq == -1);
    }
  }
}

TEST_CASE("each fault kind names the fault rank and its reason") {
  struct Case {
    const char* scenario;
    Reason reason;
    Status status;
  };
  for (auto c : {Case{"host_stall", Reason::kHostStall, Status::kHang},
                 Case{"device_stall", Reason::kDeviceStall, Status::kHang},
                 Case{"mismatch", Reason::kMismatch, Status::kDesync},
                 Case{"unmatched_p2p", Reason::kUnmatchedP2P, Status::kDesync},
                 Case{"died", Reason::kDied, Status::kHang}, Case{"missing", Reason::kMissing, Status::kHang},
                 Case{"error", Reason::kError, Status::kHang}}) {
    for (int32_t ranks : {16, 64}) {
      SECTION(std::string(c.scenario) + " on " + std::to_string(ranks) + " ranks") {
        auto out = run(opts(c.scenario, ranks));
        expectSuspect(out, out.made.faultRank, c.reason);
        CHECK(out.v.status == c.status);
      }
    }
  }
}

TEST_CASE("the first rank looked at can be the culprit") {
  for (const char* scenario : {"host_stall", "device_stall", "mismatch", "unmatched_p2p", "died", "error"}) {
    auto o = opts(scenario);
    o.faultRank = 0;
    auto out = run(o);
    INFO(scenario);
    REQUIRE(out.made.faultRank == 0);
    expectSuspect(out, 0, out.v.suspects.empty() ? Reason::kHostStall : out.v.suspects[0].reason);
    CHECK(out.v.suspects[0].who.rank == 0);
  }
}

TEST_CASE("a mismatch between two ranks names both") {
  auto o = opts("mismatch", 2);
  o.tp = 2;
  o.pp = 1;
  o.faultRank = 1;
  auto out = run(o);
  INFO(renderText(out.v, true));
  REQUIRE(!out.v.suspects.empty());
  CHECK(out.v.suspects[0].reason == Reason::kMismatch);
  CHECK(out.v.status == Status::kDesync);
  // Two ranks, no majority: both are named, in one suspect or two.
  std::set<int32_t> named;
  for (const auto& s : out.v.suspects) {
    if (s.reason != Reason::kMismatch) continue;
    named.insert(s.who.rank);
    for (const auto& w : s.with) named.insert(w.rank);
  }
  CHECK(named == std::set<int32_t>{0, 1});
}

TEST_CASE("a two-rank mismatch is settled by the sibling groups of the same split") {
  auto o = opts("mismatch", 16);
  o.tp = 2;
  o.pp = 1;
  o.faultRank = 5;
  auto out = run(o);
  expectSuspect(out, 5, Reason::kMismatch);
}

TEST_CASE("a stall seen through another communicator is followed to its end (TP/DP chain)") {
  auto o = opts("host_stall", 64);
  o.tp = 8;
  o.pp = 1;
  o.faultRank = 13;
  auto out = run(o);
  expectSuspect(out, 13, Reason::kHostStall);
  // Some data-parallel group is held up by a rank that waits on the TP group: the chain shows it.
  bool chained = false;
  for (const auto& s : out.v.suspects) {
    if (s.chain.size() >= 2) {
      chained = true;
      CHECK(s.chain.back().who.rank == 13);
      CHECK(s.chain.front().who.rank != 13);
      CHECK(s.chain.front().comm != s.chain.back().comm);
    }
  }
  CHECK(chained);
  // The ranks that were merely held up are not suspects.
  for (const auto& s : out.v.suspects) CHECK(s.who.rank == 13);
}

TEST_CASE("rings that do not start at seq 0 are aligned by their counters") {
  auto o = opts("host_stall", 16);
  o.entries = 100;  // every ring wrapped many times, at different places for different stages
  o.steps = 300;
  auto out = run(o);
  expectSuspect(out, out.made.faultRank, Reason::kHostStall);
  for (const auto& p : out.job.processes) CHECK(p.evictedEntries > 0);
  bool aligned = false;
  for (const auto& c : out.v.comms) {
    if (c.alignedFrom > 0) aligned = true;
  }
  CHECK(aligned);
}

TEST_CASE("evicted frontier entries do not change the verdict: counters are exact") {
  for (const char* scenario : {"host_stall", "device_stall", "died"}) {
    auto o = opts(scenario, 16);
    o.entries = 3;  // the ring holds almost nothing
    auto out = run(o);
    INFO(scenario);
    expectSuspect(out, out.made.faultRank,
                  std::string(scenario) == "host_stall"     ? Reason::kHostStall
                  : std::string(scenario) == "device_stall" ? Reason::kDeviceStall
                                                            : Reason::kDied);
  }
}

TEST_CASE("a mismatch deep in the past is found at every aligned seq - minority blamed") {
  auto o = opts("mismatch", 16);
  o.faultRank = 3;
  auto out = run(o);
  expectSuspect(out, 3, Reason::kMismatch);
  bool found = false;
  for (const auto& c : out.v.comms) {
    if (c.mismatchSeq >= 0) {
      found = true;
      CHECK(c.divergeSeq <= c.mismatchSeq);
    }
  }
  CHECK(found);
}

TEST_CASE("missing ranks: a healthy job with a lost dump is incomplete - a hang names the missing rank") {
  TempDir tmp;
  synth::Result made;
  std::string error;
  REQUIRE(synth::writeJob(opts("healthy"), tmp.path.string(), &made, &error));
  fs::remove(made.files[4]);
  auto out = analyzeDir(tmp.path);
  CHECK(out.v.status == Status::kIncomplete);
  REQUIRE(out.v.missingRanks.size() == 1);
  CHECK(out.v.missingRanks[0].rank == 4);
  CHECK(out.v.suspects.empty());

  auto hang = run(opts("missing"));
  expectSuspect(hang, hang.made.faultRank, Reason::kMissing);
  // Its state is never invented: it is reported from what its peers saw.
  CHECK(hang.v.suspects[0].evidence.find("left no dump") != std::string::npos);
}

TEST_CASE("the same process seen twice is merged - keeping the most complete dump") {
  auto o = opts("device_stall");
  o.faultRank = 3;
  o.staleCopyOfRank = 6;  // an older, salvaged copy of rank 6's ring
  auto out = run(o);
  expectSuspect(out, 3, Reason::kDeviceStall);
  CHECK(out.job.processes.size() == 16);
  for (const auto& s : out.v.suspects) CHECK(s.who.rank != 6);
  CHECK(anyNoteContains(out.v, "has 2 dumps; kept"));
  for (const auto& p : out.job.processes) {
    if (p.globalRank == 6) CHECK(p.paths.size() == 2);
  }
}

TEST_CASE("several jobs are refused with their list unless one is picked") {
  TempDir tmp;
  synth::Result made;
  std::string error;
  auto a = opts("healthy", 8);
  a.jobId = "job-a";
  REQUIRE(synth::writeJob(a, (tmp.path / "a").string(), &made, &error));
  auto b = opts("host_stall", 8);
  b.jobId = "job-b";
  REQUIRE(synth::writeJob(b, (tmp.path / "b").string(), &made, &error));
  std::vector<Problem> problems;
  auto files = findDumpFiles({tmp.path.string()}, &problems);
  Job job;
  REQUIRE(!selectJob(loadDumps(files, {}), {}, &job, &error));
  CHECK(error.find("job-a (8 dumps)") != std::string::npos);
  CHECK(error.find("job-b (8 dumps)") != std::string::npos);
  CHECK(error.find("--job") != std::string::npos);
  REQUIRE(selectJob(loadDumps(files, {}), {"job-b", ""}, &job, &error));
  auto v = analyze(job);
  CHECK(v.status == Status::kHang);
  CHECK(job.processes.size() == 8);
  REQUIRE(!selectJob(loadDumps(files, {}), {"job-c", ""}, &job, &error));
  CHECK(error.find("job-a") != std::string::npos);
}

TEST_CASE("several incidents: the latest by default - one picked on request - never mixed") {
  TempDir tmp;
  synth::Result made;
  std::string error;
  auto first = opts("host_stall", 8);
  first.incidentId = "20261121T100000.000Z-r1";
  first.faultRank = 2;
  REQUIRE(synth::writeJob(first, (tmp.path / "i1").string(), &made, &error));
  auto second = opts("device_stall", 8);
  second.incidentId = "20261121T110000.000Z-r6";
  second.faultRank = 5;
  REQUIRE(synth::writeJob(second, (tmp.path / "i2").string(), &made, &error));

  auto latest = analyzeDir(tmp.path);
  CHECK(latest.job.incidentId == "20261121T110000.000Z-r6");
  CHECK(latest.job.processes.size() == 8);
  expectSuspect(latest, 5, Reason::kDeviceStall);
  CHECK(anyNoteContains(latest.v, "set aside"));

  auto earlier = analyzeDir(tmp.path, {"", "20261121T100000.000Z-r1"});
  CHECK(earlier.job.processes.size() == 8);
  expectSuspect(earlier, 2, Reason::kHostStall);

  std::vector<Problem> problems;
  Job job;
  REQUIRE(!selectJob(loadDumps(findDumpFiles({tmp.path.string()}, &problems), {}), {"", "nope"}, &job, &error));
  CHECK(error.find("20261121T100000.000Z-r1") != std::string::npos);
}

TEST_CASE("timing modes: what cannot be measured is said - not guessed") {
  SECTION("endOnly cannot tell a device stall from the transport") {
    auto o = opts("device_stall");
    o.timing = schema::TimingMode::END_ONLY;
    auto out = run(o);
    INFO(renderText(out.v, true));
    CHECK(out.v.status == Status::kHang);
    for (const auto& s : out.v.suspects) CHECK(s.reason != Reason::kDeviceStall);
    CHECK(anyNoteContains(out.v, "endOnly"));
  }
  SECTION("endOnly still finds a host stall") {
    auto o = opts("host_stall");
    o.timing = schema::TimingMode::END_ONLY;
    auto out = run(o);
    expectSuspect(out, out.made.faultRank, Reason::kHostStall);
  }
  SECTION("hostOnly finds a host stall by enqueue counts") {
    auto o = opts("host_stall");
    o.timing = schema::TimingMode::HOST_ONLY;
    auto out = run(o);
    expectSuspect(out, out.made.faultRank, Reason::kHostStall);
    CHECK(anyNoteContains(out.v, "hostOnly"));
  }
  SECTION("hostOnly healthy is not called a hang") {
    auto o = opts("healthy");
    o.timing = schema::TimingMode::HOST_ONLY;
    auto out = run(o);
    CHECK(out.v.suspects.empty());
    CHECK(out.v.status == Status::kOk);
    CHECK(out.v.summary.find("completed") == std::string::npos);
    CHECK(out.v.summary.find("issued and matched") != std::string::npos);
    CHECK(out.v.summary.find("NCCLFR_TIMING=host") != std::string::npos);
  }
  SECTION("hostOnly dumps written because of a stall are a hang whose cause cannot be told") {
    auto o = opts("device_stall", 32);
    o.timing = schema::TimingMode::HOST_ONLY;
    auto out = run(o);
    INFO(renderText(out.v, true));
    CHECK(out.v.status == Status::kHang);
    CHECK(out.v.suspects.empty());
    CHECK(out.v.summary.find("completed and matched") == std::string::npos);
    CHECK(out.v.summary.find("cannot be told") != std::string::npos);
  }
  SECTION("hostOnly: a communicator's error comes before the host stall it explains") {
    auto o = opts("error", 16);
    o.timing = schema::TimingMode::HOST_ONLY;
    auto out = run(o);
    expectSuspect(out, out.made.faultRank, Reason::kError);
    for (const auto& s : out.v.suspects) CHECK(s.reason != Reason::kHostStall);
  }
}

TEST_CASE("all launched and nothing completes is a hang - not healthy") {
  auto out = run(opts("transport"));
  INFO(renderText(out.v, true));
  CHECK(out.v.status == Status::kHang);
  CHECK(out.v.suspects.empty());
  CHECK(out.v.summary.find("transport") != std::string::npos);
}

TEST_CASE("processes without a global rank are known by host and pid") {
  auto o = opts("host_stall");
  o.noGlobalRank = true;
  o.faultRank = 9;
  auto out = run(o);
  INFO(renderText(out.v, true));
  REQUIRE(!out.v.suspects.empty());
  CHECK(out.v.suspects[0].reason == Reason::kHostStall);
  CHECK(out.v.suspects[0].who.rank == -1);
  CHECK(out.v.suspects[0].who.label == "node1:" + std::to_string(out.v.suspects[0].who.pid));
  CHECK(out.job.processes.size() == 16);
}

TEST_CASE("an unreadable dump is one problem - the rest is analyzed and the verdict is incomplete") {
  TempDir tmp;
  synth::Result made;
  std::string error;
  auto o = opts("device_stall");
  o.faultRank = 3;
  REQUIRE(synth::writeJob(o, tmp.path.string(), &made, &error));
  // Truncate one peer's dump and write a foreign file with the dump suffix.
  fs::resize_file(made.files[10], fs::file_size(made.files[10]) / 2);
  std::ofstream(tmp.path / "junk.ncclfr") << "this is not a dump";
  std::vector<Problem> problems;
  auto loaded = loadDumps(findDumpFiles({tmp.path.string()}, &problems), {});
  CHECK(loaded.problems.size() == 2);
  Job job;
  REQUIRE(selectJob(std::move(loaded), {}, &job, &error));
  auto v = analyze(job);
  CHECK(v.status == Status::kIncomplete);
  REQUIRE(!v.suspects.empty());
  CHECK(v.suspects[0].who.rank == 3);
  CHECK(v.unreadable.size() == 2);
}

TEST_CASE("the JSON verdict has the documented fields") {
  auto out = run(opts("host_stall"));
  auto j = verdictToJson(out.v);
  CHECK(j["format"] == kVerdictFormat);
  CHECK(j["status"] == "hang");
  REQUIRE(j["suspects"].is_array());
  auto s = j["suspects"][0];
  for (const char* k : {"rank", "host", "pid", "label", "comm", "comm_rank", "seq", "op", "reason", "evidence",
                        "blocking", "with", "chain"}) {
    CHECK(s.contains(k));
  }
  CHECK(s["rank"] == out.made.faultRank);
  CHECK(s["reason"] == "host_stall");
  CHECK(s["comm"].get<std::string>().rfind("0x", 0) == 0);
  auto c = j["comms"][0];
  for (const char* k : {"id", "name", "size", "stalled", "frontier_seq", "frontier_op", "diverge_seq", "mismatch_seq",
                        "aligned_from", "aligned_to", "summary", "ranks"}) {
    CHECK(c.contains(k));
  }
  auto r = c["ranks"][0];
  for (const char* k : {"rank", "comm_rank", "last_enqueued", "last_started", "last_completed", "state", "timing"}) {
    CHECK(r.contains(k));
  }
  for (const char* k : {"expected", "found", "missing", "died", "unreadable"}) CHECK(j["ranks"].contains(k));
  CHECK(j.contains("p2p_unmatched"));
  CHECK(j.contains("notes"));
}

TEST_CASE("a cascade of incidents seconds apart is one - each process by its earliest dump") {
  TempDir tmp;
  synth::Result made;
  std::string error;
  auto first = opts("host_stall", 8);
  first.incidentId = "20261121T100000.000Z-r2";
  first.faultRank = 3;
  REQUIRE(synth::writeJob(first, (tmp.path / "a").string(), &made, &error));
  // Seconds later two ranks dump again (SIGTERM as the job is killed): a later "incident" with a
  // different state that must not hide the first.
  auto echo = opts("device_stall", 8);
  echo.incidentId = "20261121T100004.500Z-r6";
  echo.faultRank = 6;
  synth::Result late;
  REQUIRE(synth::writeJob(echo, (tmp.path / "b").string(), &late, &error));
  for (size_t k = 0; k < late.files.size(); ++k) {
    if (k != 6 && k != 7) fs::remove(late.files[k]);
  }
  auto out = analyzeDir(tmp.path);
  CHECK(out.job.processes.size() == 8);
  CHECK(out.job.incidentId == "20261121T100000.000Z-r2");
  expectSuspect(out, 3, Reason::kHostStall);
  CHECK(anyNoteContains(out.v, "one cascade"));

  // The same two dumps an hour later are a separate incident, smaller than half the first: the
  // first is still analyzed, and the later one is set aside, never mixed in.
  TempDir tmp2;
  synth::Result again;
  REQUIRE(synth::writeJob(first, (tmp2.path / "a").string(), &again, &error));
  echo.incidentId = "20261121T110000.000Z-r6";
  synth::Result later;
  REQUIRE(synth::writeJob(echo, (tmp2.path / "b").string(), &later, &error));
  for (size_t k = 0; k < later.files.size(); ++k) {
    if (k != 6 && k != 7) fs::remove(later.files[k]);
  }
  auto apart = analyzeDir(tmp2.path);
  CHECK(apart.job.incidentId == "20261121T100000.000Z-r2");
  CHECK(apart.job.processes.size() == 8);
  expectSuspect(apart, 3, Reason::kHostStall);
  CHECK(anyNoteContains(apart.v, "set aside"));
}

TEST_CASE("untracked calls are read like an unmeasured rank's - never as not started") {
  SECTION("the stalled rank's own calls untracked: no device stall is invented") {
    // The planted device stall is real, but its recorder attached no GPU events to the calls: from
    // the dumps nobody can tell its stream never started them.
    auto o = opts("device_stall");
    o.faultRank = 5;
    o.untrackedRank = 5;
    auto out = run(o);
    INFO(renderText(out.v, true));
    CHECK(out.v.status == Status::kHang);
    for (const auto& s : out.v.suspects) {
      CHECK(s.reason != Reason::kDeviceStall);
      CHECK(s.who.rank != 5);
    }
    CHECK(anyNoteContains(out.v, "untracked"));
    CHECK(out.v.summary.find("not measured") != std::string::npos);
    bool unknown = false;
    for (const auto& c : out.v.comms) {
      for (const auto& r : c.ranks) unknown = unknown || (r.who.rank == 5 && r.state == RankState::kUnknown);
    }
    CHECK(unknown);
  }
  SECTION("every rank started the call, one rank's copy untracked: the transport, not that rank") {
    auto o = opts("transport");
    o.faultRank = 9;      // the stuck call is on its tensor-parallel group, ranks 8..15
    o.untrackedRank = 10;
    auto out = run(o);
    INFO(renderText(out.v, true));
    CHECK(out.v.status == Status::kHang);
    CHECK(out.v.suspects.empty());
    CHECK(anyNoteContains(out.v, "rank 10 (untracked)"));
    CHECK(out.v.summary.find("not measured") != std::string::npos);
  }
  SECTION("a peer's calls untracked: the stalled rank is still named") {
    for (const char* scenario : {"device_stall", "host_stall"}) {
      auto o = opts(scenario);
      o.faultRank = 9;
      o.untrackedRank = 8;  // its tensor-parallel peer
      auto out = run(o);
      INFO(scenario);
      expectSuspect(out, 9, std::string(scenario) == "host_stall" ? Reason::kHostStall : Reason::kDeviceStall);
      for (const auto& s : out.v.suspects) CHECK(s.who.rank != 8);
    }
  }
  SECTION("a healthy run with an untracked last step is ok") {
    auto o = opts("healthy");
    o.untrackedRank = 2;
    auto out = run(o);
    INFO(renderText(out.v, true));
    CHECK(out.v.status == Status::kOk);
    CHECK(out.v.suspects.empty());
  }
  SECTION("endOnly timing: an untracked call is unknown, not pending") {
    auto o = opts("device_stall");
    o.faultRank = 5;
    o.untrackedRank = 5;
    o.timing = schema::TimingMode::END_ONLY;
    auto out = run(o);
    INFO(renderText(out.v, true));
    for (const auto& s : out.v.suspects) CHECK(s.who.rank != 5);
  }
}

namespace {

// Hand-made dumps for situations synth's simulation does not produce (a recorder that lost a
// completion): ranks, their communicators and their calls; sequence numbers and the exact counters
// are derived as the recorder derives them (counters are maxima over the calls seen).
struct FakeCall {
  size_t comm;  // index into FakeRank::comms
  schema::Op op;
  schema::EntryState state;
  int32_t peer = -1;   // comm rank, send/recv only
  uint32_t group = 0;  // ncclGroup id, 0 = none
  int64_t enqUs = 0;   // enqueue time, microseconds after the job's base
  uint64_t stream = 0;  // 0: the communicator's own stream
};

struct FakeComm {
  uint64_t id;
  std::string name;
  int32_t rank;
  int32_t size;
};

struct FakeRank {
  int32_t rank = 0;
  std::vector<FakeComm> comms;
  std::vector<FakeCall> calls;
};

constexpr uint64_t kFakeWorld = 0x1111;
constexpr int64_t kFakeMono = 5'000'000'000'000;
constexpr int64_t kFakeWall = 1'795'000'000'000'000'000;

void writeFakeRank(const fs::path& dir, const FakeRank& fr, int32_t world) {
  capnp::MallocMessageBuilder message;
  auto d = message.initRoot<schema::Dump>();
  auto p = d.initProcess();
  p.setHost("fake");
  p.setPid(static_cast<uint32_t>(1000 + fr.rank));
  p.setGlobalRank(fr.rank);
  p.setWorldSize(world);
  p.setJobId("fake-job");
  p.setTiming(schema::TimingMode::FULL);
  p.setRingCapacity(4096);
  int64_t dumpMono = kFakeMono + 60'000'000'000;
  p.initClock().setMonoNs(dumpMono);
  p.getClock().setWallNs(kFakeWall + (dumpMono - kFakeMono));
  auto info = d.initInfo();
  info.setReason(schema::DumpReason::STALL);
  info.setIncidentId("20261121T203400.000Z-r0");
  info.setMonoNs(dumpMono);
  info.setWallNs(kFakeWall + (dumpMono - kFakeMono));
  info.setTotalEntries(fr.calls.size());

  struct Counters {
    int64_t enq = -1, started = -1, completed = -1;
    std::map<std::pair<int32_t, bool>, std::array<int64_t, 3>> p2p;  // (peer, send) -> enq, started, completed
  };
  std::vector<Counters> k(fr.comms.size());
  auto entries = d.initEntries(static_cast<unsigned>(fr.calls.size()));
  for (size_t i = 0; i < fr.calls.size(); ++i) {
    const FakeCall& c = fr.calls[i];
    Counters& kc = k[c.comm];
    auto e = entries[static_cast<unsigned>(i)];
    bool p2p = c.op == schema::Op::SEND || c.op == schema::Op::RECV;
    bool started = c.state == schema::EntryState::STARTED || c.state == schema::EntryState::COMPLETED;
    bool completed = c.state == schema::EntryState::COMPLETED;
    e.setComm(static_cast<uint32_t>(c.comm));
    e.setOp(c.op);
    e.setState(c.state);
    e.setDtype(schema::DataType::FLOAT32);
    e.setCount(1024);
    e.setGroupId(c.group);
    e.setStream(c.stream != 0 ? c.stream : 0x7000 + c.comm);  // default: one per communicator, as PyTorch does
    e.setThreadId(77);
    int64_t enq = kFakeMono + c.enqUs * 1000;
    e.setEnqueueMonoNs(enq);
    if (started) e.setStartMonoNs(enq + 1000);
    if (completed) e.setEndMonoNs(enq + 2000);
    if (p2p) {
      e.setRoot(c.peer);
      e.setSeq(kc.enq);
      auto& q = kc.p2p.try_emplace({c.peer, c.op == schema::Op::SEND}, std::array<int64_t, 3>{-1, -1, -1}).first->second;
      int64_t n = ++q[0];
      e.setP2pSeq(n);
      if (started) q[1] = std::max(q[1], n);
      if (completed) q[2] = std::max(q[2], n);
    } else {
      int64_t n = ++kc.enq;
      e.setSeq(n);
      if (started) kc.started = std::max(kc.started, n);
      if (completed) kc.completed = std::max(kc.completed, n);
    }
  }
  auto comms = d.initComms(static_cast<unsigned>(fr.comms.size()));
  for (size_t ci = 0; ci < fr.comms.size(); ++ci) {
    const FakeComm& fc = fr.comms[ci];
    auto c = comms[static_cast<unsigned>(ci)];
    c.setId(fc.id);
    c.setParentId(fc.id == kFakeWorld ? 0 : kFakeWorld);
    c.setRank(fc.rank);
    c.setSize(fc.size);
    c.setName(fc.name);
    c.setState(schema::CommState::LIVE);
    c.setLastEnqueuedSeq(k[ci].enq);
    c.setLastStartedSeq(k[ci].started);
    c.setLastCompletedSeq(k[ci].completed);
    auto list = c.initP2p(static_cast<unsigned>(k[ci].p2p.size()));
    unsigned li = 0;
    for (const auto& [key, q] : k[ci].p2p) {
      list[li].setPeer(key.first);
      list[li].setSend(key.second);
      list[li].setLastEnqueuedSeq(q[0]);
      list[li].setLastStartedSeq(q[1]);
      list[li].setLastCompletedSeq(q[2]);
      ++li;
    }
  }
  std::string error;
  REQUIRE(writeDumpFile((dir / ("rank" + std::to_string(fr.rank) + ".ncclfr")).string(), message, &error));
}

// The demo's job in small: 4 ranks, tensor-parallel pairs {0,1} {2,3}, data-parallel pairs {0,2}
// {1,3}, each step an all-gather and a reduce-scatter on tp, a ring of sends and receives in one
// group on world, an all-reduce on dp. Rank 3's host stops before its all-gather of step `fault`.
// Every stream waits for the compute stream, which waits for the previous communicator's work, so
// the peers' later calls queue behind what waits for rank 3.
std::vector<FakeRank> demoJob(int fault) {
  std::vector<FakeRank> ranks(4);
  for (int32_t r = 0; r < 4; ++r) {
    FakeRank& x = ranks[static_cast<size_t>(r)];
    x.rank = r;
    x.comms = {{kFakeWorld, "world", r, 4}, {0x2000 + static_cast<uint64_t>(r / 2), "tp", r % 2, 2},
               {0x3000 + static_cast<uint64_t>(r % 2), "dp", r / 2, 2}};
    uint32_t group = 0;
    for (int step = 0; step <= fault; ++step) {
      if (r == 3 && step == fault) break;
      int64_t t = step * 10'000 + r * 7;
      auto st = schema::EntryState::COMPLETED;
      bool f = step == fault;
      // Step `fault`: rank 2 waits in its all-gather with rank 3; the others' world ring waits for
      // rank 2 (queued) and rank 3 (never sends); every data-parallel all-reduce queues behind.
      auto tp = f && r == 2 ? schema::EntryState::STARTED : st;
      auto tpAfter = f && r == 2 ? schema::EntryState::SCHEDULED : st;
      auto ring = f ? (r == 2 ? schema::EntryState::SCHEDULED : schema::EntryState::STARTED) : st;
      auto dp = f ? schema::EntryState::SCHEDULED : st;
      ++group;
      x.calls.push_back({1, schema::Op::ALL_GATHER, tp, -1, 0, t});
      x.calls.push_back({1, schema::Op::REDUCE_SCATTER, tpAfter, -1, 0, t + 10});
      x.calls.push_back({0, schema::Op::SEND, ring, (r + 1) % 4, group, t + 20});
      x.calls.push_back({0, schema::Op::RECV, ring, (r + 3) % 4, group, t + 21});
      x.calls.push_back({2, schema::Op::ALL_REDUCE, dp, -1, 0, t + 30});
    }
  }
  return ranks;
}

Outcome analyzeFake(const std::vector<FakeRank>& ranks, TempDir& tmp) {
  for (const auto& r : ranks) writeFakeRank(tmp.path, r, static_cast<int32_t>(ranks.size()));
  return analyzeDir(tmp.path);
}

}  // namespace

TEST_CASE("a lost completion is corrected by communicator and stream order - no false transport note") {
  // As recorded on sim/: rank 0's recorder lost the completion of its world send/recv of the step
  // before the stall (left "scheduled"), although its next send/recv on the same communicator and
  // stream started. Read literally, its data-parallel all-reduce waits behind a receive "both sides
  // started", which made the verdict say the world communicator's "call #-1" was stuck in the
  // transport.
  auto job = demoJob(3);
  for (auto& c : job[0].calls) {
    if (c.comm == 0 && c.group == 3) c.state = schema::EntryState::SCHEDULED;  // step 2's send and receive
  }
  TempDir tmp;
  auto out = analyzeFake(job, tmp);
  expectSuspect(out, 3, Reason::kHostStall);
  for (const auto& n : out.v.notes) {
    CHECK(n.find("#-1") == std::string::npos);
    CHECK(n.find("stuck in the transport") == std::string::npos);
  }
  CHECK(out.v.p2pStuck.empty());
  CHECK(out.v.summary.find("transport") == std::string::npos);
  // The correction is said: which rule, which call.
  CHECK(anyNoteContains(out.v, "inferred by communicator order"));
  // Its peer by global rank, as everywhere in the verdict (here comm rank 3 is rank 3).
  CHECK(anyNoteContains(out.v, "rank 0: recv #2 from rank 3 on comm "));
  // Only rank 3 is named.
  for (const auto& s : out.v.suspects) CHECK(s.who.rank == 3);
}

TEST_CASE("stream order: a later call on the same stream that completed proves an earlier one did") {
  // Two ranks, two communicators on one stream per rank (as a framework with one NCCL stream does).
  // Rank 1's recorder lost the completion of its broadcast on `aux` (rooted: a peer's completion
  // proves nothing, and `aux` has no later call), but the all-reduce it issued after it on the same
  // stream completed. Then rank 1's host stops before the next all-reduce. Read literally, rank 1's
  // stream never started the broadcast: a device stall. In stream order, the broadcast completed and
  // rank 1 is a host stall.
  std::vector<FakeRank> job(2);
  for (int32_t r = 0; r < 2; ++r) {
    FakeRank& x = job[static_cast<size_t>(r)];
    x.rank = r;
    x.comms = {{kFakeWorld, "world", r, 2}, {0x4000, "aux", r, 2}};
    auto done = schema::EntryState::COMPLETED;
    x.calls.push_back({0, schema::Op::ALL_REDUCE, done, -1, 0, 0, 0x99});
    x.calls.push_back({1, schema::Op::BROADCAST, r == 1 ? schema::EntryState::SCHEDULED : done, -1, 0, 10, 0x99});
    x.calls.push_back({0, schema::Op::ALL_REDUCE, done, -1, 0, 20, 0x99});
    if (r == 0) x.calls.push_back({0, schema::Op::ALL_REDUCE, schema::EntryState::STARTED, -1, 0, 30, 0x99});
  }
  TempDir tmp;
  auto out = analyzeFake(job, tmp);
  expectSuspect(out, 1, Reason::kHostStall);
  CHECK(out.v.suspects[0].seq == 2);
  CHECK(anyNoteContains(out.v, "inferred by stream order"));
  CHECK(anyNoteContains(out.v, "rank 1: broadcast #0 on comm 0x0000000000004000 (aux) completed (recorded: scheduled)"));
  for (const auto& s : out.v.suspects) CHECK(s.reason != Reason::kDeviceStall);
}

TEST_CASE("a host stall names the first call the stalled rank failed to issue") {
  // Rank 3 never issued step 3's all-gather on tp, nor (so) its all-reduce on dp nor its ring
  // send/recv. Its peers' own programs say the all-gather comes first, whatever the clocks say: make
  // the dp peer start waiting earlier than the tp peer, as skew between hosts can.
  auto job = demoJob(3);
  for (auto& c : job[1].calls) {
    if (c.comm == 2 && c.enqUs / 10'000 == 3) c.enqUs -= 5'000;
  }
  for (int repeat = 0; repeat < 3; ++repeat) {
    TempDir tmp;
    auto out = analyzeFake(job, tmp);
    expectSuspect(out, 3, Reason::kHostStall);
    CHECK(out.v.suspects[0].op == "allGather");
    CHECK(out.v.suspects[0].seq == 6);
    CHECK(out.v.suspects[0].comm == 0x2001);
    CHECK(out.v.suspects.size() == 1);
  }
}

TEST_CASE("send/recv pairs stuck in the transport are reported as pairs - never as call #-1") {
  // Every rank issued step 3 (rank 3 too); every ring send/recv started and none completed; the
  // all-reduces queue behind them.
  auto job = demoJob(3);
  for (auto& x : job) {
    if (x.rank != 3) x.calls.resize(x.calls.size() - 5);
    int64_t t = 30'000 + x.rank * 7;
    uint32_t group = 100;
    x.calls.push_back({1, schema::Op::ALL_GATHER, schema::EntryState::COMPLETED, -1, 0, t});
    x.calls.push_back({1, schema::Op::REDUCE_SCATTER, schema::EntryState::COMPLETED, -1, 0, t + 10});
    x.calls.push_back({0, schema::Op::SEND, schema::EntryState::STARTED, (x.rank + 1) % 4, group, t + 20});
    x.calls.push_back({0, schema::Op::RECV, schema::EntryState::STARTED, (x.rank + 3) % 4, group, t + 21});
    x.calls.push_back({2, schema::Op::ALL_REDUCE, schema::EntryState::SCHEDULED, -1, 0, t + 30});
  }
  TempDir tmp;
  auto out = analyzeFake(job, tmp);
  INFO(renderText(out.v, true));
  CHECK(out.v.status == Status::kHang);
  CHECK(out.v.suspects.empty());
  REQUIRE(!out.v.p2pStuck.empty());
  CHECK(out.v.p2pStuck[0].comm == kFakeWorld);
  CHECK(out.v.p2pStuck[0].p2pSeq == 3);
  // Said as a send from one global rank to another, the way the pair list below says it.
  CHECK(out.v.summary.find("send #3 from rank ") != std::string::npos);
  CHECK(out.v.summary.find(" is stuck in the transport") != std::string::npos);
  CHECK(out.v.summary.find("send/recv") == std::string::npos);
  for (const auto& n : out.v.notes) CHECK(n.find("#-1") == std::string::npos);
  std::string text = renderText(out.v, false);
  CHECK(text.find("Sends and receives stuck in the transport") != std::string::npos);
  CHECK(text.find("comm 0x0000000000001111 (world): send #3 from rank 0 to rank 1 and its matching recv") !=
        std::string::npos);
  auto j = verdictToJson(out.v);
  REQUIRE(j["p2p_stuck"].is_array());
  CHECK(j["p2p_stuck"][0]["p2p_seq"] == 3);
}

TEST_CASE("a snapshot of a running job is not a hang - calls in flight are said as such") {
  SECTION("calls in flight for milliseconds at an onDemand snapshot: ok, no suspects") {
    auto o = opts("device_stall", 16);
    o.onDemand = true;
    o.dumpDelayNs = 150'000'000;
    auto out = run(o);
    INFO(renderText(out.v, true));
    CHECK(out.v.status == Status::kOk);
    CHECK(out.v.suspects.empty());
    CHECK(out.v.summary.find("calls in flight at the snapshot") != std::string::npos);
    CHECK(out.v.summary.find("not a hang") != std::string::npos);
    CHECK(out.v.summary.find("under the default 1 s") != std::string::npos);
    for (const auto& c : out.v.comms) CHECK(!c.stalled);
  }
  SECTION("waits of 2 s: in flight under the dumps' NCCLFR_TIMEOUT of 3 s, a hang when no timeout is known") {
    auto o = opts("device_stall", 16);
    o.onDemand = true;
    o.dumpDelayNs = 2'000'000'000;
    o.timeoutNs = 3'000'000'000;
    auto under = run(o);
    INFO(renderText(under.v, true));
    CHECK(under.v.status == Status::kOk);
    CHECK(under.v.suspects.empty());
    CHECK(under.v.summary.find("calls in flight at the snapshot") != std::string::npos);
    CHECK(under.v.summary.find("under NCCLFR_TIMEOUT 3 s") != std::string::npos);
    for (const auto& c : under.v.comms) CHECK(!c.stalled);

    o.timeoutNs = 0;  // dumps older than format 1.2: the 1 s default
    auto unknown = run(o);
    INFO(renderText(unknown.v, true));
    CHECK(unknown.v.status == Status::kHang);
    expectSuspect(unknown, unknown.made.faultRank, Reason::kDeviceStall);
  }
  SECTION("waits of 2 s are a hang under the dumps' NCCLFR_TIMEOUT of 1.5 s") {
    auto o = opts("device_stall", 16);
    o.onDemand = true;
    o.dumpDelayNs = 2'000'000'000;
    o.timeoutNs = 1'500'000'000;
    auto out = run(o);
    CHECK(out.v.status == Status::kHang);
  }
  SECTION("a person's snapshot of a job hung for a minute is still a hang") {
    auto o = opts("device_stall", 16);
    o.onDemand = true;
    auto out = run(o);
    CHECK(out.v.status == Status::kHang);
    expectSuspect(out, out.made.faultRank, Reason::kDeviceStall);
  }
  SECTION("a stall dump is trusted even when the calls waited briefly") {
    auto o = opts("device_stall", 16);
    o.dumpDelayNs = 150'000'000;
    auto out = run(o);
    CHECK(out.v.status == Status::kHang);
    expectSuspect(out, out.made.faultRank, Reason::kDeviceStall);
  }
}

TEST_CASE("an onDemand snapshot is never merged with a later incident - a newer salvaged ring never mixed in") {
  // A healthy 4-rank job snapshotted with `ncclfr trigger`; 14 s later rank 2 is killed, the others
  // dump on their stall and rank 2's ring is salvaged.
  TempDir tmp;
  synth::Result made;
  std::string error;
  auto snap = opts("healthy", 4);
  snap.tp = 4;
  snap.pp = 1;
  snap.steps = 300;
  snap.onDemand = true;
  snap.incidentId = "20261121T100000.000Z-p20000";
  REQUIRE(synth::writeJob(snap, (tmp.path / "snap").string(), &made, &error));
  auto crash = opts("died", 4);
  crash.tp = 4;
  crash.pp = 1;
  crash.steps = 300 + 140;  // 14 s of 100 ms steps later
  crash.faultRank = 2;
  crash.incidentId = "20261121T100014.000Z-r3";
  REQUIRE(synth::writeJob(crash, (tmp.path / "crash").string(), &made, &error));

  auto out = analyzeDir(tmp.path);
  INFO(renderText(out.v, true));
  CHECK(out.job.incidentId == "20261121T100014.000Z-r3");
  CHECK(out.job.processes.size() == 4);
  expectSuspect(out, 2, Reason::kDied);
  CHECK(out.v.status == Status::kHang);
  CHECK(!anyNoteContains(out.v, "one cascade"));

  // The snapshot itself: every rank by its own dump (rank 2's salvaged ring is 14 s newer).
  auto then = analyzeDir(tmp.path, {"", "20261121T100000.000Z-p20000"});
  INFO(renderText(then.v, true));
  CHECK(then.v.status == Status::kOk);
  CHECK(then.v.suspects.empty());
  CHECK(then.v.diedRanks.empty());
  REQUIRE(then.job.processes.size() == 4);
  for (const auto& p : then.job.processes) CHECK(p.reason == schema::DumpReason::ON_DEMAND);
  CHECK(anyNoteContains(then.v, "a later time"));
}

TEST_CASE("blocking counts the rank-communicator pairs that wait - never the suspect itself") {
  auto out = run(opts("device_stall", 3));
  INFO(renderText(out.v, true));
  REQUIRE(!out.v.suspects.empty());
  const auto& s = out.v.suspects[0];
  // One communicator of 3 ranks: its 2 peers wait on it.
  CHECK(s.blocking == 2);
}

TEST_CASE("a mismatch at the frontier gets no transport note") {
  auto out = run(opts("mismatch", 64));
  INFO(renderText(out.v, true));
  expectSuspect(out, out.made.faultRank, Reason::kMismatch);
  CHECK(!anyNoteContains(out.v, "stuck in the transport"));
}

namespace {

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// The line of the text report that starts with `prefix` (after its indentation), or "".
std::string lineStarting(const std::string& text, const std::string& prefix) {
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(at, end - at);
    size_t first = line.find_first_not_of(' ');
    if (first != std::string::npos && line.compare(first, prefix.size(), prefix) == 0) return line;
    at = end + 1;
  }
  return "";
}

}  // namespace

TEST_CASE("the text report of an unmatched send names global ranks and says send or recv") {
  auto out = run(opts("unmatched_p2p", 16));
  expectSuspect(out, out.made.faultRank, Reason::kUnmatchedP2P);
  const Suspect& s = out.v.suspects[0];
  REQUIRE(s.with.size() == 1);
  const std::string me = s.who.label, peer = s.with[0].label, seq = std::to_string(s.seq);
  REQUIRE(s.commRank != s.who.rank);  // the comm rank and the global rank differ here: mixing them would show
  const std::string text = renderText(out.v, false);
  INFO(text);

  // The header: the call as a send to its peer, the communicator by id and name, and the comm rank
  // labelled as such.
  std::string header = lineStarting(text, "1. " + me + " (");
  CHECK(contains(header, ": unmatched_p2p in send #" + seq + " to " + peer + " on comm "));
  CHECK(contains(header, " (pp), where it is comm rank " + std::to_string(s.commRank)));
  // The evidence says which call: a send, to the peer by its global rank, and how the counts differ.
  CHECK(contains(s.evidence, me + "'s send #" + seq + " to " + peer + " on comm "));
  CHECK(contains(s.evidence, "has no matching receive"));
  CHECK(contains(s.evidence, me + " issued " + std::to_string(s.seq + 1) + " sends to " + peer + " (#0 to #" + seq + ")"));
  CHECK(contains(s.evidence, peer + " issued " + seq + " receives from " + me));
  CHECK(!contains(s.evidence, "p2p #"));
  // The chain names the peer by global rank, never by its number in the communicator.
  REQUIRE(s.chain.size() == 2);
  CHECK(contains(s.chain[0].why, "send #" + seq + " to " + peer + " on comm "));
  CHECK(contains(s.chain[1].why, "never issued recv #" + seq + " from " + me));
  CHECK(!contains(text, "to comm rank"));
  CHECK(!contains(text, "from comm rank"));
  // One call waits on it: singular, in words a person can read.
  CHECK(s.blocking == 1);
  CHECK(contains(text, "\n     holds up 1 call another rank waits in\n"));
  CHECK(!contains(text, "rank-communicator"));
  // The summary names the call as the evidence does; the pair list counts both sides.
  CHECK(contains(out.v.summary, me + ": unmatched_p2p in send #" + seq + " to " + peer + " on comm "));
  CHECK(contains(text, me + " issued " + std::to_string(s.seq + 1) + " sends to " + peer + " (#0 to #" + seq + "), " +
                           peer + " issued " + seq + " receives from " + me + " (#0 to #" +
                           std::to_string(s.seq - 1) + ")"));
  // How to read the numbers is said once.
  CHECK(contains(text, "#N: a 0-based sequence"));
  // The JSON: op "send" (format 2), its peer, the p2p sequence number, the comm rank.
  auto j = verdictToJson(out.v);
  CHECK(j["suspects"][0]["op"] == "send");
  CHECK(j["suspects"][0]["peer"]["label"] == peer);
  CHECK(j["suspects"][0]["seq"] == s.seq);
  CHECK(j["suspects"][0]["comm_rank"] == s.commRank);
}

TEST_CASE("the text report of a host stall labels the comm rank and states in words") {
  auto out = run(opts("host_stall", 16));
  expectSuspect(out, out.made.faultRank, Reason::kHostStall);
  const Suspect& s = out.v.suspects[0];
  const std::string text = renderText(out.v, false);
  INFO(text);
  std::string header = lineStarting(text, "1. " + s.who.label + " (");
  CHECK(contains(header, ": host_stall in " + s.op + " #" + std::to_string(s.seq) + " on comm " + hexId(s.comm) +
                             " (tp), where it is comm rank " + std::to_string(s.commRank)));
  CHECK(contains(s.evidence, "never issued " + s.op + " #" + std::to_string(s.seq) + " on comm "));
  CHECK(contains(s.evidence, "7 peers wait in it since "));
  CHECK(contains(s.evidence, "before their dumps"));
  CHECK(contains(text, "holds up " + std::to_string(s.blocking) + " calls other ranks wait in (one per rank and communicator)"));
  // The communicator list: no repeated id, counts and states in words, the ranks behind named.
  std::string comm = lineStarting(text, "comm " + hexId(s.comm) + " (tp, 8 ranks): ");
  CHECK(contains(comm, "stalled at " + s.op + " #" + std::to_string(s.seq) + ": 1 never issued it; 7 started it on the GPU"));
  CHECK(comm.find(hexId(s.comm)) == comm.rfind(hexId(s.comm)));
  CHECK(contains(text, "behind: " + s.who.label + " (never issued it)"));
  CHECK(!contains(text, "not_enqueued"));
  // The chain's last link says what this rank did.
  CHECK(contains(text, s.who.label + " on comm " + hexId(s.comm) + " (tp), " + s.op + " #" + std::to_string(s.seq) +
                           ": never issued it"));
}

// "1 ranks", "1 calls", ...: a count of one with a plural noun, as whole words. (Not std::regex:
// GCC 12 warns inside libstdc++'s regex at -O2 with the sanitizers, and warnings are errors.)
namespace {
bool hasOnePlural(const std::string& text) {
  static const char* const kNouns[] = {"ranks", "calls", "peers", "processes", "corrections", "communicators",
                                       "pairs", "dumps", "sends", "receives"};
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  for (const char* noun : kNouns) {
    std::string needle = std::string("1 ") + noun;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
      size_t end = at + needle.size();
      if ((at == 0 || !word(text[at - 1])) && (end == text.size() || !word(text[end]))) return true;
    }
  }
  return false;
}
}  // namespace

TEST_CASE("the text report counts in words: no (s), no '1 ranks', no state names, for every scenario and timing") {
  for (const char* scenario : {"healthy", "host_stall", "device_stall", "mismatch", "unmatched_p2p", "died", "missing",
                               "error", "transport"}) {
    for (auto timing : {schema::TimingMode::FULL, schema::TimingMode::END_ONLY, schema::TimingMode::HOST_ONLY}) {
      for (bool untracked : {false, true}) {
        if (untracked && timing != schema::TimingMode::FULL) continue;
        auto o = opts(scenario, 16);
        o.timing = timing;
        if (untracked) o.untrackedRank = 3;
        auto out = run(o);
        for (bool verbose : {false, true}) {
          const std::string text = renderText(out.v, verbose);
          INFO(scenario << " timing " << static_cast<int>(timing) << (untracked ? " untracked" : "") << "\n" << text);
          CHECK(!contains(text, "(s)"));
          CHECK(!contains(text, "(es)"));
          CHECK(!hasOnePlural(text));
          CHECK(!contains(text, "rank-communicator"));
          CHECK(!contains(text, "not_enqueued"));
          CHECK(!contains(text, "communicator view"));
          CHECK(!contains(text, " -> "));
          // Every rank has a dump with a global rank: no peer is named by its comm rank alone.
          CHECK(!contains(text, "to comm rank"));
          CHECK(!contains(text, "from comm rank"));
          CHECK(!contains(text, "waits for comm rank"));
          // One line says how many ranks left a dump.
          CHECK(contains(text, std::to_string(out.v.ranksFound) + " of 16 ranks have a dump"));
        }
      }
    }
  }
}

TEST_CASE("hostOnly: a rank without a dump is named missing - with what host timing cannot tell") {
  auto o = opts("missing", 16);
  o.timing = schema::TimingMode::HOST_ONLY;
  auto out = run(o);
  expectSuspect(out, out.made.faultRank, Reason::kMissing);
  CHECK(out.v.status == Status::kHang);
  const Suspect& s = out.v.suspects[0];
  CHECK(s.comm != 0);
  CHECK(contains(s.evidence, "left no dump"));
  CHECK(contains(s.evidence, "NCCLFR_TIMING=host"));
  CHECK(contains(s.evidence, "cannot be told"));
  CHECK(contains(out.v.summary, "rank " + std::to_string(out.made.faultRank) + ": missing"));
  REQUIRE(out.v.missingRanks.size() == 1);
  // A healthy hostOnly job with a dump lost is still only incomplete: nothing says anything went wrong.
  auto h = opts("healthy", 16);
  h.timing = schema::TimingMode::HOST_ONLY;
  TempDir tmp;
  synth::Result made;
  std::string error;
  REQUIRE(synth::writeJob(h, tmp.path.string(), &made, &error));
  REQUIRE(fs::remove(tmp.path / "rank000005.ncclfr"));
  auto healthy = analyzeDir(tmp.path);
  INFO(renderText(healthy.v, true));
  CHECK(healthy.v.status == Status::kIncomplete);
  CHECK(healthy.v.suspects.empty());
}

TEST_CASE("hostOnly: a send without a matching receive is named from the counts") {
  auto o = opts("unmatched_p2p", 16);
  o.timing = schema::TimingMode::HOST_ONLY;
  auto out = run(o);
  expectSuspect(out, out.made.faultRank, Reason::kUnmatchedP2P);
  CHECK(out.v.status == Status::kDesync);
  const Suspect& s = out.v.suspects[0];
  CHECK(s.op == "send");
  REQUIRE(!out.v.p2pLeftovers.empty());
  const P2PLeftover& l = out.v.p2pLeftovers[0];
  CHECK(s.seq == l.receives);  // the first send with no receive
  CHECK(s.peer.label == l.dst.label);
  CHECK(contains(s.evidence, "NCCLFR_TIMING=host"));
  CHECK(!contains(out.v.summary, "cannot be told"));
  CHECK(contains(out.v.summary,
                 ": unmatched_p2p in send #" + std::to_string(s.seq) + " to " + l.dst.label + " on comm "));
}

TEST_CASE("endOnly: the summary names the communicator that stalled - the inference said once") {
  for (const char* scenario : {"device_stall", "transport"}) {
    auto o = opts(scenario, 16);
    o.timing = schema::TimingMode::END_ONLY;
    auto out = run(o);
    INFO(scenario << "\n" << renderText(out.v, true));
    CHECK(out.v.status == Status::kHang);
    // The tensor-parallel group the fault sits in; the data-parallel groups only queue behind it.
    CHECK(contains(out.v.summary, "(tp) is stuck in the transport"));
    CHECK(!contains(out.v.summary, "(dp)"));
    CHECK(!contains(out.v.summary, "more like it"));
    size_t transportNotes = 0, unmeasuredNotes = 0;
    for (const auto& n : out.v.notes) {
      transportNotes += contains(n, "none completed it: stuck in the transport") ? 1 : 0;
      unmeasuredNotes += contains(n, "whose start of it was not measured") ? 1 : 0;
    }
    CHECK(transportNotes == 1);
    CHECK(unmeasuredNotes == 1);
    CHECK(anyNoteContains(out.v, "(tp): every rank issued allReduce #"));
  }
  // A host stall seen through endOnly dumps: the data-parallel groups wait behind it, not in the transport.
  auto o = opts("host_stall", 16);
  o.timing = schema::TimingMode::END_ONLY;
  auto out = run(o);
  expectSuspect(out, out.made.faultRank, Reason::kHostStall);
  CHECK(!anyNoteContains(out.v, "none completed it"));
}

TEST_CASE("a communicator whose sends and receives are stuck never says every call completed") {
  // The stuck-pair job above: the world communicator carries only the ring of sends and receives.
  auto job = demoJob(3);
  for (auto& x : job) {
    if (x.rank != 3) x.calls.resize(x.calls.size() - 5);
    int64_t t = 30'000 + x.rank * 7;
    x.calls.push_back({1, schema::Op::ALL_GATHER, schema::EntryState::COMPLETED, -1, 0, t});
    x.calls.push_back({1, schema::Op::REDUCE_SCATTER, schema::EntryState::COMPLETED, -1, 0, t + 10});
    x.calls.push_back({0, schema::Op::SEND, schema::EntryState::STARTED, (x.rank + 1) % 4, 100, t + 20});
    x.calls.push_back({0, schema::Op::RECV, schema::EntryState::STARTED, (x.rank + 3) % 4, 100, t + 21});
    x.calls.push_back({2, schema::Op::ALL_REDUCE, schema::EntryState::SCHEDULED, -1, 0, t + 30});
  }
  TempDir tmp;
  auto out = analyzeFake(job, tmp);
  INFO(renderText(out.v, true));
  const CommReport* world = nullptr;
  for (const auto& c : out.v.comms) {
    if (c.id == kFakeWorld) world = &c;
  }
  REQUIRE(world != nullptr);
  CHECK(!contains(world->summary, "every call completed"));
  CHECK(contains(world->summary, "8 sends and receives not completed"));
  CHECK(contains(world->summary, "send #3 from rank 0 to rank 1"));
  // A communicator whose sends and receives all completed says so.
  auto healthy = demoJob(2);
  healthy[3].calls.push_back({1, schema::Op::ALL_GATHER, schema::EntryState::COMPLETED, -1, 0, 20'000});
  for (auto& x : healthy) {
    for (auto& c : x.calls) c.state = schema::EntryState::COMPLETED;
  }
  TempDir tmp2;
  auto ok = analyzeFake(healthy, tmp2);
  for (const auto& c : ok.v.comms) {
    if (c.id == kFakeWorld) CHECK(contains(c.summary, "every send and receive completed"));
  }
}

TEST_CASE("a point-to-point suspect's op is send or recv - its peer named in the text header") {
  SECTION("a completed send with no receive") {
    std::vector<FakeRank> job(2);
    for (int32_t r = 0; r < 2; ++r) {
      FakeRank& x = job[static_cast<size_t>(r)];
      x.rank = r;
      x.comms = {{kFakeWorld, "world", r, 2}};
      x.calls.push_back({0, schema::Op::ALL_REDUCE, schema::EntryState::COMPLETED, -1, 0, 0});
    }
    job[0].calls.push_back({0, schema::Op::SEND, schema::EntryState::COMPLETED, 1, 0, 10});
    TempDir tmp;
    auto out = analyzeFake(job, tmp);
    expectSuspect(out, 0, Reason::kUnmatchedP2P);
    const Suspect& s = out.v.suspects[0];
    CHECK(s.op == "send");
    CHECK(s.seq == 0);
    CHECK(s.peer.label == "rank 1");
    CHECK(verdictToJson(out.v)["suspects"][0]["op"] == "send");
    CHECK(verdictToJson(out.v)["suspects"][0]["peer"]["rank"] == 1);
    const std::string text = renderText(out.v, false);
    INFO(text);
    CHECK(contains(lineStarting(text, "1. rank 0 ("),
                   ": unmatched_p2p in send #0 to rank 1 on comm 0x0000000000001111 (world), where it is comm rank 0"));
  }
  SECTION("a send in a circle of waits") {
    auto out = run(opts("unmatched_p2p", 16));
    expectSuspect(out, out.made.faultRank, Reason::kUnmatchedP2P);
    const Suspect& s = out.v.suspects[0];
    CHECK(s.op == "send");
    REQUIRE(s.with.size() == 1);
    CHECK(s.peer.label == s.with[0].label);
    auto j = verdictToJson(out.v);
    CHECK(j["suspects"][0]["op"] == "send");
    for (const auto& l : j["suspects"][0]["chain"]) CHECK(l["op"] != "send/recv");
    const std::string text = renderText(out.v, false);
    INFO(text);
    CHECK(contains(lineStarting(text, "1. " + s.who.label + " ("),
                   ": unmatched_p2p in send #" + std::to_string(s.seq) + " to " + s.peer.label + " on comm "));
    CHECK(!contains(text, "send/recv #"));
  }
}

TEST_CASE("a circle of three ranks: the suspect's comm, seq and op name one call") {
  // Pairs {0,1} on comm a, {1,2} on comm b, {0,2} on comm c. After a first all-reduce everywhere
  // (and a send from rank 0 to rank 2 on c, received), rank 0 waits in an all-reduce on a for rank
  // 1; rank 1 waits in a send to rank 2 on b; rank 2 waits in an all-reduce on c for rank 0. Each
  // host is held there, so none issues what the next one waits for: a circle with one send in it.
  constexpr uint64_t kA = 0x5001, kB = 0x5002, kC = 0x5003;
  std::vector<FakeRank> job(3);
  for (int32_t r = 0; r < 3; ++r) job[static_cast<size_t>(r)].rank = r;
  job[0].comms = {{kA, "a", 0, 2}, {kC, "c", 0, 2}};
  job[1].comms = {{kA, "a", 1, 2}, {kB, "b", 0, 2}};
  job[2].comms = {{kB, "b", 1, 2}, {kC, "c", 1, 2}};
  const auto done = schema::EntryState::COMPLETED, started = schema::EntryState::STARTED;
  for (auto& x : job) {
    x.calls.push_back({0, schema::Op::ALL_REDUCE, done, -1, 0, x.rank});
    x.calls.push_back({1, schema::Op::ALL_REDUCE, done, -1, 0, 10 + x.rank});
  }
  job[0].calls.push_back({1, schema::Op::SEND, done, 1, 0, 20});
  job[2].calls.push_back({1, schema::Op::RECV, done, 0, 0, 20});
  job[0].calls.push_back({0, schema::Op::ALL_REDUCE, started, -1, 0, 30});
  job[1].calls.push_back({1, schema::Op::SEND, started, 1, 0, 30});
  job[2].calls.push_back({1, schema::Op::ALL_REDUCE, started, -1, 0, 30});
  TempDir tmp;
  auto out = analyzeFake(job, tmp);
  expectSuspect(out, 1, Reason::kUnmatchedP2P);
  const Suspect& s = out.v.suspects[0];
  CHECK(s.comm == kB);
  CHECK(s.commRank == 0);
  CHECK(s.seq == 0);
  CHECK(s.op == "send");
  CHECK(s.peer.label == "rank 2");
  CHECK(contains(out.v.summary, "rank 1: unmatched_p2p in send #0 to rank 2 on comm 0x0000000000005002 (b)"));
  CHECK(contains(s.evidence, "circle"));
  CHECK(s.with.size() == 2);
}
