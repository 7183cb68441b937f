// NCCL's own communicator id (commHash), recomputed so that our ids equal the "commId 0x..." of
// NCCL's INFO logs, its RAS reports and the profiler plugin. From NCCL 2.27/2.28 src/include/utils.h
// (eatHash/digestHash/getHash) and src/init.cc (ncclCommInitRankFunc, ncclCommInitChildComm):
//   * a new communicator (ncclCommInitRank/Config/All, Scalable with the first id):
//       getHash(commId[0].internal, NCCL_UNIQUE_ID_BYTES)
//   * a split: eatHash(parent commHash, uint64) then eatHash(splitCount, int) then
//     eatHash(color, int), where splitCount = ++parent->splitCount for each ncclCommSplit call
//     on the parent (NCCL_SPLIT_NOCOLOR calls included);
//   * a shrink: the same with splitCount 0 (shrinks do not count) and color 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ncclfr::recorder {

// The hash depends on how the bytes are split into eatHash calls, not only on the bytes.
inline void eatHash(uint64_t acc[2], const void* bytes, size_t size) {
  const unsigned char* p = static_cast<const unsigned char*>(bytes);
  acc[0] ^= size;
  while (size != 0) {
    acc[0] += acc[1];
    acc[1] ^= acc[0];
    acc[0] ^= acc[0] >> 31;
    acc[0] *= 0x9de62bbc8cef3ce3ull;
    acc[1] ^= acc[1] >> 32;
    acc[1] *= 0x485cd6311b599e79ull;
    size_t chunk = size < sizeof(uint64_t) ? size : sizeof(uint64_t);
    uint64_t x = 0;
    std::memcpy(&x, p, chunk);
    p += chunk;
    size -= chunk;
    acc[0] += x;
  }
}

inline uint64_t digestHash(const uint64_t acc[2]) {
  uint64_t h = acc[0];
  h ^= h >> 31;
  h *= 0xbac3bd562846de6bull;
  h += acc[1];
  h ^= h >> 32;
  h *= 0x995a187a14e7b445ull;
  return h;
}

inline uint64_t getHash(const void* bytes, size_t size) {
  uint64_t acc[2] = {1, 1};
  eatHash(acc, bytes, size);
  return digestHash(acc);
}

// `uniqueId` points at NCCL_UNIQUE_ID_BYTES (128) bytes.
inline uint64_t commHashFromUniqueId(const void* uniqueId) { return getHash(uniqueId, 128); }

inline uint64_t commHashOfChild(uint64_t parentHash, int32_t splitCount, int32_t color) {
  uint64_t acc[2] = {1, 1};
  eatHash(acc, &parentHash, sizeof parentHash);
  eatHash(acc, &splitCount, sizeof splitCount);
  eatHash(acc, &color, sizeof color);
  return digestHash(acc);
}

inline uint64_t commHashOfShrink(uint64_t parentHash) { return commHashOfChild(parentHash, 0, 0); }

}  // namespace ncclfr::recorder
