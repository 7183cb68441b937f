// The ring file and its converter, without NCCL: concurrent appends are all recovered with their
// sequence numbers, torn entries are detected, wrap-around keeps exact counters, damaged files and
// rings of another layout are refused with one line, untracked group calls are told apart.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <capnp/message.h>

#include <filesystem>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "ncclfr/dump_file.h"
#include "ring_to_dump.h"
#include "shm_ring.h"

using namespace ncclfr;
using namespace ncclfr::recorder;

namespace {

std::string tempDir() {
  char tmpl[] = "/tmp/ncclfr-ring-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

uint32_t addComm(RingRegion& r, uint64_t id, int rank, int size) {
  uint32_t slot = ld(r.header->commCount);
  shm::CommSlot& s = r.comms[slot];
  s.id = id;
  s.rank = rank;
  s.size = size;
  s.cudaDevice = -1;
  s.splitColor = s.splitKey = -1;
  s.blocking = 1;
  s.lastStartedSeq = s.lastCompletedSeq = -1;
  s.state = static_cast<uint32_t>(shm::CommState::kLive);
  s.origin = static_cast<uint32_t>(shm::CommOrigin::kInitRank);
  st(s.published, uint32_t{1}, std::memory_order_release);
  st(r.header->commCount, slot + 1, std::memory_order_release);
  return slot;
}

// What the recorder's work path does, minus NCCL and CUDA. A test that appends from its own thread
// starts with a fresh cursor (freshRing): the blocks reserved in an earlier test's ring mean
// nothing in its own, when the test cases run in one process.
thread_local RingCursor tCursor;
uint64_t append(RingRegion& r, uint32_t comm, shm::Op op, int peer, uint32_t tid, uint32_t groupId = 0,
                uint64_t stream = 0, shm::EntryState state = shm::EntryState::kScheduled) {
  shm::CommSlot& cs = r.comms[comm];
  shm::RingEntry e{};
  e.groupId = groupId;
  e.stream = stream;
  e.state = static_cast<uint8_t>(state);
  e.comm = comm;
  e.op = static_cast<uint8_t>(op);
  e.threadId = tid;
  e.root = peer;
  e.enqueueMonoNs = 1000;
  e.stackIndex = -1;
  e.dtype = 7;
  if (op == shm::Op::kSend || op == shm::Op::kRecv) {
    shm::P2PSlot* p = findP2P(r, shm::p2pKey(comm, peer, op == shm::Op::kSend));
    REQUIRE(p != nullptr);
    e.seq = ld(cs.nextSeq) - 1;
    e.p2pSeq = fetchAdd(p->nextSeq, int64_t{1});
    e.p2pSlot = static_cast<uint32_t>(p - r.p2p) + 1;
    fetchAdd(cs.p2pEntries, uint64_t{1});
  } else {
    e.seq = fetchAdd(cs.nextSeq, int64_t{1});
    e.opSeq = fetchAdd(cs.opSeq[static_cast<int>(op)], uint32_t{1});
    e.p2pSeq = -1;
  }
  shm::RingEntry* slot;
  uint64_t index = claimEntry(r, tCursor, &slot);
  e.returned = shm::notReturnedWord(shm::lapTag(index, r.ringMask + 1));
  storeEntry(slot, e);
  publishEntry(slot, index);
  setReturned(r, slot, index, 0, 100);
  return index;
}

std::unique_ptr<DumpFile> convert(const RingRegion& ring, DumpStats* stats, bool salvage = false) {
  capnp::MallocMessageBuilder message;
  DumpRequest q;
  q.reason = schema::DumpReason::SALVAGED;
  q.incidentId = "test";
  q.salvage = salvage;
  std::string error;
  REQUIRE(ringToDump(ring, q, message, stats, &error));
  std::string dir = tempDir();
  std::string path = dir + "/d.ncclfr";
  REQUIRE(writeDumpFile(path, message, &error));
  auto file = DumpFile::open(path, &error);
  REQUIRE(file != nullptr);
  std::filesystem::remove_all(dir);  // the mapping stays valid
  return file;
}

}  // namespace

TEST_CASE("the ring file is 0600 in a 0700 folder, with a valid header") {
  std::string dir = tempDir() + "/shm";
  RingRegion r;
  std::string error;
  RingCapacities caps;
  caps.ring = 256;
  REQUIRE(createRingFile(dir, 1234, 99, caps, &r, &error));
  struct stat st {};
  REQUIRE(stat(r.path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(stat(dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  CHECK(r.path == dir + "/ncclfr-1234-99.ring");
  CHECK(r.header->ringCapacity == 256);
  CHECK(r.p2p[0].lastCompletedSeq == -1);
  RingRegion reader;
  REQUIRE(openRingFile(r.path, &reader, &error));
  CHECK(reader.header->ringCapacity == 256);
  unmapRing(&reader);
  unmapRing(&r);
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

TEST_CASE("N calls from several threads and communicators give N entries with exact sequence numbers") {
  RingRegion r;
  std::string error;
  RingCapacities caps;
  caps.ring = 1 << 14;
  REQUIRE(createAnonymousRing(caps, &r, &error));
  constexpr int kThreads = 4;
  constexpr int kCallsPerThread = 2000;
  std::vector<uint32_t> comms;
  for (int t = 0; t < kThreads; ++t) comms.push_back(addComm(r, 0x1000 + t, t, kThreads));
  uint32_t shared = addComm(r, 0x2000, 0, 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        // Each thread drives its own communicator and, in turns, sends to a peer on the shared one.
        if (i % 4 == 3) {
          append(r, shared, shm::Op::kSend, t, static_cast<uint32_t>(t + 1));
        } else {
          append(r, comms[t], i % 2 ? shm::Op::kAllGather : shm::Op::kAllReduce, -1, static_cast<uint32_t>(t + 1));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  DumpStats stats;
  auto file = convert(r, &stats);
  auto dump = file->dump();
  REQUIRE(dump.getEntries().size() == kThreads * kCallsPerThread);
  CHECK(stats.tornEntries == 0);
  CHECK(stats.evictedEntries == 0);
  CHECK(dump.getInfo().getTotalEntries() == kThreads * kCallsPerThread);
  // Per thread, entries appear in call order; per communicator, seq is 0..n-1 without gaps.
  std::map<uint32_t, std::vector<int64_t>> seqByComm;
  std::map<std::pair<uint32_t, int32_t>, std::vector<int64_t>> p2pByPeer;
  std::map<uint32_t, std::map<int, uint32_t>> opSeq;
  for (auto e : dump.getEntries()) {
    if (e.getOp() == schema::Op::SEND) {
      p2pByPeer[{e.getComm(), e.getRoot()}].push_back(e.getP2pSeq());
    } else {
      seqByComm[e.getComm()].push_back(e.getSeq());
      CHECK(e.getOpSeq() == opSeq[e.getComm()][static_cast<int>(e.getOp())]++);
    }
  }
  for (auto& [comm, seqs] : seqByComm) {
    REQUIRE(seqs.size() == kCallsPerThread * 3 / 4);
    for (size_t i = 0; i < seqs.size(); ++i) CHECK(seqs[i] == static_cast<int64_t>(i));
  }
  for (auto& [key, seqs] : p2pByPeer) {
    REQUIRE(seqs.size() == kCallsPerThread / 4);
    for (size_t i = 0; i < seqs.size(); ++i) CHECK(seqs[i] == static_cast<int64_t>(i));
  }
  auto dc = dump.getComms();
  REQUIRE(dc.size() == kThreads + 1);
  CHECK(dc[0].getLastEnqueuedSeq() == kCallsPerThread * 3 / 4 - 1);
  CHECK(dc[0].getTotalEntries() == kCallsPerThread * 3 / 4);
  CHECK(dc[kThreads].getTotalEntries() == kThreads * kCallsPerThread / 4);
  REQUIRE(dc[kThreads].getP2p().size() == kThreads);
  CHECK(dc[kThreads].getP2p()[0].getLastEnqueuedSeq() == kCallsPerThread / 4 - 1);
  CHECK(dc[kThreads].getP2p()[0].getSend());
  unmapRing(&r);
}

TEST_CASE("wrap-around evicts the oldest entries and keeps counters exact") {
  RingRegion r;
  std::string error;
  RingCapacities caps;
  caps.ring = 64;
  REQUIRE(createAnonymousRing(caps, &r, &error));
  tCursor = RingCursor{};
  uint32_t a = addComm(r, 1, 0, 2);
  uint32_t b = addComm(r, 2, 0, 2);
  for (int i = 0; i < 100; ++i) append(r, a, shm::Op::kAllReduce, -1, 1);
  for (int i = 0; i < 10; ++i) append(r, b, shm::Op::kBroadcast, 0, 1);
  DumpStats stats;
  auto file = convert(r, &stats);
  auto dump = file->dump();
  // One thread reserves positions 8 at a time: 110 calls took positions 0-111, and the ring holds
  // the last 64 positions, 48-111, of which 48-109 are calls.
  CHECK(dump.getEntries().size() == 62);
  CHECK(dump.getInfo().getTotalEntries() == 110);
  CHECK(dump.getInfo().getEvictedEntries() == 48);
  CHECK(dump.getInfo().getLastEvictedIndex() == 47);
  CHECK(dump.getEntries()[0].getSeq() == 48);
  auto comms = dump.getComms();
  CHECK(comms[0].getEvictedEntries() == 48);
  CHECK(comms[0].getTotalEntries() == 100);
  CHECK(comms[0].getLastEnqueuedSeq() == 99);
  CHECK(comms[1].getEvictedEntries() == 0);
  CHECK(comms[1].getTotalEntries() == 10);
  unmapRing(&r);
}

TEST_CASE("an entry whose writer died mid-write is left out as torn, the rest is recovered") {
  std::string dir = tempDir();
  RingRegion r;
  std::string error;
  RingCapacities caps;
  caps.ring = 64;
  REQUIRE(createRingFile(dir, 77, 1, caps, &r, &error));
  tCursor = RingCursor{};
  uint32_t a = addComm(r, 1, 0, 2);
  for (int i = 0; i < 5; ++i) append(r, a, shm::Op::kAllReduce, -1, 1);
  // A writer that claimed its slot and died before publishing it (SIGKILL mid-append).
  shm::RingEntry* slot;
  uint64_t index = claimEntry(r, tCursor, &slot);
  CHECK(index == 5);
  // And positions reserved but never used (the rest of the block, another thread's block): gaps,
  // not torn entries.
  fetchAdd(r.header->head, kRingBlock);
  // An entry being updated when the process died is still whole.
  shm::RingEntry* third = &r.entries[2];
  REQUIRE(beginUpdate(third, 2));
  std::string path = r.path;
  unmapRing(&r);

  RingRegion dead;
  REQUIRE(openRingFile(path, &dead, &error));
  DumpStats stats;
  auto file = convert(dead, &stats, true);
  CHECK(stats.tornEntries == 1);
  CHECK(stats.writtenEntries == 5);
  CHECK(file->dump().getInfo().getTornEntries() == 1);
  CHECK(file->dump().getEntries().size() == 5);
  unmapRing(&dead);
  std::filesystem::remove_all(dir);
}

TEST_CASE("damaged ring files are refused with one line") {
  std::string dir = tempDir();
  std::string error;
  RingRegion r;
  auto writeFile = [&](const std::string& name, const std::string& bytes) {
    std::string p = dir + "/" + name;
    FILE* f = fopen(p.c_str(), "w");
    fwrite(bytes.data(), 1, bytes.size(), f);
    fclose(f);
    return p;
  };
  CHECK_FALSE(openRingFile(dir + "/missing.ring", &r, &error));
  CHECK_FALSE(openRingFile(writeFile("short.ring", "NCCLFRS"), &r, &error));
  CHECK(error.find("too short") != std::string::npos);
  CHECK_FALSE(openRingFile(writeFile("foreign.ring", std::string(9000, 'x')), &r, &error));
  CHECK(error.find("bad magic") != std::string::npos);
  // A real ring cut in half.
  RingRegion w;
  RingCapacities caps;
  caps.ring = 64;
  REQUIRE(createRingFile(dir, 5, 5, caps, &w, &error));
  std::string path = w.path;
  uint64_t bytes = w.bytes;
  unmapRing(&w);
  REQUIRE(truncate(path.c_str(), static_cast<off_t>(bytes / 2)) == 0);
  CHECK_FALSE(openRingFile(path, &r, &error));
  CHECK(error.find("truncated") != std::string::npos);
  CHECK(error.find('\n') == std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a ring of another layout version is refused, never misread") {
  // Layout 1.0 kept root where 2.0 keeps the call's duration; reading one as the other gave
  // salvaged dumps roots like 4674 for a peer of 5.
  std::string dir = tempDir();
  std::string error;
  RingRegion w;
  RingCapacities caps;
  caps.ring = 64;
  REQUIRE(createRingFile(dir, 6, 6, caps, &w, &error));
  CHECK(w.header->major == 2);
  w.header->major = 1;
  std::string path = w.path;
  unmapRing(&w);
  RingRegion r;
  CHECK_FALSE(openRingFile(path, &r, &error));
  CHECK(error.find("ring format 1.0 is not one this ncclfr reads (2.x)") != std::string::npos);
  CHECK(error.find('\n') == std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("the calls of a group on a stream that got no events are all untracked, in salvage too") {
  // The calling thread marks the first call of the group on the stream (the one holding its launch);
  // a ring salvaged before the watchdog marked the others still tells them untracked. Other groups,
  // other streams and other threads keep their states.
  RingRegion r;
  std::string error;
  RingCapacities caps;
  caps.ring = 64;
  REQUIRE(createAnonymousRing(caps, &r, &error));
  tCursor = RingCursor{};
  uint32_t c = addComm(r, 9, 0, 4);
  using S = shm::EntryState;
  append(r, c, shm::Op::kSend, 1, 10, 7, 0xa, S::kUntracked);
  append(r, c, shm::Op::kRecv, 3, 10, 7, 0xa);                      // same group and stream: untracked
  append(r, c, shm::Op::kSend, 2, 10, 7, 0xb);                      // another stream of the group
  append(r, c, shm::Op::kRecv, 2, 10, 8, 0xa);                      // a later group
  append(r, c, shm::Op::kAllReduce, -1, 10, 0, 0xa, S::kUntracked); // no group
  append(r, c, shm::Op::kAllReduce, -1, 10, 0, 0xa);
  DumpStats stats;
  auto file = convert(r, &stats, true);
  auto e = file->dump().getEntries();
  REQUIRE(e.size() == 6);
  CHECK(e[0].getState() == schema::EntryState::UNTRACKED);
  CHECK(e[1].getState() == schema::EntryState::UNTRACKED);
  CHECK(e[2].getState() == schema::EntryState::SCHEDULED);
  CHECK(e[3].getState() == schema::EntryState::SCHEDULED);
  CHECK(e[4].getState() == schema::EntryState::UNTRACKED);
  CHECK(e[5].getState() == schema::EntryState::SCHEDULED);
  CHECK(e[1].getRoot() == 3);
  unmapRing(&r);
}
