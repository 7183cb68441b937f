// Element types and reduction operators, computed on the host the way NCCL's kernels compute them:
// reductions run in rank order 0..n-1 with every intermediate rounded to the element type (so half
// and bfloat16 sums round like __hadd), ncclAvg is a pre-multiplied sum by 1/n for floating types
// and a sum followed by an integer division for integer types, as NCCL does.
#pragma once

#include <nccl.h>

#include <cstddef>
#include <cstdint>

namespace ncclfr::sim::nccl {

size_t typeSize(ncclDataType_t type);  // 0 for an invalid type
const char* typeName(ncclDataType_t type);

enum class RedKind : uint32_t { Sum = 0, Prod = 1, Max = 2, Min = 3, PreMulSum = 4, SumPostDiv = 5 };

struct RedOp {
  RedKind kind = RedKind::Sum;
  // PreMulSum: the scalar, as an element of the reduction's type (its bytes, zero-extended).
  // SumPostDiv: the divisor.
  uint64_t scalar = 0;
  // A PreMulSum whose scalar lives in (device) memory: read when the collective runs.
  const void* scalarPtr = nullptr;
};

// ncclSum..ncclMin map to themselves; ncclAvg over `nranks` becomes PreMulSum or SumPostDiv.
RedOp builtinOp(ncclRedOp_t op, ncclDataType_t type, int nranks);
const char* opName(ncclRedOp_t op);

// dst[i] = op over r of srcs[r][i], for i < n. dst may alias any source.
void reduce(void* dst, const void* const* srcs, int nsrc, size_t n, ncclDataType_t type, const RedOp& op);

// Conversions used by the reductions, exposed for tests and for examples of exact values.
uint16_t floatToHalf(float f);
float halfToFloat(uint16_t h);
uint16_t floatToBfloat16(float f);
float bfloat16ToFloat(uint16_t h);
uint8_t floatToFp8E4M3(float f);
float fp8E4M3ToFloat(uint8_t v);
uint8_t floatToFp8E5M2(float f);
float fp8E5M2ToFloat(uint8_t v);

}  // namespace ncclfr::sim::nccl
