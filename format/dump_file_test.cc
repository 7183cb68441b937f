#include "ncclfr/dump_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "dump_next.capnp.h"

namespace fs = std::filesystem;
using namespace ncclfr;

namespace {

// A scratch folder removed at the end of each test.
struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/ncclfr-format-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<char> readAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void writeAll(const fs::path& p, const std::vector<char>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Fills every field of every struct with a value that differs from its default.
void fillDump(schema::Dump::Builder d) {
  auto p = d.initProcess();
  p.setHost("node-17.cluster");
  p.setPid(4242);
  p.setStartWallNs(1'700'000'000'123'456'789);
  p.setGlobalRank(17);
  p.setWorldSize(64);
  p.setLocalRank(1);
  p.setRankSource("RANK");
  p.setJobId("job-abc");
  p.setJobIdSource("TORCHELASTIC_RUN_ID");
  p.setNcclVersion(22809);
  p.setCudaDriverVersion(13000);
  p.setRecorderVersion("0.1.0");
  p.initClock().setWallNs(1'700'000'100'000'000'000);
  p.getClock().setMonoNs(55'000'000'000);
  p.setCmdline("python train.py --steps 10");
  p.setTiming(schema::TimingMode::END_ONLY);
  p.setRingCapacity(4096);
  auto mods = p.initModules(1);
  mods[0].setPath("/usr/lib/libnccl.so.2");
  mods[0].setBase(0x7f0000000000);
  mods[0].setBuildId("abcdef");
  p.setSimulated(true);

  auto i = d.initInfo();
  i.setReason(schema::DumpReason::PEER_REQUEST);
  i.setDetail("rank 3 saw allReduce seq 41 pending for 60s");
  i.setWallNs(1'700'000'200'000'000'000);
  i.setMonoNs(56'000'000'000);
  i.setIncidentId("20261121T203400.123Z-r3");
  i.setIncidentWallNs(1'700'000'199'000'000'000);
  i.setTriggerRank(3);
  i.setProcessDied(true);
  i.setWriterHost("node-17.cluster");
  i.setWriterPid(999);
  i.setTotalEntries(10000);
  i.setEvictedEntries(5904);
  i.setTornEntries(1);
  i.setLastEvictedIndex(5903);
  i.setTimeoutNs(3'000'000'000);

  auto comms = d.initComms(2);
  comms[0].setId(0x1234567890abcdefULL);
  comms[0].setRank(17);
  comms[0].setSize(64);
  comms[0].setCudaDevice(1);
  comms[0].setCreatedMonoNs(1'000);
  comms[0].setInitDurationNs(2'500'000);
  comms[0].setState(schema::CommState::LIVE);
  comms[0].setLastEnqueuedSeq(41);
  comms[0].setLastStartedSeq(40);
  comms[0].setLastCompletedSeq(39);
  comms[0].setEvictedEntries(5000);
  comms[0].setTotalEntries(9000);
  comms[0].setCreatedBy(schema::CommOrigin::INIT_RANK_CONFIG);
  comms[0].setBlocking(false);
  comms[0].setName("world");
  auto p2p = comms[0].initP2p(1);
  p2p[0].setPeer(18);
  p2p[0].setSend(true);
  p2p[0].setLastEnqueuedSeq(7);
  p2p[0].setLastStartedSeq(6);
  p2p[0].setLastCompletedSeq(5);
  comms[1].setId(0xfeedULL);
  comms[1].setParentId(0x1234567890abcdefULL);
  comms[1].setSplitColor(2);
  comms[1].setSplitKey(17);
  comms[1].setRank(1);
  comms[1].setSize(8);
  comms[1].setState(schema::CommState::ABORTED);
  comms[1].setLastAsyncError(6);
  comms[1].setLastAsyncErrorMonoNs(77);
  comms[1].setCreatedBy(schema::CommOrigin::SPLIT);
  comms[1].setDestroyedMonoNs(88);

  auto entries = d.initEntries(2);
  auto e = entries[0];
  e.setComm(0);
  e.setOp(schema::Op::ALL_REDUCE);
  e.setState(schema::EntryState::STARTED);
  e.setDtype(schema::DataType::BFLOAT16);
  e.setRedOp(schema::RedOp::AVG);
  e.setRoot(-1);
  e.setSeq(41);
  e.setOpSeq(12);
  e.setGroupId(3);
  e.setCount(1 << 20);
  e.setStream(0xdeadbeef);
  e.setEnqueueMonoNs(100);
  e.setStartMonoNs(200);
  e.setEndMonoNs(0);
  e.setThreadId(4243);
  e.setResult(0);
  e.setStackIndex(0);
  e.setCallDurationNs(1500);
  auto s = entries[1];
  s.setComm(1);
  s.setOp(schema::Op::SEND);
  s.setRoot(5);
  s.setSeq(41);
  s.setP2pSeq(3);
  s.setResult(7);

  auto stacks = d.initStacks(1);
  auto frames = stacks[0].initFrames(2);
  frames.set(0, 0x401000);
  frames.set(1, 0x402000);
  auto symbols = stacks[0].initSymbols(2);
  symbols.set(0, "train_step");
  symbols.set(1, "main");
}

void checkDump(schema::Dump::Reader d) {
  auto p = d.getProcess();
  CHECK(std::string(p.getHost().cStr()) == "node-17.cluster");
  CHECK(p.getPid() == 4242);
  CHECK(p.getStartWallNs() == 1'700'000'000'123'456'789);
  CHECK(p.getGlobalRank() == 17);
  CHECK(p.getWorldSize() == 64);
  CHECK(p.getLocalRank() == 1);
  CHECK(std::string(p.getRankSource().cStr()) == "RANK");
  CHECK(std::string(p.getJobId().cStr()) == "job-abc");
  CHECK(std::string(p.getJobIdSource().cStr()) == "TORCHELASTIC_RUN_ID");
  CHECK(p.getNcclVersion() == 22809);
  CHECK(p.getCudaDriverVersion() == 13000);
  CHECK(std::string(p.getRecorderVersion().cStr()) == "0.1.0");
  CHECK(p.getClock().getWallNs() == 1'700'000'100'000'000'000);
  CHECK(p.getClock().getMonoNs() == 55'000'000'000);
  CHECK(std::string(p.getCmdline().cStr()) == "python train.py --steps 10");
  CHECK(p.getTiming() == schema::TimingMode::END_ONLY);
  CHECK(p.getRingCapacity() == 4096);
  REQUIRE(p.getModules().size() == 1);
  CHECK(p.getModules()[0].getBase() == 0x7f0000000000);
  CHECK(std::string(p.getModules()[0].getBuildId().cStr()) == "abcdef");
  CHECK(p.getSimulated());

  auto i = d.getInfo();
  CHECK(i.getReason() == schema::DumpReason::PEER_REQUEST);
  CHECK(std::string(i.getIncidentId().cStr()) == "20261121T203400.123Z-r3");
  CHECK(i.getIncidentWallNs() == 1'700'000'199'000'000'000);
  CHECK(i.getTriggerRank() == 3);
  CHECK(i.getProcessDied());
  CHECK(i.getWriterPid() == 999);
  CHECK(i.getTotalEntries() == 10000);
  CHECK(i.getEvictedEntries() == 5904);
  CHECK(i.getTornEntries() == 1);
  CHECK(i.getLastEvictedIndex() == 5903);
  CHECK(i.getTimeoutNs() == 3'000'000'000);

  REQUIRE(d.getComms().size() == 2);
  auto c0 = d.getComms()[0];
  CHECK(c0.getId() == 0x1234567890abcdefULL);
  CHECK(c0.getParentId() == 0);
  CHECK(c0.getSplitColor() == -1);  // default: not a split
  CHECK(c0.getRank() == 17);
  CHECK(c0.getSize() == 64);
  CHECK(c0.getCudaDevice() == 1);
  CHECK(c0.getInitDurationNs() == 2'500'000);
  CHECK(c0.getState() == schema::CommState::LIVE);
  CHECK(c0.getLastEnqueuedSeq() == 41);
  CHECK(c0.getLastStartedSeq() == 40);
  CHECK(c0.getLastCompletedSeq() == 39);
  CHECK(c0.getEvictedEntries() == 5000);
  CHECK(c0.getTotalEntries() == 9000);
  CHECK_FALSE(c0.getBlocking());
  CHECK(std::string(c0.getName().cStr()) == "world");
  CHECK(c0.getCreatedBy() == schema::CommOrigin::INIT_RANK_CONFIG);
  REQUIRE(c0.getP2p().size() == 1);
  CHECK(c0.getP2p()[0].getPeer() == 18);
  CHECK(c0.getP2p()[0].getSend());
  CHECK(c0.getP2p()[0].getLastCompletedSeq() == 5);
  auto c1 = d.getComms()[1];
  CHECK(c1.getParentId() == 0x1234567890abcdefULL);
  CHECK(c1.getSplitColor() == 2);
  CHECK(c1.getSplitKey() == 17);
  CHECK(c1.getState() == schema::CommState::ABORTED);
  CHECK(c1.getLastAsyncError() == 6);
  CHECK(c1.getBlocking());           // default: blocking
  CHECK(c1.getLastEnqueuedSeq() == -1);  // default: nothing yet
  CHECK(c1.getDestroyedMonoNs() == 88);

  REQUIRE(d.getEntries().size() == 2);
  auto e = d.getEntries()[0];
  CHECK(e.getOp() == schema::Op::ALL_REDUCE);
  CHECK(e.getState() == schema::EntryState::STARTED);
  CHECK(e.getDtype() == schema::DataType::BFLOAT16);
  CHECK(e.getRedOp() == schema::RedOp::AVG);
  CHECK(e.getRoot() == -1);
  CHECK(e.getSeq() == 41);
  CHECK(e.getP2pSeq() == -1);
  CHECK(e.getOpSeq() == 12);
  CHECK(e.getGroupId() == 3);
  CHECK(e.getCount() == (1u << 20));
  CHECK(e.getStream() == 0xdeadbeef);
  CHECK(e.getEnqueueMonoNs() == 100);
  CHECK(e.getStartMonoNs() == 200);
  CHECK(e.getEndMonoNs() == 0);
  CHECK(e.getThreadId() == 4243);
  CHECK(e.getStackIndex() == 0);
  CHECK(e.getCallDurationNs() == 1500);
  auto s = d.getEntries()[1];
  CHECK(s.getComm() == 1);
  CHECK(s.getOp() == schema::Op::SEND);
  CHECK(s.getRoot() == 5);
  CHECK(s.getP2pSeq() == 3);
  CHECK(s.getResult() == 7);
  CHECK(s.getStackIndex() == -1);

  REQUIRE(d.getStacks().size() == 1);
  CHECK(d.getStacks()[0].getFrames()[1] == 0x402000);
  CHECK(std::string(d.getStacks()[0].getSymbols()[0].cStr()) == "train_step");
}

fs::path writeSample(const fs::path& dir) {
  capnp::MallocMessageBuilder message;
  fillDump(message.initRoot<schema::Dump>());
  fs::path path = dir / "rank17.ncclfr";
  std::string error;
  REQUIRE(writeDumpFile(path, message, &error));
  CHECK(error.empty());
  return path;
}

std::string openError(const fs::path& path) {
  std::string error;
  auto file = DumpFile::open(path, &error);
  CHECK(file == nullptr);
  return error;
}

}  // namespace

TEST_CASE("a dump round-trips every field through a file") {
  TempDir dir;
  auto path = writeSample(dir.path);
  std::string error;
  auto file = DumpFile::open(path, &error);
  REQUIRE(file != nullptr);
  CHECK(error.empty());
  CHECK(file->major() == kDumpMajor);
  CHECK(file->minor() == kDumpMinor);
  checkDump(file->dump());
}

TEST_CASE("a dump whose writer did not set the stall timeout reads it as 0, not known") {
  capnp::MallocMessageBuilder message;
  auto info = message.initRoot<schema::Dump>().initInfo();
  info.setReason(schema::DumpReason::SALVAGED);
  TempDir dir;
  auto path = (dir.path / "no-timeout.ncclfr").string();
  std::string error;
  REQUIRE(writeDumpFile(path, message, &error));
  auto file = DumpFile::open(path, &error);
  REQUIRE(file != nullptr);
  CHECK(file->dump().getInfo().getTimeoutNs() == 0);
}

TEST_CASE("the file starts with the documented header and an unpacked message") {
  TempDir dir;
  auto bytes = readAll(writeSample(dir.path));
  REQUIRE(bytes.size() > sizeof(DumpFileHeader));
  DumpFileHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  CHECK(std::memcmp(h.magic, "NCCLFRD", 8) == 0);
  CHECK(h.major == 1);
  CHECK(h.headerBytes == 16);
  // Unpacked framing: a segment count word, then segment sizes; the total equals the file.
  uint32_t segmentsMinusOne;
  std::memcpy(&segmentsMinusOne, bytes.data() + 16, 4);
  size_t tableWords = (segmentsMinusOne + 2) / 2;
  size_t total = tableWords;
  for (uint32_t s = 0; s <= segmentsMinusOne; ++s) {
    uint32_t words;
    std::memcpy(&words, bytes.data() + 20 + 4 * s, 4);
    total += words;
  }
  CHECK(16 + total * 8 == bytes.size());
}

TEST_CASE("reads are zero-copy: text points into the mapped file") {
  TempDir dir;
  auto path = writeSample(dir.path);
  auto bytes = readAll(path);
  std::string error;
  auto file = DumpFile::fromBytes(bytes.data(), bytes.size(), "mem", &error);
  REQUIRE(file != nullptr);
  const char* host = file->dump().getProcess().getHost().cStr();
  // Either the caller's buffer (aligned) or the reader's one aligned copy: never a per-field copy.
  bool inCaller = host >= bytes.data() && host < bytes.data() + bytes.size();
  if (reinterpret_cast<uintptr_t>(bytes.data()) % 8 == 0) CHECK(inCaller);
  CHECK(std::string(host) == "node-17.cluster");
}

TEST_CASE("unaligned bytes are copied once and read correctly") {
  TempDir dir;
  auto bytes = readAll(writeSample(dir.path));
  std::vector<char> shifted(bytes.size() + 1);
  std::memcpy(shifted.data() + 1, bytes.data(), bytes.size());
  std::string error;
  auto file = DumpFile::fromBytes(shifted.data() + 1, bytes.size(), "shifted", &error);
  REQUIRE(file != nullptr);
  checkDump(file->dump());
}

TEST_CASE("writing is atomic: no temporary file is left and an old file is replaced whole") {
  TempDir dir;
  auto path = writeSample(dir.path);
  auto first = readAll(path);
  path = writeSample(dir.path);  // same name again
  size_t files = 0;
  for (auto& f : fs::directory_iterator(dir.path)) {
    (void)f;
    ++files;
  }
  CHECK(files == 1);
  CHECK(readAll(path) == first);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("writing into a folder that does not exist fails with one line") {
  capnp::MallocMessageBuilder message;
  fillDump(message.initRoot<schema::Dump>());
  std::string error;
  CHECK_FALSE(writeDumpFile("/nonexistent-ncclfr-dir/x.ncclfr", message, &error));
  CHECK(error.find("/nonexistent-ncclfr-dir/x.ncclfr") != std::string::npos);
  CHECK(error.find('\n') == std::string::npos);
}

TEST_CASE("a newer minor version is read; its added fields are skipped") {
  capnp::MallocMessageBuilder next;
  auto root = next.initRoot<testschema::DumpNext>();
  root.setAddedInNextMinor("something new");
  auto entries = root.initEntries(3);
  for (uint32_t k = 0; k < 3; ++k) {
    entries[k].setSeq(100 + k);
    entries[k].setOp(static_cast<uint16_t>(schema::Op::REDUCE_SCATTER));
    entries[k].setCount(1000 * (k + 1));
    entries[k].setAddedInNextMinor(0xabcdef);
  }
  TempDir dir;
  auto path = dir.path / "next.ncclfr";
  std::string error;
  REQUIRE(writeDumpFile(path, next, &error));
  // Mark it as written by minor kDumpMinor + 3.
  auto bytes = readAll(path);
  uint16_t minor = kDumpMinor + 3;
  std::memcpy(bytes.data() + 10, &minor, 2);
  writeAll(path, bytes);

  auto file = DumpFile::open(path, &error);
  REQUIRE(file != nullptr);
  CHECK(file->minor() == kDumpMinor + 3);
  auto got = file->dump().getEntries();
  REQUIRE(got.size() == 3);
  CHECK(got[2].getSeq() == 102);
  CHECK(got[2].getOp() == schema::Op::REDUCE_SCATTER);
  CHECK(got[2].getCount() == 3000);
  CHECK(got[0].getRoot() == -1);  // defaults hold for fields the writer never set
  CHECK(file->dump().getProcess().getGlobalRank() == -1);
}

TEST_CASE("an enumerant from a newer minor prints as unknown(N)") {
  CHECK(enumName(schema::Op::ALL_REDUCE) == "allReduce");
  CHECK(enumName(schema::DumpReason::SALVAGED) == "salvaged");
  CHECK(enumName(static_cast<schema::Op>(200)) == "unknown(200)");
  schema::DataType t{};
  CHECK(enumFromName("bfloat16", &t));
  CHECK(t == schema::DataType::BFLOAT16);
  CHECK_FALSE(enumFromName("float13", &t));
}

TEST_CASE("NCCL enum values keep NCCL's numbers") {
  // ncclDataType_t and ncclRedOp_t from nccl.h (2.28): the schema's ordinals must equal them.
  CHECK(static_cast<int>(schema::DataType::INT8) == 0);
  CHECK(static_cast<int>(schema::DataType::INT32) == 2);
  CHECK(static_cast<int>(schema::DataType::FLOAT16) == 6);
  CHECK(static_cast<int>(schema::DataType::FLOAT32) == 7);
  CHECK(static_cast<int>(schema::DataType::BFLOAT16) == 9);
  CHECK(static_cast<int>(schema::DataType::FLOAT8E5M2) == 11);
  CHECK(static_cast<int>(schema::RedOp::SUM) == 0);
  CHECK(static_cast<int>(schema::RedOp::AVG) == 4);
}

TEST_CASE("a newer major version is refused with both versions named") {
  TempDir dir;
  auto path = writeSample(dir.path);
  auto bytes = readAll(path);
  uint16_t major = kDumpMajor + 1, minor = 0;
  std::memcpy(bytes.data() + 8, &major, 2);
  std::memcpy(bytes.data() + 10, &minor, 2);
  writeAll(path, bytes);
  auto error = openError(path);
  CHECK(error.find("dump format 2.0 is newer than this ncclfr reads (1.x)") != std::string::npos);
  CHECK(error.find("upgrade") != std::string::npos);
}

TEST_CASE("damaged files give one clear line each") {
  TempDir dir;
  auto path = writeSample(dir.path);
  auto good = readAll(path);

  SECTION("missing") { CHECK(openError(dir.path / "nope.ncclfr").find("No such file") != std::string::npos); }
  SECTION("empty") {
    writeAll(path, {});
    CHECK(openError(path).find("empty file") != std::string::npos);
  }
  SECTION("foreign") {
    std::string text = "this is a text file, not a dump at all\n";
    writeAll(path, std::vector<char>(text.begin(), text.end()));
    CHECK(openError(path).find("not an ncclfr dump") != std::string::npos);
  }
  SECTION("shorter than the header") {
    writeAll(path, std::vector<char>(good.begin(), good.begin() + 12));
    CHECK(openError(path).find("truncated") != std::string::npos);
  }
  SECTION("cut inside the message, on a word boundary") {
    writeAll(path, std::vector<char>(good.begin(), good.begin() + static_cast<long>(good.size() / 2 / 8 * 8)));
    CHECK(openError(path).find("truncated") != std::string::npos);
  }
  SECTION("cut inside a word") {
    writeAll(path, std::vector<char>(good.begin(), good.end() - 3));
    CHECK(openError(path).find("truncated") != std::string::npos);
  }
  SECTION("garbage appended") {
    auto longer = good;
    longer.resize(good.size() + 64, 'x');
    writeAll(path, longer);
    CHECK(openError(path).find("trailing garbage") != std::string::npos);
  }
  SECTION("a folder") { CHECK(openError(dir.path).find("not a regular file") != std::string::npos); }
  SECTION("a FIFO, which must not block the reader waiting for a writer") {
    std::string fifo = (dir.path / "fifo.ncclfr").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK(openError(fifo).find("not a regular file") != std::string::npos);
  }
  std::string error;
  CHECK(error.find('\n') == std::string::npos);
}

TEST_CASE("flipped bytes never crash: open refuses or reads throw a catchable exception") {
  TempDir dir;
  auto good = readAll(writeSample(dir.path));
  // Every byte of the message, one at a time, set to 0xff: each variant either opens cleanly and
  // can be walked (possibly with a kj::Exception, which describeException turns into a line), or is
  // refused at open with a line.
  size_t refused = 0;
  for (size_t at = sizeof(DumpFileHeader); at < good.size(); ++at) {
    auto bad = good;
    bad[at] = static_cast<char>(0xff);
    std::string error;
    auto file = DumpFile::fromBytes(bad.data(), bad.size(), "flipped", &error);
    if (!file) {
      ++refused;
      CHECK(error.rfind("flipped: ", 0) == 0);
      continue;
    }
    try {
      auto d = file->dump();
      size_t n = 0;
      for (auto e : d.getEntries()) n += e.getCount() + static_cast<size_t>(e.getSeq());
      for (auto c : d.getComms()) n += c.getName().size() + c.getP2p().size();
      for (auto s : d.getStacks()) n += s.getFrames().size() + s.getSymbols().size();
      n += d.getProcess().getModules().size() + d.getInfo().getDetail().size();
      (void)n;
    } catch (...) {
      CHECK_FALSE(describeException(std::current_exception()).empty());
    }
  }
  CHECK(refused > 0);  // damage to the framing is caught at open
}

TEST_CASE("a Cap'n Proto error becomes one printable line, however the damaged bytes read") {
  std::string bytes = "expected [\x01 == \x7f\xff]; ";
  bytes += std::string(300, 'x');
  bytes += "\nstack: a\nb";
  auto e = std::make_exception_ptr(
      kj::Exception(kj::Exception::Type::FAILED, "dump_file_test.cc", 1, kj::heapString(bytes.c_str())));
  std::string line = ncclfr::describeException(e);
  INFO(line);
  CHECK(line.find('\n') == std::string::npos);
  CHECK(line.find("\\x01") != std::string::npos);
  CHECK(line.find("\\x7f\\xff") != std::string::npos);
  for (unsigned char c : line) CHECK((c >= 0x20 && c < 0x7f));
  CHECK(line.size() < 240);
  CHECK(line.find("stack") == std::string::npos);
}
