// Damaged dumps through the whole analysis path: truncated at every length, bytes flipped, words
// overwritten (pointers aimed anywhere), wrong magic, newer major, empty. Never a crash or a hang;
// one line per bad file; the other files are still analyzed.
#include <stdlib.h>

#include <capnp/message.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <limits>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "ncclfr/analysis/analyze.h"
#include "ncclfr/analysis/load.h"
#include "ncclfr/analysis/render.h"
#include "ncclfr/dump_file.h"
#include "ncclfr/synth.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fs = std::filesystem;
using namespace ncclfr;
using namespace ncclfr::analysis;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/ncclfr-robustness-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<uint8_t> readAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void writeAll(const fs::path& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

synth::Result makeJob(const fs::path& dir, const std::string& scenario, uint32_t entries) {
  synth::Options o;
  o.ranks = 8;
  o.scenario = scenario;
  o.entries = entries;
  o.faultRank = 3;
  o.threads = 1;
  synth::Result r;
  std::string error;
  REQUIRE(synth::writeJob(o, dir.string(), &r, &error));
  return r;
}

// Feeds one mutated file through the fuzz target (the whole path) and checks the reader's verdict on
// it is either a model or exactly one line.
void feed(const std::vector<uint8_t>& bytes) {
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  ProcessDump d;
  Problem p;
  if (!loadDumpBytes(bytes.data(), bytes.size(), "m.ncclfr", &d, &p)) {
    CHECK(!p.message.empty());
    CHECK(p.message.find('\n') == std::string::npos);
  }
}

}  // namespace

TEST_CASE("truncated at every length: refused with one line - never a crash") {
  TempDir tmp;
  auto job = makeJob(tmp.path, "device_stall", 16);
  auto bytes = readAll(job.files[3]);
  for (size_t n = 0; n < bytes.size(); n += (n < 64 ? 1 : 7)) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    feed(cut);
    ProcessDump d;
    Problem p;
    if (n < bytes.size()) CHECK(!loadDumpBytes(cut.data(), cut.size(), "cut.ncclfr", &d, &p));
  }
}

TEST_CASE("flipped bytes and overwritten words: never a crash or a hang") {
  TempDir tmp;
  auto job = makeJob(tmp.path, "unmatched_p2p", 16);
  std::mt19937_64 rng(12345);
  for (size_t f = 0; f < job.files.size(); f += 3) {
    auto bytes = readAll(job.files[f]);
    for (int k = 0; k < 600; ++k) {
      auto m = bytes;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int j = 0; j < flips; ++j) m[rng() % m.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
      feed(m);
    }
    for (int k = 0; k < 300; ++k) {
      auto m = bytes;
      // A whole word: a Cap'n Proto pointer aimed anywhere, or a huge list size.
      size_t w = 16 + (rng() % ((m.size() - 16) / 8)) * 8;
      uint64_t v = rng();
      if (k % 3 == 0) v |= 0xffffffff00000000ULL;
      std::memcpy(&m[w], &v, 8);
      feed(m);
    }
  }
}

TEST_CASE("foreign - empty - newer-major and odd-header files are refused with one clear line") {
  TempDir tmp;
  auto job = makeJob(tmp.path, "healthy", 8);
  auto bytes = readAll(job.files[0]);
  ProcessDump d;
  Problem p;

  auto wrongMagic = bytes;
  wrongMagic[0] = 'X';
  CHECK(!loadDumpBytes(wrongMagic.data(), wrongMagic.size(), "a.ncclfr", &d, &p));
  CHECK(p.message.find("wrong magic") != std::string::npos);

  auto newer = bytes;
  uint16_t major = kDumpMajor + 1;
  std::memcpy(&newer[8], &major, 2);
  CHECK(!loadDumpBytes(newer.data(), newer.size(), "b.ncclfr", &d, &p));
  CHECK(p.message.find("newer than this ncclfr reads") != std::string::npos);

  auto olderMinor = bytes;  // an older minor of this major is read
  uint16_t minor = 0;
  std::memcpy(&olderMinor[10], &minor, 2);
  CHECK(loadDumpBytes(olderMinor.data(), olderMinor.size(), "c.ncclfr", &d, &p));

  CHECK(!loadDumpBytes(bytes.data(), 0, "e.ncclfr", &d, &p));
  CHECK(p.message.find("empty") != std::string::npos);

  std::string text = "{\"not\": \"a dump\"}\n";
  CHECK(!loadDumpBytes(text.data(), text.size(), "f.ncclfr", &d, &p));
}

TEST_CASE("a folder of damaged dumps: each is one problem - the rest gives the verdict") {
  TempDir tmp;
  auto job = makeJob(tmp.path, "host_stall", 32);
  // Damage three peers of the fault rank (3) in three ways, add an empty file, a foreign file and a
  // folder whose name looks like a dump.
  fs::resize_file(job.files[0], fs::file_size(job.files[0]) - 9);
  auto b5 = readAll(job.files[5]);
  std::memset(&b5[16], 0xff, 64);
  writeAll(job.files[5], b5);
  auto b6 = readAll(job.files[6]);
  b6[3] = 0;
  writeAll(job.files[6], b6);
  std::ofstream(tmp.path / "empty.ncclfr").close();
  std::ofstream(tmp.path / "notes.ncclfr") << "hello";
  fs::create_directory(tmp.path / "folder.ncclfr");

  std::vector<Problem> problems;
  auto files = findDumpFiles({tmp.path.string()}, &problems);
  CHECK(problems.empty());
  auto loaded = loadDumps(files, {});
  CHECK(loaded.problems.size() == 5);
  for (const auto& p : loaded.problems) {
    CHECK(p.message.rfind(p.path, 0) == 0);  // the line names the file
    CHECK(p.message.find('\n') == std::string::npos);
  }
  Job j;
  std::string error;
  REQUIRE(selectJob(std::move(loaded), {}, &j, &error));
  auto v = analyze(j);
  CHECK(v.status == Status::kIncomplete);
  REQUIRE(!v.suspects.empty());
  CHECK(v.suspects[0].who.rank == 3);
  CHECK(v.suspects[0].reason == Reason::kHostStall);
}

TEST_CASE("nothing readable at all is an error - not a verdict") {
  TempDir tmp;
  std::ofstream(tmp.path / "a.ncclfr") << "garbage";
  std::vector<Problem> problems;
  auto loaded = loadDumps(findDumpFiles({tmp.path.string()}, &problems), {});
  Job j;
  std::string error;
  CHECK(!selectJob(std::move(loaded), {}, &j, &error));
  CHECK(error == "no readable dumps");
}

TEST_CASE("extreme clock bases and times: saturated - never an overflow") {
  // A damaged dump can carry any clock pair and any times: wall - mono and mono + offset must not
  // overflow anywhere (analyze, the text and JSON verdicts, show, db). Under -DNCCLFR_SANITIZE=address
  // UBSan aborts on a signed overflow, so this test is the check.
  TempDir tmp;
  auto job = makeJob(tmp.path / "src", "host_stall", 64);
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  const std::vector<std::pair<int64_t, int64_t>> clocks = {
      {kMax, kMin}, {kMin, kMax}, {kMax, -1}, {kMin, 1}, {0, kMin}, {kMax, 0}, {kMin, 0}, {1, kMax}};
  for (size_t k = 0; k < clocks.size(); ++k) {
    auto dir = tmp.path / ("clock" + std::to_string(k));
    fs::create_directories(dir);
    for (size_t f = 0; f < job.files.size(); ++f) {
      std::string error;
      auto file = DumpFile::open(job.files[f], &error);
      REQUIRE(file);
      capnp::MallocMessageBuilder message;
      message.setRoot(file->dump());
      auto d = message.getRoot<schema::Dump>();
      // Half the ranks get the extreme clock, the others keep theirs: both kinds meet in one verdict.
      if (f % 2 == (k % 2)) {
        d.getProcess().getClock().setWallNs(clocks[k].first);
        d.getProcess().getClock().setMonoNs(clocks[k].second);
        d.getInfo().setMonoNs(clocks[k].second);
        d.getInfo().setWallNs(clocks[k].first);
        d.getInfo().setIncidentWallNs(clocks[k].first);
        for (auto c : d.getComms()) {
          c.setLastAsyncErrorMonoNs(clocks[k].first);
          c.setCreatedMonoNs(clocks[k].second);
        }
        auto entries = d.getEntries();
        for (unsigned e = 0; e < entries.size(); ++e) {
          entries[e].setEnqueueMonoNs(e % 3 == 0 ? kMax : e % 3 == 1 ? kMin : clocks[k].second);
          if (entries[e].getStartMonoNs() != 0) entries[e].setStartMonoNs(kMin);
          if (entries[e].getEndMonoNs() != 0) entries[e].setEndMonoNs(kMax);
        }
      }
      REQUIRE(writeDumpFile((dir / fs::path(job.files[f]).filename()).string(), message, &error));
    }
    std::vector<Problem> problems;
    auto loaded = loadDumps(findDumpFiles({dir.string()}, &problems), {});
    REQUIRE(loaded.problems.empty());
    for (const auto& p : loaded.dumps) {
      (void)p.wallNs(kMax);
      (void)p.wallNs(kMin);
      (void)p.wallNs(1);
    }
    Job j;
    std::string error;
    REQUIRE(selectJob(std::move(loaded), {}, &j, &error));
    auto v = analyze(j);
    INFO(renderText(v, true));
    CHECK(v.status == Status::kHang);
    REQUIRE(!v.suspects.empty());
    CHECK(v.suspects[0].who.rank == 3);
    CHECK(!renderText(v, true).empty());
    CHECK(!verdictJsonText(v).empty());
    // And the whole fuzz path, one file at a time.
    for (const auto& entry : fs::directory_iterator(dir)) feed(readAll(entry.path()));
  }
  CHECK(wallFromMono(kMax, kMax, kMin) == kMax);
  CHECK(wallFromMono(kMin, kMin, kMax) == kMin);
  CHECK(wallFromMono(5, 100, 10) == 95);
  CHECK(wallFromMono(0, kMax, kMin) == 0);
}
