// commHash must equal NCCL's own: these values come from an independent re-implementation of
// NCCL 2.28's eatHash/digestHash (src/include/utils.h) and the split/shrink rules of src/init.cc.
#include "comm_hash.h"

#include <catch2/catch.hpp>

#include <cstdint>

using namespace ncclfr::recorder;

namespace {
unsigned char sequentialId[128];
unsigned char zeroId[128];
struct Init {
  Init() {
    for (int i = 0; i < 128; ++i) sequentialId[i] = static_cast<unsigned char>(i);
  }
} init;
}  // namespace

TEST_CASE("commHash of a unique id is NCCL's getHash over its 128 bytes") {
  CHECK(commHashFromUniqueId(zeroId) == 0xcc976ec6c24bb53cull);
  CHECK(commHashFromUniqueId(sequentialId) == 0x6afe1cc17717e1f4ull);
}

TEST_CASE("getHash handles partial chunks and empty input like NCCL") {
  CHECK(getHash("abc", 3) == 0x751c1b124ef01f18ull);
  CHECK(getHash("", 0) == 0x75b6431c590e86a2ull);
}

TEST_CASE("commHash of a split hashes parent hash, split count and color") {
  uint64_t parent = commHashFromUniqueId(sequentialId);
  CHECK(commHashOfChild(parent, 1, 0) == 0x79030d073b3c579full);
  CHECK(commHashOfChild(parent, 2, 3) == 0x761890fa75046d6cull);
  CHECK(commHashOfChild(parent, 1, -1) == 0x8d48b4e4b23ecc95ull);
  // Every split of one parent gets a new id, even with the same color.
  CHECK(commHashOfChild(parent, 1, 0) != commHashOfChild(parent, 2, 0));
}

TEST_CASE("commHash of a shrink uses split count 0 and color 0") {
  uint64_t parent = commHashFromUniqueId(sequentialId);
  CHECK(commHashOfShrink(parent) == 0x3ab8d78e8fb6dbdaull);
  CHECK(commHashOfShrink(parent) == commHashOfChild(parent, 0, 0));
}
