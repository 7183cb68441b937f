// The analysis on synthetic dumps (synth/): every reason, healthy runs, chains, rings that do not
// start at seq 0, evicted entries, missing ranks, merges, several jobs and incidents.
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "ncclfr/analysis/analyze.h"
#include "ncclfr/analysis/load.h"
#include "ncclfr/analysis/render.h"
#include "ncclfr/synth.h"

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
