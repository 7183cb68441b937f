#include "reduce.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <type_traits>

namespace ncclfr::sim::nccl {

size_t typeSize(ncclDataType_t type) {
  switch (type) {
    case ncclInt8: case ncclUint8: case ncclFloat8e4m3: case ncclFloat8e5m2: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
    case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
    default: return 0;
  }
}

const char* typeName(ncclDataType_t type) {
  switch (type) {
    case ncclInt8: return "int8";
    case ncclUint8: return "uint8";
    case ncclInt32: return "int32";
    case ncclUint32: return "uint32";
    case ncclInt64: return "int64";
    case ncclUint64: return "uint64";
    case ncclFloat16: return "half";
    case ncclFloat32: return "float";
    case ncclFloat64: return "double";
    case ncclBfloat16: return "bfloat16";
    case ncclFloat8e4m3: return "fp8e4m3";
    case ncclFloat8e5m2: return "fp8e5m2";
    default: return "invalid";
  }
}

const char* opName(ncclRedOp_t op) {
  switch (op) {
    case ncclSum: return "sum";
    case ncclProd: return "prod";
    case ncclMax: return "max";
    case ncclMin: return "min";
    case ncclAvg: return "avg";
    default: return "premulsum";
  }
}

// ---- conversions ------------------------------------------------------------------------------
uint16_t floatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t exp = (x >> 23) & 0xffu;
  uint32_t mant = x & 0x7fffffu;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant != 0 ? 0x200u : 0u));
  int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    int shift = 14 - e;
    uint32_t h = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is correct
  return static_cast<uint16_t>(h);
}

float halfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  uint32_t bits = exp == 0x1f ? (sign | 0x7f800000u | (mant << 13)) : (sign | ((exp - 15 + 127) << 23) | (mant << 13));
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t floatToBfloat16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

float bfloat16ToFloat(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

namespace {

// FP8 formats, decoded exactly; encoding picks the nearest finite value (ties to an even code) and
// saturates, like CUDA's __nv_fp8 conversions with __NV_SATFINITE.
template <int kExpBits, int kMantBits, bool kHasInf>
struct Fp8 {
  static constexpr int kBias = (1 << (kExpBits - 1)) - 1;
  static float decode(uint8_t v) {
    bool neg = (v & 0x80u) != 0;
    int e = (v >> kMantBits) & ((1 << kExpBits) - 1);
    int m = v & ((1 << kMantBits) - 1);
    int maxE = (1 << kExpBits) - 1;
    float r;
    if (kHasInf && e == maxE) {
      r = m == 0 ? INFINITY : NAN;
    } else if (!kHasInf && e == maxE && m == (1 << kMantBits) - 1) {
      r = NAN;
    } else if (e == 0) {
      r = std::ldexp(static_cast<float>(m), 1 - kBias - kMantBits);
    } else {
      r = std::ldexp(1.0f + static_cast<float>(m) / (1 << kMantBits), e - kBias);
    }
    return neg ? -r : r;
  }
  static constexpr int kMaxFiniteCode = kHasInf ? (((1 << kExpBits) - 1) << kMantBits) - 1 : 0x7e;
  static const std::array<float, 128>& table() {
    static const std::array<float, 128> t = [] {
      std::array<float, 128> a{};
      for (int c = 0; c < 128; ++c) a[static_cast<size_t>(c)] = decode(static_cast<uint8_t>(c));
      return a;
    }();
    return t;
  }
  static uint8_t encode(float f) {
    uint8_t sign = std::signbit(f) ? 0x80u : 0u;
    if (std::isnan(f)) return static_cast<uint8_t>(0x7fu);
    float a = std::fabs(f);
    const auto& t = table();
    if (a >= t[kMaxFiniteCode]) return static_cast<uint8_t>(sign | kMaxFiniteCode);
    int lo = 0, hi = kMaxFiniteCode;  // t[lo] <= a < t[hi]
    while (hi - lo > 1) {
      int mid = (lo + hi) / 2;
      if (t[static_cast<size_t>(mid)] <= a) lo = mid; else hi = mid;
    }
    float dlo = a - t[static_cast<size_t>(lo)], dhi = t[static_cast<size_t>(hi)] - a;
    int code = dlo < dhi ? lo : (dhi < dlo ? hi : ((lo & 1) == 0 ? lo : hi));
    return static_cast<uint8_t>(sign | code);
  }
};
using E4M3 = Fp8<4, 3, false>;
using E5M2 = Fp8<5, 2, true>;

}  // namespace

uint8_t floatToFp8E4M3(float f) { return E4M3::encode(f); }
float fp8E4M3ToFloat(uint8_t v) { return E4M3::decode(v); }
uint8_t floatToFp8E5M2(float f) { return E5M2::encode(f); }
float fp8E5M2ToFloat(uint8_t v) { return E5M2::decode(v); }

// ---- reductions -------------------------------------------------------------------------------
namespace {

template <typename T>
struct IntTraits {
  using Compute = T;
  using U = std::make_unsigned_t<T>;
  static T load(const void* p, size_t i) { return static_cast<const T*>(p)[i]; }
  static void store(void* p, size_t i, T v) { static_cast<T*>(p)[i] = v; }
  static T round(T v) { return v; }
  static T fromScalar(uint64_t bits) {
    T v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  // Wrap around like the GPU's integer units rather than invoke signed-overflow UB.
  static T add(T a, T b) { return static_cast<T>(static_cast<U>(a) + static_cast<U>(b)); }
  static T mul(T a, T b) { return static_cast<T>(static_cast<U>(a) * static_cast<U>(b)); }
  static T div(T a, uint64_t n) { return static_cast<T>(a / static_cast<T>(n)); }
};

template <typename T>
struct FloatTraits {
  using Compute = T;
  static T load(const void* p, size_t i) { return static_cast<const T*>(p)[i]; }
  static void store(void* p, size_t i, T v) { static_cast<T*>(p)[i] = v; }
  static T round(T v) { return v; }
  static T fromScalar(uint64_t bits) {
    T v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  static T add(T a, T b) { return a + b; }
  static T mul(T a, T b) { return a * b; }
  static T div(T a, uint64_t n) { return a / static_cast<T>(n); }
};

// A narrow floating type computed in float and rounded back after every operation.
template <typename Storage, Storage (*Enc)(float), float (*Dec)(Storage)>
struct NarrowTraits {
  using Compute = float;
  static float load(const void* p, size_t i) { return Dec(static_cast<const Storage*>(p)[i]); }
  static void store(void* p, size_t i, float v) { static_cast<Storage*>(p)[i] = Enc(v); }
  static float round(float v) { return Dec(Enc(v)); }
  static float fromScalar(uint64_t bits) {
    Storage s;
    std::memcpy(&s, &bits, sizeof s);
    return Dec(s);
  }
  static float add(float a, float b) { return a + b; }
  static float mul(float a, float b) { return a * b; }
  static float div(float a, uint64_t n) { return a / static_cast<float>(n); }
};

template <typename Tr>
void reduceT(void* dst, const void* const* srcs, int nsrc, size_t n, const RedOp& op, size_t elemSize) {
  using C = typename Tr::Compute;
  uint64_t scalarBits = op.scalar;
  if (op.kind == RedKind::PreMulSum && op.scalarPtr != nullptr) {
    scalarBits = 0;
    std::memcpy(&scalarBits, op.scalarPtr, elemSize);
  }
  const C scalar = Tr::fromScalar(scalarBits);
  auto pre = [&](C x) { return op.kind == RedKind::PreMulSum ? Tr::round(Tr::mul(x, scalar)) : x; };
  for (size_t i = 0; i < n; ++i) {
    C acc = pre(Tr::load(srcs[0], i));
    for (int r = 1; r < nsrc; ++r) {
      C x = pre(Tr::load(srcs[r], i));
      switch (op.kind) {
        case RedKind::Sum: case RedKind::PreMulSum: case RedKind::SumPostDiv: acc = Tr::add(acc, x); break;
        case RedKind::Prod: acc = Tr::mul(acc, x); break;
        case RedKind::Max: acc = std::max(acc, x); break;
        case RedKind::Min: acc = std::min(acc, x); break;
      }
      acc = Tr::round(acc);
    }
    if (op.kind == RedKind::SumPostDiv) acc = Tr::round(Tr::div(acc, op.scalar));
    Tr::store(dst, i, acc);
  }
}

using HalfTraits = NarrowTraits<uint16_t, floatToHalf, halfToFloat>;
using Bf16Traits = NarrowTraits<uint16_t, floatToBfloat16, bfloat16ToFloat>;
using E4M3Traits = NarrowTraits<uint8_t, floatToFp8E4M3, fp8E4M3ToFloat>;
using E5M2Traits = NarrowTraits<uint8_t, floatToFp8E5M2, fp8E5M2ToFloat>;

template <typename T>
uint64_t scalarBitsOf(T v) {
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof v);
  return bits;
}

}  // namespace

RedOp builtinOp(ncclRedOp_t op, ncclDataType_t type, int nranks) {
  RedOp r;
  switch (op) {
    case ncclSum: r.kind = RedKind::Sum; break;
    case ncclProd: r.kind = RedKind::Prod; break;
    case ncclMax: r.kind = RedKind::Max; break;
    case ncclMin: r.kind = RedKind::Min; break;
    default: {  // ncclAvg
      double inv = 1.0 / nranks;
      switch (type) {
        case ncclFloat16: r.kind = RedKind::PreMulSum; r.scalar = floatToHalf(static_cast<float>(inv)); break;
        case ncclBfloat16: r.kind = RedKind::PreMulSum; r.scalar = floatToBfloat16(static_cast<float>(inv)); break;
        case ncclFloat8e4m3: r.kind = RedKind::PreMulSum; r.scalar = floatToFp8E4M3(static_cast<float>(inv)); break;
        case ncclFloat8e5m2: r.kind = RedKind::PreMulSum; r.scalar = floatToFp8E5M2(static_cast<float>(inv)); break;
        case ncclFloat32: r.kind = RedKind::PreMulSum; r.scalar = scalarBitsOf(static_cast<float>(inv)); break;
        case ncclFloat64: r.kind = RedKind::PreMulSum; r.scalar = scalarBitsOf(inv); break;
        default: r.kind = RedKind::SumPostDiv; r.scalar = static_cast<uint64_t>(nranks); break;
      }
    }
  }
  return r;
}

void reduce(void* dst, const void* const* srcs, int nsrc, size_t n, ncclDataType_t type, const RedOp& op) {
  const size_t es = typeSize(type);
  switch (type) {
    case ncclInt8: reduceT<IntTraits<int8_t>>(dst, srcs, nsrc, n, op, es); break;
    case ncclUint8: reduceT<IntTraits<uint8_t>>(dst, srcs, nsrc, n, op, es); break;
    case ncclInt32: reduceT<IntTraits<int32_t>>(dst, srcs, nsrc, n, op, es); break;
    case ncclUint32: reduceT<IntTraits<uint32_t>>(dst, srcs, nsrc, n, op, es); break;
    case ncclInt64: reduceT<IntTraits<int64_t>>(dst, srcs, nsrc, n, op, es); break;
    case ncclUint64: reduceT<IntTraits<uint64_t>>(dst, srcs, nsrc, n, op, es); break;
    case ncclFloat16: reduceT<HalfTraits>(dst, srcs, nsrc, n, op, es); break;
    case ncclFloat32: reduceT<FloatTraits<float>>(dst, srcs, nsrc, n, op, es); break;
    case ncclFloat64: reduceT<FloatTraits<double>>(dst, srcs, nsrc, n, op, es); break;
    case ncclBfloat16: reduceT<Bf16Traits>(dst, srcs, nsrc, n, op, es); break;
    case ncclFloat8e4m3: reduceT<E4M3Traits>(dst, srcs, nsrc, n, op, es); break;
    case ncclFloat8e5m2: reduceT<E5M2Traits>(dst, srcs, nsrc, n, op, es); break;
    default: break;
  }
}

}  // namespace ncclfr::sim::nccl
