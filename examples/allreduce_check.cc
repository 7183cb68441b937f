// allreduce_check: every NCCL collective, checked. Each rank runs all-reduce (every reduction
// operator), broadcast, ncclBcast, reduce, all-gather, reduce-scatter, all-to-all, gather, scatter
// and a send/recv ring over several element types, then compares every output element with the
// value NCCL must produce. A plain CUDA + NCCL program: it runs unchanged on GPUs and on sim/.
//
//   allreduce_check [--uid-file PATH] [--count N]
//
// Environment: RANK, WORLD_SIZE, LOCAL_RANK (torchrun, ncclfr-simrun); the ncclUniqueId goes
// through --uid-file or NCCL_UID_FILE (see uid_exchange.h).
// Exit codes: 0 every result correct; 1 an NCCL or CUDA error; 2 bad usage; 3 a wrong result.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "uid_exchange.h"

namespace {

int gRank = 0;
int gSize = 1;
long gWrong = 0;

#define CHECK_CUDA(x)                                                                          \
  do {                                                                                         \
    cudaError_t e_ = (x);                                                                      \
    if (e_ != cudaSuccess) {                                                                   \
      std::fprintf(stderr, "rank %d: %s failed: %s\n", gRank, #x, cudaGetErrorString(e_));   \
      std::exit(1);                                                                            \
    }                                                                                          \
  } while (0)
#define CHECK_NCCL(x)                                                                          \
  do {                                                                                         \
    ncclResult_t r_ = (x);                                                                     \
    if (r_ != ncclSuccess) {                                                                   \
      std::fprintf(stderr, "rank %d: %s failed: %s\n", gRank, #x, ncclGetErrorString(r_));   \
      std::exit(1);                                                                            \
    }                                                                                          \
  } while (0)

int envInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

// Small integers are exact in every type used here, so results can be compared exactly.
double input(int rank, size_t i) { return static_cast<double>((rank * 7 + static_cast<int>(i) * 3) % 11 + 1); }

template <typename T>
struct Type;
template <>
struct Type<float> {
  static constexpr ncclDataType_t nccl = ncclFloat32;
  static float from(double v) { return static_cast<float>(v); }
  static double to(float v) { return v; }
  static constexpr double kExact = 16777216.0;  // largest range of exact integers
};
template <>
struct Type<double> {
  static constexpr ncclDataType_t nccl = ncclFloat64;
  static double from(double v) { return v; }
  static double to(double v) { return v; }
  static constexpr double kExact = 9007199254740992.0;
};
template <>
struct Type<int32_t> {
  static constexpr ncclDataType_t nccl = ncclInt32;
  static int32_t from(double v) { return static_cast<int32_t>(v); }
  static double to(int32_t v) { return v; }
  static constexpr double kExact = 2147483647.0;
};
template <>
struct Type<uint8_t> {
  static constexpr ncclDataType_t nccl = ncclUint8;
  static uint8_t from(double v) { return static_cast<uint8_t>(v); }
  static double to(uint8_t v) { return v; }
  static constexpr double kExact = 255.0;
};
template <>
struct Type<__half> {
  static constexpr ncclDataType_t nccl = ncclFloat16;
  static __half from(double v) { return __float2half(static_cast<float>(v)); }
  static double to(__half v) { return __half2float(v); }
  static constexpr double kExact = 2048.0;
};

// Elements whose exact value the type cannot hold (products overflow) are not compared.
template <typename T>
void expectEqual(const char* what, const std::vector<T>& got, const std::vector<double>& want) {
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::fabs(want[i]) > Type<T>::kExact) continue;
    double g = Type<T>::to(got[i]);
    if (std::fabs(g - want[i]) > 1e-3 * std::max(1.0, std::fabs(want[i]))) {
      if (gWrong < 10) std::fprintf(stderr, "rank %d: %s[%zu] = %g, expected %g\n", gRank, what, i, g, want[i]);
      ++gWrong;
    }
  }
}

template <typename T>
class Buffer {
 public:
  explicit Buffer(size_t n) : host_(n) { CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&dev_), n * sizeof(T) + 1)); }
  ~Buffer() { (void)cudaFree(dev_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  T* dev() { return dev_; }
  void upload(cudaStream_t s) {
    CHECK_CUDA(cudaMemcpyAsync(dev_, host_.data(), host_.size() * sizeof(T), cudaMemcpyHostToDevice, s));
  }
  std::vector<T>& download(cudaStream_t s) {
    CHECK_CUDA(cudaMemcpyAsync(host_.data(), dev_, host_.size() * sizeof(T), cudaMemcpyDeviceToHost, s));
    CHECK_CUDA(cudaStreamSynchronize(s));
    return host_;
  }
  std::vector<T>& host() { return host_; }

 private:
  std::vector<T> host_;
  T* dev_ = nullptr;
};

template <typename T>
void run(ncclComm_t comm, cudaStream_t s, size_t count) {
  const int n = gSize, me = gRank;
  const ncclDataType_t dt = Type<T>::nccl;
  Buffer<T> send(count * n), recv(count * n);
  for (size_t i = 0; i < count * n; ++i) send.host()[i] = Type<T>::from(input(me, i));
  send.upload(s);

  const ncclRedOp_t ops[] = {ncclSum, ncclProd, ncclMax, ncclMin, ncclAvg};
  for (ncclRedOp_t op : ops) {
    size_t c = count;
    CHECK_NCCL(ncclAllReduce(send.dev(), recv.dev(), c, dt, op, comm, s));
    std::vector<double> want(c);
    for (size_t i = 0; i < c; ++i) {
      double acc = input(0, i);
      for (int r = 1; r < n; ++r) {
        double x = input(r, i);
        if (op == ncclSum || op == ncclAvg) acc += x;
        if (op == ncclProd) acc *= x;
        if (op == ncclMax) acc = std::max(acc, x);
        if (op == ncclMin) acc = std::min(acc, x);
      }
      if (op == ncclAvg) acc = (dt == ncclInt32 || dt == ncclUint8) ? std::trunc(acc / n) : acc / n;
      want[i] = acc;
    }
    std::vector<T> got(recv.download(s).begin(), recv.host().begin() + static_cast<long>(c));
    // Averages of non-dyadic world sizes are inexact in half precision; compare them loosely.
    if (op == ncclAvg && dt == ncclFloat16) {
      for (size_t i = 0; i < c; ++i) {
        double g = Type<T>::to(got[i]);
        if (std::fabs(g - want[i]) > 0.02 * want[i]) ++gWrong;
      }
    } else {
      expectEqual("allreduce", got, want);
    }
  }

  const int root = n - 1;
  CHECK_NCCL(ncclBroadcast(send.dev(), recv.dev(), count, dt, root, comm, s));
  std::vector<double> want(count);
  for (size_t i = 0; i < count; ++i) want[i] = input(root, i);
  std::vector<T> got(recv.download(s).begin(), recv.host().begin() + static_cast<long>(count));
  expectEqual("broadcast", got, want);

  // ncclBcast is in place: every rank ends with the root's data.
  send.upload(s);
  CHECK_NCCL(ncclBcast(send.dev(), count, dt, 0, comm, s));
  for (size_t i = 0; i < count; ++i) want[i] = input(0, i);
  got.assign(send.download(s).begin(), send.host().begin() + static_cast<long>(count));
  expectEqual("bcast", got, want);
  for (size_t i = 0; i < count * n; ++i) send.host()[i] = Type<T>::from(input(me, i));
  send.upload(s);

  CHECK_NCCL(ncclReduce(send.dev(), recv.dev(), count, dt, ncclMax, root, comm, s));
  if (me == root) {
    for (size_t i = 0; i < count; ++i) {
      want[i] = 0;
      for (int r = 0; r < n; ++r) want[i] = std::max(want[i], input(r, i));
    }
    got.assign(recv.download(s).begin(), recv.host().begin() + static_cast<long>(count));
    expectEqual("reduce", got, want);
  }

  CHECK_NCCL(ncclAllGather(send.dev(), recv.dev(), count, dt, comm, s));
  std::vector<double> all(count * n);
  for (int r = 0; r < n; ++r) {
    for (size_t i = 0; i < count; ++i) all[r * count + i] = input(r, i);
  }
  expectEqual("allgather", recv.download(s), all);

  CHECK_NCCL(ncclReduceScatter(send.dev(), recv.dev(), count, dt, ncclSum, comm, s));
  for (size_t i = 0; i < count; ++i) {
    want[i] = 0;
    for (int r = 0; r < n; ++r) want[i] += input(r, me * count + i);
  }
  got.assign(recv.download(s).begin(), recv.host().begin() + static_cast<long>(count));
  expectEqual("reducescatter", got, want);

  CHECK_NCCL(ncclAlltoAll(send.dev(), recv.dev(), count, dt, comm, s));
  for (int r = 0; r < n; ++r) {
    for (size_t i = 0; i < count; ++i) all[r * count + i] = input(r, me * count + i);
  }
  expectEqual("alltoall", recv.download(s), all);

  CHECK_NCCL(ncclGather(send.dev(), recv.dev(), count, dt, 0, comm, s));
  if (me == 0) {
    for (int r = 0; r < n; ++r) {
      for (size_t i = 0; i < count; ++i) all[r * count + i] = input(r, i);
    }
    expectEqual("gather", recv.download(s), all);
  }

  CHECK_NCCL(ncclScatter(send.dev(), recv.dev(), count, dt, root, comm, s));
  for (size_t i = 0; i < count; ++i) want[i] = input(root, me * count + i);
  got.assign(recv.download(s).begin(), recv.host().begin() + static_cast<long>(count));
  expectEqual("scatter", got, want);

  // A ring in a group: everyone sends to the next rank and receives from the previous one.
  CHECK_NCCL(ncclGroupStart());
  CHECK_NCCL(ncclSend(send.dev(), count, dt, (me + 1) % n, comm, s));
  CHECK_NCCL(ncclRecv(recv.dev(), count, dt, (me + n - 1) % n, comm, s));
  CHECK_NCCL(ncclGroupEnd());
  for (size_t i = 0; i < count; ++i) want[i] = input((me + n - 1) % n, i);
  got.assign(recv.download(s).begin(), recv.host().begin() + static_cast<long>(count));
  expectEqual("sendrecv", got, want);
}

}  // namespace

int main(int argc, char** argv) {
  std::string uidFile = std::getenv("NCCL_UID_FILE") != nullptr ? std::getenv("NCCL_UID_FILE") : "";
  size_t count = 1000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--uid-file" && i + 1 < argc) {
      uidFile = argv[++i];
    } else if (a == "--count" && i + 1 < argc) {
      count = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: allreduce_check [--uid-file PATH] [--count N]\n");
      return 2;
    }
  }
  if (uidFile.empty() || count == 0) {
    std::fprintf(stderr, "allreduce_check: give --uid-file or NCCL_UID_FILE, and a positive --count\n");
    return 2;
  }
  gRank = envInt("RANK", 0);
  gSize = envInt("WORLD_SIZE", 1);
  CHECK_CUDA(cudaSetDevice(envInt("LOCAL_RANK", 0)));
  ncclUniqueId id;
  if (!examples::exchangeUniqueId(uidFile, gRank, &id)) return 1;
  ncclComm_t comm;
  CHECK_NCCL(ncclCommInitRank(&comm, gSize, id, gRank));
  cudaStream_t s;
  CHECK_CUDA(cudaStreamCreate(&s));
  run<float>(comm, s, count);
  run<double>(comm, s, count);
  run<int32_t>(comm, s, count);
  run<uint8_t>(comm, s, count);
  run<__half>(comm, s, count);
  CHECK_CUDA(cudaStreamSynchronize(s));
  CHECK_NCCL(ncclCommDestroy(comm));
  CHECK_CUDA(cudaStreamDestroy(s));
  if (gWrong != 0) {
    std::fprintf(stderr, "rank %d: %ld wrong result element(s)\n", gRank, gWrong);
    return 3;
  }
  std::printf("rank %d of %d: every collective correct\n", gRank, gSize);
  return 0;
}
