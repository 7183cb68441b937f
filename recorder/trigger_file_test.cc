#include "ncclfr/trigger.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace ncclfr::trigger;

namespace {
std::string tempDir() {
  char tmpl[] = "/tmp/ncclfr-trigger-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

Request sample(const std::string& id, int rank) {
  Request r;
  r.incidentId = id;
  r.reason = "stall";
  r.triggerRank = rank;
  r.wallNs = 1763757240123000000;
  r.host = "node 7";  // spaces are not allowed in words: they become '_'
  r.pid = 4242;
  r.propagate = true;
  r.detail = "allReduce seq 41 not finished\nafter 61s";
  return r;
}
}  // namespace

TEST_CASE("trigger lines round-trip") {
  Request in = sample("20251121T203400.123Z-r17", 17);
  std::string line = format(in);
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
  Request out;
  std::string error;
  REQUIRE(parse(line, &out, &error));
  CHECK(out.incidentId == in.incidentId);
  CHECK(out.reason == "stall");
  CHECK(out.triggerRank == 17);
  CHECK(out.wallNs == in.wallNs);
  CHECK(out.host == "node_7");
  CHECK(out.pid == 4242);
  CHECK(out.propagate);
  CHECK(out.detail == "allReduce seq 41 not finished after 61s");
}

TEST_CASE("trigger parsing refuses foreign and newer files and skips unknown fields") {
  Request r;
  std::string error;
  CHECK_FALSE(parse("hello\n", &r, &error));
  CHECK_FALSE(parse("ncclfr-trigger 2 incident=x reason=stall\n", &r, &error));
  CHECK(error.find("format 2") != std::string::npos);
  CHECK_FALSE(parse("ncclfr-trigger 1 incident=x reason=stall rank=1", &r, &error));  // no newline: torn
  REQUIRE(parse("ncclfr-trigger 1 incident=x reason=onDemand rank=-1 wall_ns=5 host=h pid=1 propagate=1 "
                "future=42 detail=hi there\n",
                &r, &error));
  CHECK(r.detail == "hi there");
  CHECK(r.triggerRank == -1);
}

TEST_CASE("incident ids sort by time and name who started them") {
  std::string a = makeIncidentId(1763757240123000000, "r17");
  std::string b = makeIncidentId(1763757241000000000, "r3");
  CHECK(a == "20251121T203400.123Z-r17");
  CHECK(a < b);
  CHECK(makeIncidentId(0, "manual") == "19700101T000000.000Z-manual");
}

TEST_CASE("file names carry the generation") {
  uint64_t g = 0;
  CHECK(fileName(12) == "ncclfr-trigger.12");
  CHECK((parseFileName("ncclfr-trigger.12", &g) && g == 12));
  CHECK_FALSE(parseFileName("ncclfr-trigger.012", &g));
  CHECK_FALSE(parseFileName("ncclfr-trigger.", &g));
  CHECK_FALSE(parseFileName(".ncclfr-trigger.tmp.x", &g));
}

TEST_CASE("publishing creates the next generation, in a folder made 0700") {
  std::string dir = tempDir() + "/job/a";
  CHECK(latestGeneration(dir) == 0);
  uint64_t g = 0;
  Request winner;
  std::string error;
  REQUIRE(publish(dir, sample("one", 0), 0, &g, &winner, &error) == PublishResult::kCreated);
  CHECK(g == 1);
  struct stat st {};
  REQUIRE(stat(dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  REQUIRE(publish(dir, sample("two", 1), 0, &g, &winner, &error) == PublishResult::kJoined);
  CHECK(g == 1);
  CHECK(winner.incidentId == "one");
  REQUIRE(publish(dir, sample("two", 1), 1, &g, &winner, &error) == PublishResult::kCreated);
  CHECK(g == 2);
  CHECK(latestGeneration(dir) == 2);
  CHECK(exists(dir, 2));
  CHECK_FALSE(exists(dir, 3));
  Request r;
  REQUIRE(read(dir, 1, &r, &error));
  CHECK(r.incidentId == "one");
  // No temporary files are left behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  CHECK(files == 2);
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path().parent_path());
}

TEST_CASE("ranks racing to start an incident end up in one") {
  std::string dir = tempDir();
  constexpr int kRanks = 16;
  std::vector<std::string> ids(kRanks);
  std::vector<uint64_t> gens(kRanks);
  std::atomic<int> created{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kRanks; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) {
      }
      Request winner;
      std::string error;
      uint64_t g = 0;
      Request mine = sample("incident-of-" + std::to_string(i), i);
      mine.pid = 1000 + static_cast<uint32_t>(i);
      PublishResult r = publish(dir, mine, 0, &g, &winner, &error);
      REQUIRE(r != PublishResult::kFailed);
      if (r == PublishResult::kCreated) {
        ++created;
        ids[i] = mine.incidentId;
      } else {
        ids[i] = winner.incidentId;
      }
      gens[i] = g;
    });
  }
  go.store(true);
  for (auto& t : threads) t.join();
  CHECK(created.load() == 1);
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == 1);
  CHECK(std::set<uint64_t>(gens.begin(), gens.end()).size() == 1);
  CHECK(latestGeneration(dir) == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("publishing into a folder that cannot be written fails with a message") {
  if (geteuid() == 0) {
    // root writes anywhere: use a path under a regular file instead.
    std::string dir = tempDir();
    std::string file = dir + "/plain";
    FILE* f = fopen(file.c_str(), "w");
    fclose(f);
    uint64_t g;
    Request w;
    std::string error;
    CHECK(publish(file + "/job", sample("x", 0), 0, &g, &w, &error) == PublishResult::kFailed);
    CHECK_FALSE(error.empty());
    std::filesystem::remove_all(dir);
    return;
  }
  uint64_t g;
  Request w;
  std::string error;
  CHECK(publish("/proc/ncclfr-nope/job", sample("x", 0), 0, &g, &w, &error) == PublishResult::kFailed);
  CHECK_FALSE(error.empty());
}
