// The shared-memory layout of a recording process: one file in NCCLFR_SHM_DIR (default /dev/shm)
// holding a header, a communicator table, a point-to-point counter table, an optional call-stack
// table and the ring of calls. libncclfr.so writes it while the process runs; `ncclfr salvage`
// reads it after the process died (SIGKILL, OOM kill, crash) and turns it into a dump with the one
// converter in recorder/ring_to_dump.h.
//
// This is an ABI between two programs that may come from different builds, like Perfetto's
// shared_memory_abi.h: fixed-width little-endian fields, explicit offsets, static_asserts on every
// size, and a major/minor version. A reader refuses a major it does not know; a minor may only add
// fields in reserved space (readers that predate them see zeros). Nothing in here is a pointer into
// the writer's address space except `CommSlot::handle`, which is informational.
//
// Concurrency contract (see docs/recorder.md for the long version):
//   * Fields documented as "live" change while the process runs and are accessed only atomically
//     (std::atomic_ref in the recorder and the converter); everything else in a slot is written
//     once, before the slot is published.
//   * A ring slot is owned through its `commit` word (RingEntry::commit below), which both publishes
//     an entry and detects torn entries after a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace ncclfr::shm {

inline constexpr char kMagic[8] = {'N', 'C', 'C', 'L', 'F', 'R', 'S', '\0'};
// History (a ring left in /dev/shm by an older build must never be read with a newer layout):
//   1.0  first layout: RingEntry held root at offset 80, result at 84, callDurationNs at 88;
//        `head` counted calls.
//   2.0  RingEntry::returned (one word at 80: result, duration, lap) moved root to 88; `head`
//        counts positions reserved in blocks; EntryState::kUntracked. The change shipped at first
//        without a new major, so salvage read 1.0 rings' call durations as roots: a reader must
//        refuse any major but its own.
inline constexpr uint16_t kMajor = 2;
inline constexpr uint16_t kMinor = 0;
// Ring files are named "<kFilePrefix><pid>-<start ticks><kFileSuffix>" so that a pid reused after
// its first owner died still gets a new file; readers take no meaning from the name.
inline constexpr const char* kFilePrefix = "ncclfr-";
inline constexpr const char* kFileSuffix = ".ring";

// Numeric values shared with the dump schema (include/ncclfr/dump.capnp); the converter
// static_asserts that they match, so the ring needs no Cap'n Proto headers.
enum class Op : uint8_t {
  kUnknown = 0, kAllReduce = 1, kBroadcast = 2, kReduce = 3, kAllGather = 4, kReduceScatter = 5,
  kAllToAll = 6, kGather = 7, kScatter = 8, kSend = 9, kRecv = 10,
};
inline constexpr int kOpCount = 11;
// kUntracked: GPU timing was asked for but the call got no CUDA events (pool dry, too many
// contexts or group streams, a driver error): its GPU progress is unknown, not "not started".
enum class EntryState : uint8_t {
  kScheduled = 0, kStarted = 1, kCompleted = 2, kError = 3, kCaptured = 4, kUntracked = 5,
};
enum class CommState : uint32_t {
  kInitializing = 0, kLive = 1, kFinalized = 2, kDestroyed = 3, kAborted = 4, kRevoked = 5, kInitFailed = 6,
};
enum class CommOrigin : uint32_t {
  kUnknown = 0, kInitRank = 1, kInitRankConfig = 2, kInitAll = 3, kInitRankScalable = 4, kSplit = 5, kShrink = 6,
};
enum class TimingMode : uint32_t { kFull = 0, kEndOnly = 1, kHostOnly = 2 };

// ProcessHeader::state: what became of the process, as far as it could say.
enum class ProcessState : uint32_t {
  kLive = 1,      // recording; if the process is gone, it was killed without a word (SIGKILL, OOM)
  kCrashed = 2,   // a fatal signal handler ran (crashSignal says which); then the process died
  kExiting = 3,   // exit handlers ran; the file normally disappears right after
};

// ---------------------------------------------------------------------------------------------
// The ring's commit word protocol. Each slot's `commit` holds (index + 1) << 2 | flags, where index
// is the global, ever-increasing position of the call in the process (0 for its first call) and
// flags are:
inline constexpr uint64_t kCommitWriting = 1;   // a writer owns the slot and is filling it in
inline constexpr uint64_t kCommitUpdating = 2;  // the entry is valid; one field group is being updated
inline constexpr uint64_t kCommitFlags = 3;
//   * Threads reserve positions in blocks (ProcessHeader::head counts positions handed out, not
//     calls); a reserved position may stay unused, and readers skip a slot that names an older index.
//   * A writer with index j waits while the slot is flagged (an older lap's writer or an updater,
//     for a few stores), gives position j up if the slot already names a newer index (the ring
//     lapped it), else CASes the word to (j+1)<<2|Writing, writes every field, then stores (j+1)<<2
//     with release order. An entry whose word still says Writing after the process died is torn:
//     some fields may be missing, so readers leave it out (DumpInfo.tornEntries).
//   * Later changes to entry j (GPU start/end and state from the watchdog, an error state from the
//     calling thread) CAS (j+1)<<2 -> (j+1)<<2|Updating, store the fields atomically one by one, and
//     store (j+1)<<2 again. (The calling thread's result and duration go into RingEntry::returned
//     with a CAS of their own, below.) Each field is individually whole, so an entry found Updating is
//     still valid. An updater that finds another index in the word gives up: its entry was evicted.
//   * A reader of index k accepts the slot only if the word says k+1 with no Writing flag both
//     before and after it copies the fields.
inline constexpr uint64_t commitWord(uint64_t index, uint64_t flags) { return ((index + 1) << 2) | flags; }
// The index the word names, or UINT64_MAX for an empty slot.
inline constexpr uint64_t commitIndex(uint64_t word) { return (word >> 2) - 1; }

// RingEntry::flags
inline constexpr uint32_t kEntryGrouped = 2;    // issued between ncclGroupStart and ncclGroupEnd
inline constexpr uint32_t kEntryTracked = 4;    // GPU completion is measured for it (CUDA events)
inline constexpr uint32_t kEntrySimulated = 8;  // its group was closed by ncclGroupSimulateEnd

// RingEntry::returned, the one word the calling thread changes after the call returns, with one
// CAS (no update lock): bits 0-31 the call's host duration in ns (saturated), bits 32-39 the
// ncclResult_t it returned (255 for values above 254), bit 40 set once it returned, bits 48-63 the
// ring lap of the entry (index / capacity, mod 2^16). The CAS expects the entry's own lap with bit
// 40 clear, so a call that returns after the ring has replaced its entry changes nothing.
inline constexpr uint64_t kReturnedBit = uint64_t{1} << 40;
inline constexpr uint64_t lapTag(uint64_t index, uint32_t capacity) {
  return (index >> __builtin_ctz(capacity)) & 0xffff;  // capacity is a power of two
}
inline constexpr uint64_t notReturnedWord(uint64_t lap) { return lap << 48; }
inline constexpr uint64_t returnedWord(uint64_t lap, int32_t result, uint32_t durationNs) {
  uint64_t r = result < 0 || result > 254 ? 255 : static_cast<uint64_t>(result);
  return lap << 48 | kReturnedBit | r << 32 | durationNs;
}
inline constexpr bool hasReturned(uint64_t word) { return (word & kReturnedBit) != 0; }
inline constexpr int32_t returnedResult(uint64_t word) { return static_cast<int32_t>((word >> 32) & 0xff); }
inline constexpr uint32_t returnedDurationNs(uint64_t word) { return static_cast<uint32_t>(word); }

// One recorded call: 128 bytes, a power of two so a slot never straddles two cache-line pairs.
struct RingEntry {
  uint64_t commit;          // see the protocol above
  int64_t enqueueMonoNs;    // CLOCK_MONOTONIC when the application called NCCL
  int64_t startMonoNs;      // live: GPU start on the host's monotonic clock, 0 = not (yet) known
  int64_t endMonoNs;        // live: GPU end, likewise
  uint64_t count;           // NCCL's count argument (elements)
  uint64_t stream;          // cudaStream_t as a number
  int64_t seq;              // collective sequence number (dump.capnp Entry.seq)
  int64_t p2pSeq;           // per (comm, peer, direction) sequence number, -1 for collectives
  uint32_t comm;            // index into the communicator table
  uint32_t opSeq;           // per-op-type sequence number (NCCL's seqNumber)
  uint32_t groupId;         // non-zero: the outermost group the call belonged to
  uint32_t threadId;        // gettid()
  uint64_t returned;        // live: see RingEntry::returned above
  int32_t root;             // root or peer, -1 when the op has none
  int32_t stackIndex;       // index into the stack table, -1 = none
  uint8_t op;               // Op
  uint8_t dtype;            // ncclDataType_t (values above 254 are stored as 255)
  uint8_t redOp;            // ncclRedOp_t, 5 for any user-defined (PreMulSum) op
  uint8_t state;            // live: EntryState
  uint32_t flags;           // live: kEntry* bits
  uint32_t p2pSlot;         // index + 1 into the p2p counter table, 0 = none
  uint32_t reserved[5];
};
static_assert(sizeof(RingEntry) == 128, "RingEntry is part of the shared-memory ABI");
static_assert(offsetof(RingEntry, comm) == 64 && offsetof(RingEntry, returned) == 80 && offsetof(RingEntry, op) == 96,
              "RingEntry layout");
static_assert(std::is_trivially_copyable_v<RingEntry> && std::is_standard_layout_v<RingEntry>);

// One communicator. Slots are handed out in creation order and never reused, so the table's order
// is the dump's `comms` order and entries can refer to a communicator by slot index.
struct CommSlot {
  uint32_t published;       // live: 1 once the slot's write-once fields are written
  uint32_t state;           // live: CommState
  uint64_t id;              // NCCL's commHash
  uint64_t parentId;        // parent's commHash, 0 = none
  uint64_t handle;          // ncclComm_t as a number (informational: this process's address)
  int32_t splitColor;       // -1 = none
  int32_t splitKey;         // -1 = none
  int32_t rank;             // live until the communicator is usable (splits learn it late)
  int32_t size;             // live, likewise
  int32_t cudaDevice;       // live, -1 = unknown
  uint32_t origin;          // CommOrigin
  int32_t blocking;         // live: 1 blocking, 0 non-blocking
  int32_t lastAsyncError;   // live: last error seen (ncclResult_t), 0 = none
  int64_t createdMonoNs;
  int64_t initDurationNs;   // live: 0 while initializing
  int64_t destroyedMonoNs;  // live
  int64_t lastAsyncErrorMonoNs;  // live
  int64_t nextSeq;          // live: collectives enqueued (lastEnqueuedSeq = nextSeq - 1); changed by
                            // one thread at a time (NCCL's rule for a communicator), read by any
  int64_t lastStartedSeq;   // live, -1 = none
  int64_t lastCompletedSeq; // live, -1 = none
  uint64_t evictedEntries;  // unused (always 0): evictions are derived, total calls minus held
  uint64_t p2pEntries;      // live: send/recv calls (totalEntries = nextSeq + p2pEntries)
  int64_t busySinceMonoNs;  // live: a blocking call on the communicator (init, split, finalize,
                            // destroy) is in progress since then, 0 = none
  uint32_t busyOp;          // live: which (BusyOp), meaningful while busySinceMonoNs != 0
  uint32_t splitCount;      // live: ncclCommSplit calls on this communicator (its children's hash)
  uint32_t opSeq[16];       // live: next per-op sequence number, indexed by Op
  char name[128];           // config.commName, NUL-terminated
  uint8_t reserved[168];
};
static_assert(sizeof(CommSlot) == 512, "CommSlot is part of the shared-memory ABI");
static_assert(std::is_trivially_copyable_v<CommSlot> && std::is_standard_layout_v<CommSlot>);

enum class BusyOp : uint32_t { kNone = 0, kInit = 1, kSplit = 2, kShrink = 3, kFinalize = 4, kDestroy = 5 };

// Point-to-point counters, one per (communicator, peer, direction) ever used: an open-addressing
// hash table (linear probing) whose keys are claimed once with a CAS and never removed.
struct P2PSlot {
  uint64_t key;             // live: p2pKey(...), 0 = empty
  int64_t nextSeq;          // live: calls enqueued (lastEnqueuedSeq = nextSeq - 1)
  int64_t lastStartedSeq;   // live, -1 = none
  int64_t lastCompletedSeq; // live, -1 = none
};
static_assert(sizeof(P2PSlot) == 32, "P2PSlot is part of the shared-memory ABI");
inline constexpr uint64_t p2pKey(uint32_t commSlot, int32_t peer, bool send) {
  return (uint64_t{commSlot} + 1) << 33 | uint64_t{static_cast<uint32_t>(peer)} << 1 | (send ? 1u : 0u);
}
inline constexpr uint32_t p2pKeyComm(uint64_t key) { return static_cast<uint32_t>((key >> 33) - 1); }
inline constexpr int32_t p2pKeyPeer(uint64_t key) { return static_cast<int32_t>(static_cast<uint32_t>(key >> 1)); }
inline constexpr bool p2pKeySend(uint64_t key) { return (key & 1) != 0; }

// Call stacks (NCCLFR_STACKS), deduplicated by hash like the p2p table.
inline constexpr int kStackFrames = 30;
struct StackSlot {
  uint64_t hash;            // live: 0 = empty; published after frames (release)
  uint32_t depth;
  uint32_t reserved;
  uint64_t frames[kStackFrames];  // return addresses, innermost first
};
static_assert(sizeof(StackSlot) == 256, "StackSlot is part of the shared-memory ABI");

// Loaded modules at the time stacks were enabled, for offline symbolization.
struct ModuleSlot {
  uint64_t base;
  char path[240];
  char buildId[72];         // hex, "" if none
};
static_assert(sizeof(ModuleSlot) == 320, "ModuleSlot is part of the shared-memory ABI");

// The file starts with this header. Offsets are from the start of the file; every region starts
// on a 4 KiB boundary.
struct ProcessHeader {
  char magic[8];            // kMagic
  uint16_t major;           // kMajor
  uint16_t minor;           // kMinor
  uint32_t headerBytes;     // sizeof(ProcessHeader)
  uint32_t entryBytes;      // sizeof(RingEntry)
  uint32_t commSlotBytes;   // sizeof(CommSlot)
  uint32_t p2pSlotBytes;    // sizeof(P2PSlot)
  uint32_t stackSlotBytes;  // sizeof(StackSlot)
  uint32_t moduleSlotBytes; // sizeof(ModuleSlot)
  uint32_t ringCapacity;    // entries, a power of two
  uint32_t commCapacity;
  uint32_t p2pCapacity;     // a power of two
  uint32_t stackCapacity;   // a power of two, or 0 without NCCLFR_STACKS
  uint32_t moduleCapacity;
  uint64_t ringOffset;
  uint64_t commOffset;
  uint64_t p2pOffset;
  uint64_t stackOffset;
  uint64_t moduleOffset;
  uint64_t fileBytes;
  // Who recorded (write-once, before any communicator exists).
  uint32_t pid;
  int32_t globalRank;       // -1 = unknown
  int32_t worldSize;        // -1 = unknown
  int32_t localRank;        // -1 = unknown
  int64_t startWallNs;      // process start, ns since the epoch
  uint64_t startTicks;      // /proc/<pid>/stat starttime: tells a reused pid from its first owner
  int32_t ncclVersion;      // live: NCCL_VERSION_CODE of the loaded NCCL, 0 = not yet known
  int32_t cudaDriverVersion;// live: 0 = no CUDA driver
  uint32_t timingMode;      // TimingMode
  uint32_t simulated;       // 1 when running on sim/'s stand-in libraries
  int64_t clockWallNs;      // CLOCK_REALTIME and CLOCK_MONOTONIC read back to back at creation,
  int64_t clockMonoNs;      // so a salvaged dump can place monotonic times on the wall clock
  char host[64];
  char bootId[40];          // /proc/sys/kernel/random/boot_id: monotonic times are per boot
  char jobId[128];
  char jobIdSource[32];
  char rankSource[32];
  char recorderVersion[16];
  // Live process-wide state.
  uint64_t head;            // live: ring positions handed out (threads reserve them in blocks of 8)
  uint32_t commCount;       // live: communicator slots handed out
  uint32_t state;           // live: ProcessState
  int32_t crashSignal;      // live: the fatal signal that was caught, 0 = none
  uint32_t moduleCount;     // live
  int64_t crashMonoNs;      // live
  uint64_t incidents;       // live: incidents this process dumped for
  char lastIncidentId[64];  // live: the id of the latest one, "" = none (written by the watchdog)
  uint64_t p2pOverflow;     // live: calls whose p2p counter did not fit in the table
  uint8_t reserved[3504];
  char cmdline[4096];       // /proc/self/cmdline, NULs turned into spaces, NUL-terminated
};
static_assert(sizeof(ProcessHeader) == 8192, "ProcessHeader is part of the shared-memory ABI");
static_assert(offsetof(ProcessHeader, head) == 480, "ProcessHeader layout");
static_assert(offsetof(ProcessHeader, cmdline) == 4096, "ProcessHeader layout");
static_assert(std::is_trivially_copyable_v<ProcessHeader> && std::is_standard_layout_v<ProcessHeader>);

// Where each region goes for given capacities (the writer's and the reader's single definition).
struct Layout {
  uint64_t commOffset, p2pOffset, stackOffset, moduleOffset, ringOffset, fileBytes;
};
inline constexpr uint64_t alignPage(uint64_t n) { return (n + 4095) & ~uint64_t{4095}; }
inline constexpr Layout layoutFor(uint32_t ringCapacity, uint32_t commCapacity, uint32_t p2pCapacity,
                                  uint32_t stackCapacity, uint32_t moduleCapacity) {
  Layout l{};
  l.commOffset = alignPage(sizeof(ProcessHeader));
  l.p2pOffset = alignPage(l.commOffset + uint64_t{commCapacity} * sizeof(CommSlot));
  l.stackOffset = alignPage(l.p2pOffset + uint64_t{p2pCapacity} * sizeof(P2PSlot));
  l.moduleOffset = alignPage(l.stackOffset + uint64_t{stackCapacity} * sizeof(StackSlot));
  l.ringOffset = alignPage(l.moduleOffset + uint64_t{moduleCapacity} * sizeof(ModuleSlot));
  l.fileBytes = alignPage(l.ringOffset + uint64_t{ringCapacity} * sizeof(RingEntry));
  return l;
}

}  // namespace ncclfr::shm
