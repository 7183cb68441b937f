// The shared-memory ring file of include/ncclfr/shm_layout.h: creating it (the recorder), opening
// it (salvage), and the lock-free operations on it. Every access to a field that can change while
// the file is mapped goes through std::atomic_ref, so readers in another thread (the watchdog) or
// another process (salvage of a live process) never see a torn field.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "ncclfr/shm_layout.h"

namespace ncclfr::recorder {

template <typename T>
inline T ld(const T& field, std::memory_order order = std::memory_order_relaxed) {
  return std::atomic_ref<T>(const_cast<T&>(field)).load(order);
}
template <typename T>
inline void st(T& field, T value, std::memory_order order = std::memory_order_relaxed) {
  std::atomic_ref<T>(field).store(value, order);
}
template <typename T>
inline T fetchAdd(T& field, T value, std::memory_order order = std::memory_order_relaxed) {
  return std::atomic_ref<T>(field).fetch_add(value, order);
}
// Increments a counter that only one thread at a time changes: a communicator's, which NCCL allows
// one thread at a time to use. A plain load and store, no locked instruction, and atomic for readers.
template <typename T>
inline T bumpOwned(T& field) {
  T v = ld(field);
  st(field, static_cast<T>(v + 1));
  return v;
}
template <typename T>
inline bool cas(T& field, T& expected, T desired, std::memory_order order = std::memory_order_acq_rel) {
  return std::atomic_ref<T>(field).compare_exchange_strong(expected, desired, order, std::memory_order_acquire);
}
// Raises `field` to `value` if it is lower.
template <typename T>
inline void storeMax(T& field, T value) {
  std::atomic_ref<T> a(field);
  T cur = a.load(std::memory_order_relaxed);
  while (cur < value && !a.compare_exchange_weak(cur, value, std::memory_order_relaxed)) {
  }
}

// A mapped ring file (or, when no file could be made, anonymous memory with the same layout).
struct RingRegion {
  uint8_t* base = nullptr;
  uint64_t bytes = 0;
  int fd = -1;
  bool anonymous = false;
  bool writable = false;
  std::string path;
  shm::ProcessHeader* header = nullptr;
  shm::CommSlot* comms = nullptr;
  shm::P2PSlot* p2p = nullptr;
  shm::StackSlot* stacks = nullptr;
  shm::ModuleSlot* modules = nullptr;
  shm::RingEntry* entries = nullptr;
  uint32_t ringMask = 0;
  uint32_t p2pMask = 0;
  uint32_t stackMask = 0;
};

struct RingCapacities {
  uint32_t ring = 16384;     // a power of two
  uint32_t comms = 1024;
  uint32_t p2p = 16384;      // a power of two
  uint32_t stacks = 0;       // a power of two or 0
  uint32_t modules = 0;
};

// Creates "<dir>/ncclfr-<pid>-<ticks>.ring" (mode 0600; `dir` made with 0700 when missing), sizes it
// with posix_fallocate so that a full /dev/shm fails here rather than with SIGBUS on a later store,
// maps it shared and writes the header's layout fields (identity fields are the caller's).
bool createRingFile(const std::string& dir, uint32_t pid, uint64_t startTicks, const RingCapacities& caps,
                    RingRegion* region, std::string* error);
// The same layout in private anonymous memory: recording and dumps work, salvage cannot.
bool createAnonymousRing(const RingCapacities& caps, RingRegion* region, std::string* error);
// Maps an existing ring read-only and checks magic, version and every size and offset against the
// file's length. One line in *error when it cannot be read.
bool openRingFile(const std::string& path, RingRegion* region, std::string* error);
void unmapRing(RingRegion* region);

// ---------------------------------------------------------------------------------------------
// Ring entries as 16 words: all shared accesses are 64-bit atomics, whatever field they hold.
inline constexpr int kEntryWords = sizeof(shm::RingEntry) / 8;
inline uint64_t* entryWords(shm::RingEntry* e) { return reinterpret_cast<uint64_t*>(e); }
inline const uint64_t* entryWords(const shm::RingEntry* e) { return reinterpret_cast<const uint64_t*>(e); }
// Word indexes of the fields that change after an entry is published.
inline constexpr int kWordStart = offsetof(shm::RingEntry, startMonoNs) / 8;
inline constexpr int kWordEnd = offsetof(shm::RingEntry, endMonoNs) / 8;
inline constexpr int kWordReturned = offsetof(shm::RingEntry, returned) / 8;
inline constexpr int kWordOpState = offsetof(shm::RingEntry, op) / 8;
static_assert(offsetof(shm::RingEntry, state) == kWordOpState * 8 + 3);
static_assert(offsetof(shm::RingEntry, flags) == kWordOpState * 8 + 4);

// Copies the fields (not the commit word) of a slot with atomic loads. Acquire loads, so that the
// commit word read after them (readSlot) is not read earlier: the seqlock check without a fence
// (plain loads on x86).
inline void loadEntry(const shm::RingEntry* slot, shm::RingEntry* out) {
  uint64_t* dst = entryWords(out);
  const uint64_t* src = entryWords(slot);
  dst[0] = 0;
  for (int i = 1; i < kEntryWords; ++i) dst[i] = ld(src[i], std::memory_order_acquire);
}
// Release stores (plain stores on x86): a reader that sees one of them sees the Writing claim made
// before it, so it cannot take a half-rewritten slot for the entry it held before.
inline void storeEntry(shm::RingEntry* slot, const shm::RingEntry& in) {
  uint64_t* dst = entryWords(slot);
  const uint64_t* src = entryWords(&in);
  for (int i = 1; i < kEntryWords; ++i) st(dst[i], src[i], std::memory_order_release);
}

// The spin in these is bounded by another thread's handful of stores; it only happens when the ring
// laps onto a slot that is being updated at that very moment.
void spinPause(int* spins);

// Where a thread appends: ring positions are handed out to threads kRingBlock at a time, so that
// threads appending at once do not fight over the shared head counter on every call. Positions a
// thread reserved and never used (it stopped calling NCCL, or exited) stay empty: readers skip
// them, and a writer a lap later simply takes the slot.
inline constexpr uint64_t kRingBlock = 8;
struct RingCursor {
  uint64_t next = 0;
  uint64_t end = 0;
};

// Claims a ring position for a new entry and returns it; *slot is then owned (Writing) until
// publishEntry. A reserved position that the ring has lapped meanwhile is given up for the next.
// (Evictions need no counting here: a communicator's are its calls minus those the ring still
// holds, which the converter counts.)
inline uint64_t claimEntry(RingRegion& r, RingCursor& cursor, shm::RingEntry** slot) {
  for (;;) {
    if (cursor.next == cursor.end) {
      cursor.next = fetchAdd(r.header->head, kRingBlock);
      cursor.end = cursor.next + kRingBlock;
    }
    uint64_t index = cursor.next++;
    shm::RingEntry* e = &r.entries[index & r.ringMask];
    int spins = 0;
    uint64_t expected = ld(e->commit, std::memory_order_acquire);
    for (;;) {
      if (expected != 0 && shm::commitIndex(expected) >= index) break;  // lapped: take the next position
      if ((expected & shm::kCommitFlags) != 0) {
        // An older lap's writer or an updater holds the slot for a few stores.
        spinPause(&spins);
        expected = ld(e->commit, std::memory_order_acquire);
        continue;
      }
      if (cas(e->commit, expected, shm::commitWord(index, shm::kCommitWriting))) {
        *slot = e;
        return index;
      }
    }
  }
}

inline void publishEntry(shm::RingEntry* slot, uint64_t index) {
  st(slot->commit, shm::commitWord(index, 0), std::memory_order_release);
}

// Takes the update lock of entry `index`; false when the ring has already replaced it.
inline bool beginUpdate(shm::RingEntry* slot, uint64_t index) {
  uint64_t valid = shm::commitWord(index, 0);
  int spins = 0;
  for (;;) {
    uint64_t expected = valid;
    if (cas(slot->commit, expected, valid | shm::kCommitUpdating)) return true;
    if (shm::commitIndex(expected) != index) return false;
    spinPause(&spins);  // another updater (the watchdog or the calling thread) holds it
  }
}
// The calling thread's one change after its call returned; false when the ring has replaced the
// entry meanwhile (nothing is written then).
inline bool setReturned(const RingRegion& r, shm::RingEntry* slot, uint64_t index, int32_t result,
                        uint32_t durationNs) {
  uint64_t lap = shm::lapTag(index, r.ringMask + 1);
  uint64_t expected = shm::notReturnedWord(lap);
  return cas(entryWords(slot)[kWordReturned], expected, shm::returnedWord(lap, result, durationNs),
             std::memory_order_release);
}
inline bool entryReturned(const RingRegion& r, const shm::RingEntry& e, uint64_t index) {
  return shm::hasReturned(e.returned) && (e.returned >> 48) == shm::lapTag(index, r.ringMask + 1);
}

inline void endUpdate(shm::RingEntry* slot, uint64_t index) {
  st(slot->commit, shm::commitWord(index, 0), std::memory_order_release);
}

// Result of reading ring position `index`.
enum class SlotRead {
  kOk,
  kWriting,      // its writer is filling it in (or died doing so: torn)
  kEmpty,        // not written (yet): reserved by a thread that has not used it, or never will
  kOverwritten,  // the ring has lapped it
};
// Copies entry `index` if its slot holds it whole (see the protocol in shm_layout.h).
inline SlotRead readSlot(const RingRegion& r, uint64_t index, shm::RingEntry* out) {
  const shm::RingEntry* e = &r.entries[index & r.ringMask];
  uint64_t before = ld(e->commit, std::memory_order_acquire);
  uint64_t named = shm::commitIndex(before);
  if (before == 0 || named < index) return SlotRead::kEmpty;
  if (named > index) return SlotRead::kOverwritten;
  if (before & shm::kCommitWriting) return SlotRead::kWriting;
  loadEntry(e, out);
  uint64_t after = ld(e->commit, std::memory_order_relaxed);
  if (shm::commitIndex(after) != index) return SlotRead::kOverwritten;
  out->commit = shm::commitWord(index, 0);
  return SlotRead::kOk;
}

// Finds or claims the p2p counter slot for `key`; null when the table is full.
shm::P2PSlot* findP2P(RingRegion& r, uint64_t key);

}  // namespace ncclfr::recorder
