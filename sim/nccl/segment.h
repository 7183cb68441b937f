// The shared-memory segment one communicator's ranks meet in. ncclGetUniqueId creates it (one page)
// and puts its name in the ncclUniqueId; the first rank to join lays it out for nranks; the last
// rank to join unlinks the name, so a finished or crashed job leaves nothing in /dev/shm past
// initialisation (and a crash during initialisation is swept by the next ncclGetUniqueId and by
// ncclfr-simrun). Ranks only ever touch their peers through this segment.
//
// Layout (offsets in the header): header page | RankSlot[nranks] | Channel[nranks][nranks] |
// staging[nranks][stagingBytes] | ring[nranks][nranks][channelBytes].
#pragma once

#include <nccl.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "sim/common/futex.h"

namespace ncclfr::sim::nccl {

constexpr uint64_t kSegmentMagic = 0x314d5353524643ULL;  // "CFRSSM1"
constexpr uint32_t kLayoutVersion = 1;
constexpr size_t kHeaderBytes = 4096;
constexpr size_t kBootBytes = 128;
constexpr char kIdMagic[8] = {'N', 'C', 'F', 'R', 'S', 'I', 'M', '1'};

// What every rank posts for each round of a collective; ranks compare them to detect mismatches.
struct CollDesc {
  uint64_t collIndex;  // per-communicator count of collectives, 1-based
  uint64_t count;
  uint32_t func;
  uint32_t dtype;
  uint32_t op;
  int32_t root;
  uint32_t chunk;
  uint32_t nChunks;
};

// kSlotClaimed: a rank took the slot and is filling in pid/device/host; kSlotJoined publishes them.
enum SlotState : uint32_t {
  kSlotEmpty = 0, kSlotJoined = 1, kSlotFinalized = 2, kSlotLeft = 3, kSlotAborted = 4, kSlotClaimed = 5
};

struct alignas(64) RankSlot {
  Doorbell bell;  // rung whenever something this rank may wait for changes
  std::atomic<uint32_t> state;
  int32_t pid;
  int32_t cudaDev;
  uint64_t hostHash;
  // Collective rounds: a rank posts round g (data in its staging, desc below) and later marks it
  // consumed once it has read everyone's round-g data.
  std::atomic<uint64_t> posted;
  std::atomic<uint64_t> consumed;
  CollDesc desc;
  // Host-side allgathers for split and shrink, same protocol with a small payload.
  std::atomic<uint64_t> bootPosted;
  std::atomic<uint64_t> bootConsumed;
  uint8_t boot[kBootBytes];
};

// One per ordered (sender, receiver) pair. Messages are matched in order; head and tail count bytes
// over the channel's life, the ring buffer holds head - tail of them.
struct alignas(64) Channel {
  std::atomic<uint64_t> head;
  std::atomic<uint64_t> tail;
  std::atomic<uint64_t> msgPosted;  // sequence number of the message whose size is below
  std::atomic<uint64_t> msgDone;    // last message the receiver has fully taken
  uint64_t msgBytes;
};

struct SegmentHeader {
  uint64_t magic;
  uint32_t layoutVersion;
  std::atomic<uint32_t> layoutState;  // 0 fresh, 1 being laid out, 2 ready (a futex word)
  int32_t creatorPid;
  uint32_t nranks;
  uint64_t stagingBytes;
  uint64_t channelBytes;
  uint64_t totalBytes;
  uint64_t slotsOffset;
  uint64_t channelsOffset;
  uint64_t stagingOffset;
  uint64_t ringsOffset;
  std::atomic<uint32_t> joined;  // futex word: ranks that have claimed their slot
  uint32_t reserved;
  char name[96];
};
static_assert(sizeof(SegmentHeader) <= kHeaderBytes);

// The payload of an ncclUniqueId issued by sim/.
struct UniqueIdPayload {
  char magic[8];
  char name[96];
};
static_assert(sizeof(UniqueIdPayload) <= NCCL_UNIQUE_ID_BYTES);

class Segment {
 public:
  // Creates a fresh segment and returns its name. Also unlinks leftovers of dead processes.
  static ncclResult_t create(std::string* name);
  // Opens (mapping once per process) and, if first, lays the segment out for nranks ranks.
  static ncclResult_t open(const std::string& name, int nranks, Segment** out);
  void release();
  // Unlinks the name; called by the last rank to join.
  void unlinkName();

  SegmentHeader* header() const { return hdr_; }
  int nranks() const { return static_cast<int>(hdr_->nranks); }
  RankSlot* slot(int r) const;
  Channel* channel(int src, int dst) const;
  uint8_t* staging(int r) const;
  uint8_t* ring(int src, int dst) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  SegmentHeader* hdr_ = nullptr;
  size_t size_ = 0;
  int refs_ = 0;
};

// Unlinks segments this process created that no rank ever finished joining (called at exit).
void unlinkUnusedSegments();

}  // namespace ncclfr::sim::nccl
