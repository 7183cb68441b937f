// Element conversions and every reduction operator over every NCCL type, against values computed
// independently in double precision.
#include "reduce.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

using namespace ncclfr::sim::nccl;

TEST_CASE("narrow float conversions round to nearest even and saturate like CUDA's") {
  CHECK(floatToHalf(1.0f) == 0x3c00);
  CHECK(floatToHalf(-2.0f) == 0xc000);
  CHECK(floatToHalf(1.0f / 3.0f) == 0x3555);
  CHECK(floatToHalf(65504.0f) == 0x7bff);
  CHECK(floatToHalf(1e6f) == 0x7c00);                 // overflow to infinity, as __float2half
  CHECK(floatToHalf(5.960464477539063e-08f) == 0x0001);  // smallest subnormal
  CHECK(halfToFloat(0x3555) == Approx(0.333251953125f));
  CHECK(halfToFloat(0x0001) == 5.960464477539063e-08f);
  CHECK(floatToBfloat16(1.0f / 3.0f) == 0x3eab);
  CHECK(bfloat16ToFloat(0x3f80) == 1.0f);
  CHECK(floatToFp8E4M3(1.0f) == 0x38);
  CHECK(floatToFp8E4M3(448.0f) == 0x7e);
  CHECK(floatToFp8E4M3(1000.0f) == 0x7e);  // saturates to the largest finite value
  CHECK(fp8E4M3ToFloat(0x7e) == 448.0f);
  CHECK(std::isnan(fp8E4M3ToFloat(0x7f)));
  CHECK(floatToFp8E4M3(1.0625f) == 0x38);  // halfway between 1.0 and 1.125: ties to even
  CHECK(floatToFp8E5M2(1.0f) == 0x3c);
  CHECK(floatToFp8E5M2(57344.0f) == 0x7b);
  CHECK(floatToFp8E5M2(1e9f) == 0x7b);
  CHECK(std::isinf(fp8E5M2ToFloat(0x7c)));
  for (int c = 0; c < 0x7f; ++c) {
    CHECK(floatToFp8E4M3(fp8E4M3ToFloat(static_cast<uint8_t>(c))) == c);
    CHECK(floatToFp8E4M3(-fp8E4M3ToFloat(static_cast<uint8_t>(c))) == (c | 0x80));
  }
  for (int c = 0; c < 0x7c; ++c) CHECK(floatToFp8E5M2(fp8E5M2ToFloat(static_cast<uint8_t>(c))) == c);
  for (uint32_t h = 0; h < 0x7c00; ++h) CHECK(floatToHalf(halfToFloat(static_cast<uint16_t>(h))) == h);
}

namespace {

// Stores v as an element of `type` at index i.
void put(std::vector<uint8_t>& buf, ncclDataType_t type, size_t i, double v) {
  uint8_t* p = buf.data() + i * typeSize(type);
  switch (type) {
    case ncclInt8: *reinterpret_cast<int8_t*>(p) = static_cast<int8_t>(v); break;
    case ncclUint8: *p = static_cast<uint8_t>(v); break;
    case ncclInt32: *reinterpret_cast<int32_t*>(p) = static_cast<int32_t>(v); break;
    case ncclUint32: *reinterpret_cast<uint32_t*>(p) = static_cast<uint32_t>(v); break;
    case ncclInt64: *reinterpret_cast<int64_t*>(p) = static_cast<int64_t>(v); break;
    case ncclUint64: *reinterpret_cast<uint64_t*>(p) = static_cast<uint64_t>(v); break;
    case ncclFloat16: *reinterpret_cast<uint16_t*>(p) = floatToHalf(static_cast<float>(v)); break;
    case ncclFloat32: *reinterpret_cast<float*>(p) = static_cast<float>(v); break;
    case ncclFloat64: *reinterpret_cast<double*>(p) = v; break;
    case ncclBfloat16: *reinterpret_cast<uint16_t*>(p) = floatToBfloat16(static_cast<float>(v)); break;
    case ncclFloat8e4m3: *p = floatToFp8E4M3(static_cast<float>(v)); break;
    case ncclFloat8e5m2: *p = floatToFp8E5M2(static_cast<float>(v)); break;
    default: break;
  }
}

double get(const std::vector<uint8_t>& buf, ncclDataType_t type, size_t i) {
  const uint8_t* p = buf.data() + i * typeSize(type);
  switch (type) {
    case ncclInt8: return *reinterpret_cast<const int8_t*>(p);
    case ncclUint8: return *p;
    case ncclInt32: return *reinterpret_cast<const int32_t*>(p);
    case ncclUint32: return *reinterpret_cast<const uint32_t*>(p);
    case ncclInt64: return static_cast<double>(*reinterpret_cast<const int64_t*>(p));
    case ncclUint64: return static_cast<double>(*reinterpret_cast<const uint64_t*>(p));
    case ncclFloat16: return halfToFloat(*reinterpret_cast<const uint16_t*>(p));
    case ncclFloat32: return *reinterpret_cast<const float*>(p);
    case ncclFloat64: return *reinterpret_cast<const double*>(p);
    case ncclBfloat16: return bfloat16ToFloat(*reinterpret_cast<const uint16_t*>(p));
    case ncclFloat8e4m3: return fp8E4M3ToFloat(*p);
    case ncclFloat8e5m2: return fp8E5M2ToFloat(*p);
    default: return 0;
  }
}

}  // namespace

TEST_CASE("every reduction operator over every type gives exact results on exactly representable inputs") {
  const ncclDataType_t types[] = {ncclInt8,    ncclUint8,   ncclInt32,    ncclUint32,     ncclInt64,     ncclUint64,
                                  ncclFloat16, ncclFloat32, ncclFloat64, ncclBfloat16, ncclFloat8e4m3, ncclFloat8e5m2};
  const ncclRedOp_t ops[] = {ncclSum, ncclProd, ncclMax, ncclMin, ncclAvg};
  constexpr int kRanks = 4;
  constexpr size_t kN = 6;
  for (ncclDataType_t type : types) {
    for (ncclRedOp_t op : ops) {
      CAPTURE(typeName(type), opName(op));
      std::vector<std::vector<uint8_t>> in(kRanks, std::vector<uint8_t>(kN * typeSize(type)));
      std::vector<double> expect(kN);
      for (size_t i = 0; i < kN; ++i) {
        double acc = 0;
        for (int r = 0; r < kRanks; ++r) {
          // Small values: products, sums and averages stay exact in every type (fp8 included).
          double v = static_cast<double>((static_cast<size_t>(r) + i) % 3) + (op == ncclAvg ? 2.0 * r : 1.0);
          put(in[static_cast<size_t>(r)], type, i, v);
          double x = get(in[static_cast<size_t>(r)], type, i);
          if (r == 0) {
            acc = x;
          } else if (op == ncclSum || op == ncclAvg) {
            acc += x;
          } else if (op == ncclProd) {
            acc *= x;
          } else if (op == ncclMax) {
            acc = std::max(acc, x);
          } else {
            acc = std::min(acc, x);
          }
        }
        if (op == ncclAvg) acc = (type == ncclFloat16 || type == ncclFloat32 || type == ncclFloat64 ||
                                  type == ncclBfloat16 || type == ncclFloat8e4m3 || type == ncclFloat8e5m2)
                                     ? acc / kRanks
                                     : std::trunc(acc / kRanks);
        expect[i] = acc;
      }
      std::vector<const void*> srcs;
      for (auto& b : in) srcs.push_back(b.data());
      std::vector<uint8_t> out(kN * typeSize(type));
      reduce(out.data(), srcs.data(), kRanks, kN, type, builtinOp(op, type, kRanks));
      for (size_t i = 0; i < kN; ++i) {
        CAPTURE(i);
        // Avg multiplies by a rounded 1/4 (exact) per element; fp8's coarse steps still hold these.
        CHECK(get(out, type, i) == Approx(expect[i]).epsilon(type == ncclFloat8e4m3 || type == ncclFloat8e5m2 ? 0.13 : 1e-6));
      }
    }
  }
}

TEST_CASE("integer sums wrap like the GPU's and half sums round after every step") {
  int8_t a[1] = {100}, b[1] = {100}, out[1] = {0};
  const void* srcs[] = {a, b};
  reduce(out, srcs, 2, 1, ncclInt8, builtinOp(ncclSum, ncclInt8, 2));
  CHECK(out[0] == static_cast<int8_t>(-56));
  // 2048 + 1 + 1 in half: 2049 is not representable, each step rounds back to 2048.
  uint16_t h[3] = {floatToHalf(2048.0f), floatToHalf(1.0f), floatToHalf(1.0f)};
  const void* hs[] = {&h[0], &h[1], &h[2]};
  uint16_t hout = 0;
  reduce(&hout, hs, 3, 1, ncclFloat16, builtinOp(ncclSum, ncclFloat16, 3));
  CHECK(halfToFloat(hout) == 2048.0f);
  // A user PreMulSum with a scalar read from memory when the reduction runs.
  float x[2] = {1.5f, -2.0f}, y[2] = {0.5f, 4.0f}, res[2] = {};
  float scalar = 2.0f;
  RedOp pm;
  pm.kind = RedKind::PreMulSum;
  pm.scalarPtr = &scalar;
  const void* fs[] = {x, y};
  reduce(res, fs, 2, 2, ncclFloat32, pm);
  CHECK(res[0] == 4.0f);
  CHECK(res[1] == 4.0f);
}
