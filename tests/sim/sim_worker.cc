// One rank of a test job on sim/, started by ncclfr-simrun from sim_job_test. The first argument
// names a scenario; each checks real behaviour and exits 0 only if every check held (3 otherwise,
// 1 on an unexpected NCCL or CUDA error). Ranks coordinate through marker files next to
// NCCL_UID_FILE (a fresh folder per job).
#include <cuda_runtime.h>
#include <nccl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "sim/nccl/reduce.h"
#include "sim/nccl/segment.h"
#include "uid_exchange.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace simn = ncclfr::sim::nccl;

int gRank = 0, gSize = 1, gLocal = 0;
std::string gDir;
int gFailures = 0;

#define EXPECT(cond)                                                                      \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "rank %d: %s:%d: check failed: %s\n", gRank, __FILE__, __LINE__, #cond); \
      ++gFailures;                                                                        \
    }                                                                                     \
  } while (0)
#define NCCL_OK(x)                                                                                      \
  do {                                                                                                  \
    ncclResult_t r_ = (x);                                                                              \
    if (r_ != ncclSuccess) {                                                                            \
      std::fprintf(stderr, "rank %d: %s:%d: %s -> %s\n", gRank, __FILE__, __LINE__, #x, ncclGetErrorString(r_)); \
      std::exit(1);                                                                                     \
    }                                                                                                   \
  } while (0)
#define CUDA_OK(x)                                                                                      \
  do {                                                                                                  \
    cudaError_t e_ = (x);                                                                               \
    if (e_ != cudaSuccess) {                                                                            \
      std::fprintf(stderr, "rank %d: %s:%d: %s -> %s\n", gRank, __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                                     \
    }                                                                                                   \
  } while (0)

int finish(const char* scenario) {
  if (gFailures != 0) {
    std::fprintf(stderr, "rank %d: %s: %d check(s) failed\n", gRank, scenario, gFailures);
    return 3;
  }
  std::printf("rank %d: %s passed\n", gRank, scenario);
  std::fflush(stdout);
  return 0;
}

void mark(const std::string& name) { std::ofstream(gDir + "/marker." + name) << "1"; }

// Waits (polling a file, with a generous limit for loaded machines) until a peer has marked `name`.
bool waitMark(const std::string& name, std::chrono::seconds limit = 120s) {
  auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (access((gDir + "/marker." + name).c_str(), F_OK) == 0) return true;
    std::this_thread::sleep_for(5ms);
  }
  std::fprintf(stderr, "rank %d: no marker %s after %lld s\n", gRank, name.c_str(), static_cast<long long>(limit.count()));
  return false;
}

ncclComm_t initWorld(ncclConfig_t* config = nullptr, const std::string& uidName = "nccl-uid") {
  ncclUniqueId id;
  if (!examples::exchangeUniqueId(gDir + "/" + uidName, gRank, &id, 120s)) std::exit(1);
  ncclComm_t comm = nullptr;
  if (config == nullptr) {
    NCCL_OK(ncclCommInitRank(&comm, gSize, id, gRank));
  } else {
    ncclResult_t r = ncclCommInitRankConfig(&comm, gSize, id, gRank, config);
    if (r != ncclSuccess && r != ncclInProgress) NCCL_OK(r);
  }
  return comm;
}

// Holds that a stream stays blocked: it is queried repeatedly for `span` and never completes.
bool staysBlocked(cudaStream_t s, std::chrono::milliseconds span = 500ms) {
  auto until = Clock::now() + span;
  while (Clock::now() < until) {
    if (cudaStreamQuery(s) != cudaErrorNotReady) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

ncclResult_t waitAsync(ncclComm_t comm, std::chrono::seconds limit = 120s) {
  auto until = Clock::now() + limit;
  ncclResult_t state = ncclInProgress;
  while (Clock::now() < until) {
    NCCL_OK(ncclCommGetAsyncError(comm, &state));
    if (state != ncclInProgress) return state;
    std::this_thread::sleep_for(2ms);
  }
  return state;
}

// ---- element helpers for every type -------------------------------------------------------
double valueOf(int rank, size_t i) { return static_cast<double>((rank + static_cast<int>(i)) % 5 + 1); }

void store(std::vector<uint8_t>& b, ncclDataType_t t, size_t i, double v) {
  uint8_t* p = b.data() + i * simn::typeSize(t);
  switch (t) {
    case ncclInt8: *reinterpret_cast<int8_t*>(p) = static_cast<int8_t>(v); break;
    case ncclUint8: *p = static_cast<uint8_t>(v); break;
    case ncclInt32: *reinterpret_cast<int32_t*>(p) = static_cast<int32_t>(v); break;
    case ncclUint32: *reinterpret_cast<uint32_t*>(p) = static_cast<uint32_t>(v); break;
    case ncclInt64: *reinterpret_cast<int64_t*>(p) = static_cast<int64_t>(v); break;
    case ncclUint64: *reinterpret_cast<uint64_t*>(p) = static_cast<uint64_t>(v); break;
    case ncclFloat16: *reinterpret_cast<uint16_t*>(p) = simn::floatToHalf(static_cast<float>(v)); break;
    case ncclFloat32: *reinterpret_cast<float*>(p) = static_cast<float>(v); break;
    case ncclFloat64: *reinterpret_cast<double*>(p) = v; break;
    case ncclBfloat16: *reinterpret_cast<uint16_t*>(p) = simn::floatToBfloat16(static_cast<float>(v)); break;
    case ncclFloat8e4m3: *p = simn::floatToFp8E4M3(static_cast<float>(v)); break;
    case ncclFloat8e5m2: *p = simn::floatToFp8E5M2(static_cast<float>(v)); break;
    default: break;
  }
}

double load(const std::vector<uint8_t>& b, ncclDataType_t t, size_t i) {
  const uint8_t* p = b.data() + i * simn::typeSize(t);
  switch (t) {
    case ncclInt8: return *reinterpret_cast<const int8_t*>(p);
    case ncclUint8: return *p;
    case ncclInt32: return *reinterpret_cast<const int32_t*>(p);
    case ncclUint32: return *reinterpret_cast<const uint32_t*>(p);
    case ncclInt64: return static_cast<double>(*reinterpret_cast<const int64_t*>(p));
    case ncclUint64: return static_cast<double>(*reinterpret_cast<const uint64_t*>(p));
    case ncclFloat16: return simn::halfToFloat(*reinterpret_cast<const uint16_t*>(p));
    case ncclFloat32: return *reinterpret_cast<const float*>(p);
    case ncclFloat64: return *reinterpret_cast<const double*>(p);
    case ncclBfloat16: return simn::bfloat16ToFloat(*reinterpret_cast<const uint16_t*>(p));
    case ncclFloat8e4m3: return simn::fp8E4M3ToFloat(*p);
    case ncclFloat8e5m2: return simn::fp8E5M2ToFloat(*p);
    default: return 0;
  }
}

bool isFloat(ncclDataType_t t) {
  return t == ncclFloat16 || t == ncclFloat32 || t == ncclFloat64 || t == ncclBfloat16 || t == ncclFloat8e4m3 ||
         t == ncclFloat8e5m2;
}

struct DevBuf {
  std::vector<uint8_t> host;
  void* dev = nullptr;
  explicit DevBuf(size_t bytes) : host(bytes) { CUDA_OK(cudaMalloc(&dev, bytes + 1)); }
  ~DevBuf() { (void)cudaFree(dev); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  void up(cudaStream_t s) { CUDA_OK(cudaMemcpyAsync(dev, host.data(), host.size(), cudaMemcpyHostToDevice, s)); }
  void down(cudaStream_t s) {
    CUDA_OK(cudaMemcpyAsync(host.data(), dev, host.size(), cudaMemcpyDeviceToHost, s));
    CUDA_OK(cudaStreamSynchronize(s));
  }
};

// The value of `v` once stored in type t (rounded, saturated).
double roundTo(ncclDataType_t t, double v) {
  std::vector<uint8_t> one(simn::typeSize(t));
  store(one, t, 0, v);
  return load(one, t, 0);
}

double maxExact(ncclDataType_t t) {
  switch (t) {
    case ncclInt8: return 127;
    case ncclUint8: return 255;
    case ncclInt32: return 2147483647.0;
    case ncclUint32: return 4294967295.0;
    default: return 9007199254740992.0;
  }
}

// What element i of an all-reduce must hold: rank order 0..n-1, every step rounded to the type (as
// NCCL's kernels do in the element type), ncclAvg as a sum of x * (1/n) for floating types and a
// truncated division for integer ones. NaN for an integer product the type cannot hold.
double expectedReduction(ncclDataType_t t, ncclRedOp_t op, size_t i) {
  const bool flt = isFloat(t);
  const double scale = roundTo(t, 1.0 / gSize);
  auto pre = [&](double x) { return op == ncclAvg && flt ? roundTo(t, x * scale) : x; };
  double acc = pre(valueOf(0, i));
  for (int r = 1; r < gSize; ++r) {
    double x = pre(valueOf(r, i));
    acc = op == ncclProd ? acc * x : op == ncclMax ? std::max(acc, x) : op == ncclMin ? std::min(acc, x) : acc + x;
    if (flt) acc = roundTo(t, acc);
  }
  if (!flt && std::fabs(acc) > maxExact(t)) return NAN;
  if (op == ncclAvg && !flt) acc = std::trunc(acc / gSize);
  return acc;
}

void expectNear(const char* what, ncclDataType_t t, double got, double want, size_t i) {
  double tol = 1e-9 * std::max(1.0, std::fabs(want));
  if (std::fabs(got - want) > tol) {
    if (gFailures < 20) {
      std::fprintf(stderr, "rank %d: %s %s[%zu] = %g, expected %g\n", gRank, simn::typeName(t), what, i, got, want);
    }
    ++gFailures;
  }
}

// ---- scenarios ----------------------------------------------------------------------------

// Every collective, every type, every reduction operator, results checked element by element.
int collectives(size_t count) {
  ncclComm_t comm = initWorld();
  cudaStream_t s;
  CUDA_OK(cudaStreamCreate(&s));
  const int n = gSize, me = gRank;
  const ncclDataType_t types[] = {ncclInt8,    ncclUint8,   ncclInt32,    ncclUint32,     ncclInt64,     ncclUint64,
                                  ncclFloat16, ncclFloat32, ncclFloat64, ncclBfloat16, ncclFloat8e4m3, ncclFloat8e5m2};
  for (ncclDataType_t t : types) {
    const size_t es = simn::typeSize(t);
    DevBuf send(count * n * es), recv(count * n * es);
    for (size_t i = 0; i < count * n; ++i) store(send.host, t, i, valueOf(me, i));
    send.up(s);
    for (ncclRedOp_t op : {ncclSum, ncclProd, ncclMax, ncclMin, ncclAvg}) {
      NCCL_OK(ncclAllReduce(send.dev, recv.dev, count, t, op, comm, s));
      recv.down(s);
      for (size_t i = 0; i < count; ++i) {
        double want = expectedReduction(t, op, i);
        if (std::isnan(want)) continue;  // an integer product that overflows the type
        expectNear("allreduce", t, load(recv.host, t, i), want, i);
      }
    }
    const int root = (n - 1) / 2;
    NCCL_OK(ncclReduce(send.dev, recv.dev, count, t, ncclSum, root, comm, s));
    recv.down(s);
    if (me == root) {
      for (size_t i = 0; i < count; ++i) expectNear("reduce", t, load(recv.host, t, i), expectedReduction(t, ncclSum, i), i);
    }
    NCCL_OK(ncclBroadcast(send.dev, recv.dev, count, t, root, comm, s));
    recv.down(s);
    for (size_t i = 0; i < count; ++i) expectNear("broadcast", t, load(recv.host, t, i), valueOf(root, i), i);
    NCCL_OK(ncclAllGather(send.dev, recv.dev, count, t, comm, s));
    recv.down(s);
    for (int r = 0; r < n; ++r) {
      for (size_t i = 0; i < count; ++i) {
        expectNear("allgather", t, load(recv.host, t, r * count + i), valueOf(r, i), r * count + i);
      }
    }
    NCCL_OK(ncclReduceScatter(send.dev, recv.dev, count, t, ncclMax, comm, s));
    recv.down(s);
    for (size_t i = 0; i < count; ++i) {
      double acc = 0;
      for (int r = 0; r < n; ++r) acc = std::max(acc, valueOf(r, me * count + i));
      expectNear("reducescatter", t, load(recv.host, t, i), acc, i);
    }
    NCCL_OK(ncclAlltoAll(send.dev, recv.dev, count, t, comm, s));
    recv.down(s);
    for (int r = 0; r < n; ++r) {
      for (size_t i = 0; i < count; ++i) {
        expectNear("alltoall", t, load(recv.host, t, r * count + i), valueOf(r, me * count + i), i);
      }
    }
    NCCL_OK(ncclGather(send.dev, recv.dev, count, t, root, comm, s));
    recv.down(s);
    if (me == root) {
      for (int r = 0; r < n; ++r) {
        for (size_t i = 0; i < count; ++i) {
          expectNear("gather", t, load(recv.host, t, r * count + i), valueOf(r, i), i);
        }
      }
    }
    NCCL_OK(ncclScatter(send.dev, recv.dev, count, t, root, comm, s));
    recv.down(s);
    for (size_t i = 0; i < count; ++i) expectNear("scatter", t, load(recv.host, t, i), valueOf(root, me * count + i), i);
    // In place: all-gather from the rank's own slot of the output, all-reduce onto the input.
    for (size_t i = 0; i < count; ++i) store(recv.host, t, me * count + i, valueOf(me, i));
    recv.up(s);
    NCCL_OK(ncclAllGather(static_cast<uint8_t*>(recv.dev) + me * count * es, recv.dev, count, t, comm, s));
    recv.down(s);
    for (int r = 0; r < n; ++r) {
      for (size_t i = 0; i < count; ++i) {
        expectNear("allgather-in-place", t, load(recv.host, t, r * count + i), valueOf(r, i), i);
      }
    }
  }
  // A zero-count collective completes too.
  NCCL_OK(ncclAllReduce(nullptr, nullptr, 0, ncclFloat, ncclSum, comm, s));
  CUDA_OK(cudaStreamSynchronize(s));
  NCCL_OK(ncclCommDestroy(comm));
  return finish("collectives");
}

// Rings and all-pairs exchanges of send/recv inside groups, larger than a channel's buffer.
int sendrecv(size_t count) {
  ncclComm_t comm = initWorld();
  cudaStream_t s;
  CUDA_OK(cudaStreamCreate(&s));
  const int n = gSize, me = gRank;
  std::vector<int64_t> host(count * n);
  DevBuf send(count * n * 8), recv(count * n * 8);
  for (size_t i = 0; i < count * n; ++i) reinterpret_cast<int64_t*>(send.host.data())[i] = me * 1000000000LL + static_cast<int64_t>(i);
  send.up(s);
  for (int round = 0; round < 3; ++round) {
    // Two messages to the next rank in one group: they arrive in order.
    NCCL_OK(ncclGroupStart());
    NCCL_OK(ncclSend(send.dev, count, ncclInt64, (me + 1) % n, comm, s));
    NCCL_OK(ncclSend(static_cast<int64_t*>(send.dev) + count, count, ncclInt64, (me + 1) % n, comm, s));
    NCCL_OK(ncclRecv(recv.dev, count, ncclInt64, (me + n - 1) % n, comm, s));
    NCCL_OK(ncclRecv(static_cast<int64_t*>(recv.dev) + count, count, ncclInt64, (me + n - 1) % n, comm, s));
    NCCL_OK(ncclGroupEnd());
    recv.down(s);
    const int prev = (me + n - 1) % n;
    for (size_t i = 0; i < 2 * count; ++i) {
      EXPECT(reinterpret_cast<int64_t*>(recv.host.data())[i] == prev * 1000000000LL + static_cast<int64_t>(i));
    }
  }
  // All pairs, receives posted before sends, a message to self included.
  NCCL_OK(ncclGroupStart());
  for (int p = 0; p < n; ++p) NCCL_OK(ncclRecv(static_cast<int64_t*>(recv.dev) + p * count, count, ncclInt64, p, comm, s));
  for (int p = 0; p < n; ++p) NCCL_OK(ncclSend(static_cast<int64_t*>(send.dev) + p * count, count, ncclInt64, p, comm, s));
  NCCL_OK(ncclGroupEnd());
  recv.down(s);
  for (int p = 0; p < n; ++p) {
    for (size_t i = 0; i < count; ++i) {
      EXPECT(reinterpret_cast<int64_t*>(recv.host.data())[p * count + i] ==
             p * 1000000000LL + static_cast<int64_t>(me * count + i));
    }
  }
  NCCL_OK(ncclCommDestroy(comm));
  return finish("sendrecv");
}

int allreduceSum(ncclComm_t comm, cudaStream_t s, int value) {
  DevBuf b(sizeof(int));
  std::memcpy(b.host.data(), &value, sizeof value);
  b.up(s);
  NCCL_OK(ncclAllReduce(b.dev, b.dev, 1, ncclInt32, ncclSum, comm, s));
  b.down(s);
  int out;
  std::memcpy(&out, b.host.data(), sizeof out);
  return out;
}

// The same on a non-blocking communicator: the call may report ncclInProgress; the communicator is
// polled to ncclSuccess before the result is read.
int allreduceSumNonblocking(ncclComm_t comm, cudaStream_t s, int value) {
  DevBuf b(sizeof(int));
  std::memcpy(b.host.data(), &value, sizeof value);
  b.up(s);
  ncclResult_t r = ncclAllReduce(b.dev, b.dev, 1, ncclInt32, ncclSum, comm, s);
  if (r != ncclSuccess && r != ncclInProgress) NCCL_OK(r);
  NCCL_OK(waitAsync(comm));
  b.down(s);
  int out;
  std::memcpy(&out, b.host.data(), sizeof out);
  return out;
}

// Split by parity with reversed keys, a NOCOLOR rank, a split of a split, and shrink.
int split() {
  ncclComm_t world = initWorld();
  cudaStream_t s;
  CUDA_OK(cudaStreamCreate(&s));
  const int n = gSize, me = gRank;
  ncclComm_t half = nullptr;
  int color = me == 0 ? NCCL_SPLIT_NOCOLOR : me % 2;
  NCCL_OK(ncclCommSplit(world, color, -me, &half, nullptr));
  if (me == 0) {
    EXPECT(half == nullptr);
  } else {
    int members = 0, expectRank = 0;
    for (int r = 1; r < n; ++r) {
      if (r % 2 != me % 2) continue;
      ++members;
      if (r > me) ++expectRank;  // keys are -rank: higher ranks come first
    }
    int v = -1;
    NCCL_OK(ncclCommCount(half, &v));
    EXPECT(v == members);
    NCCL_OK(ncclCommUserRank(half, &v));
    EXPECT(v == expectRank);
    int sum = 0;
    for (int r = 1; r < n; ++r) sum += r % 2 == me % 2 ? r : 0;
    EXPECT(allreduceSum(half, s, me) == sum);
    // A split of the split: everyone in one color, same order.
    ncclComm_t again = nullptr;
    NCCL_OK(ncclCommSplit(half, 7, 0, &again, nullptr));
    NCCL_OK(ncclCommUserRank(again, &v));
    EXPECT(v == expectRank);
    EXPECT(allreduceSum(again, s, 1) == members);
    NCCL_OK(ncclCommDestroy(again));
    NCCL_OK(ncclCommDestroy(half));
  }
  EXPECT(allreduceSum(world, s, 1) == n);
  // Shrink: the last rank leaves; the others build a communicator without it.
  if (n > 2) {
    if (me != n - 1) {
      int excluded = n - 1;
      ncclComm_t shrunk = nullptr;
      NCCL_OK(ncclCommShrink(world, &excluded, 1, &shrunk, nullptr, NCCL_SHRINK_DEFAULT));
      int v = -1;
      NCCL_OK(ncclCommCount(shrunk, &v));
      EXPECT(v == n - 1);
      NCCL_OK(ncclCommUserRank(shrunk, &v));
      EXPECT(v == me);
      EXPECT(allreduceSum(shrunk, s, 1) == n - 1);
      NCCL_OK(ncclCommDestroy(shrunk));
    }
  }
  NCCL_OK(ncclCommDestroy(world));
  return finish("split");
}

// Non-blocking communicators: init, collectives, split and finalize report ncclInProgress and the
// state is polled to ncclSuccess; a communicator may not be used while still in progress.
int nonblocking() {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  if (gRank != 0) waitMark("rank0-checked");
  ncclComm_t comm = initWorld(&config);
  EXPECT(comm != nullptr);
  if (gRank == 0) {
    // Nobody else has joined: the initialisation cannot have finished.
    ncclResult_t state = ncclSuccess;
    NCCL_OK(ncclCommGetAsyncError(comm, &state));
    EXPECT(state == ncclInProgress);
    int count = 0;
    EXPECT(ncclCommCount(comm, &count) == ncclInvalidArgument);
    mark("rank0-checked");
  }
  EXPECT(waitAsync(comm) == ncclSuccess);
  cudaStream_t s;
  CUDA_OK(cudaStreamCreate(&s));
  DevBuf b(sizeof(float) * 64);
  for (int i = 0; i < 64; ++i) reinterpret_cast<float*>(b.host.data())[i] = static_cast<float>(gRank + i);
  b.up(s);
  ncclResult_t r = ncclAllReduce(b.dev, b.dev, 64, ncclFloat, ncclSum, comm, s);
  EXPECT(r == ncclSuccess || r == ncclInProgress);
  EXPECT(waitAsync(comm) == ncclSuccess);
  b.down(s);
  for (int i = 0; i < 64; ++i) {
    EXPECT(reinterpret_cast<float*>(b.host.data())[i] == static_cast<float>(gSize * (gSize - 1) / 2 + gSize * i));
  }
  ncclComm_t child = nullptr;
  r = ncclCommSplit(comm, 0, gRank, &child, nullptr);
  EXPECT(r == ncclSuccess || r == ncclInProgress);
  EXPECT(waitAsync(comm) == ncclSuccess);
  EXPECT(child != nullptr);
  if (child != nullptr) {
    EXPECT(waitAsync(child) == ncclSuccess);
    NCCL_OK(ncclCommDestroy(child));
  }
  r = ncclCommFinalize(comm);
  EXPECT(r == ncclSuccess || r == ncclInProgress);
  EXPECT(waitAsync(comm) == ncclSuccess);
  NCCL_OK(ncclCommDestroy(comm));
  return finish("nonblocking");
}

// A collective whose peer never arrives blocks its stream, and work queued behind it; ncclCommAbort
// unblocks the stream. With `revoke`, ncclCommRevoke does the unblocking instead and the
// communicator then refuses new collectives.
int hang(bool revoke) {
  ncclComm_t comm = initWorld();
  cudaStream_t s;
  CUDA_OK(cudaStreamCreate(&s));
  DevBuf b(sizeof(float) * 16);
  if (gRank == 0) {
    NCCL_OK(ncclAllReduce(b.dev, b.dev, 16, ncclFloat, ncclSum, comm, s));
    cudaEvent_t after;
    CUDA_OK(cudaEventCreate(&after));
    CUDA_OK(cudaEventRecord(after, s));
    EXPECT(staysBlocked(s));
    EXPECT(cudaEventQuery(after) == cudaErrorNotReady);
    ncclResult_t state = ncclInternalError;
    NCCL_OK(ncclCommGetAsyncError(comm, &state));
    EXPECT(state == ncclSuccess);  // nothing failed: the peers are merely absent
    if (revoke) {
      NCCL_OK(ncclCommRevoke(comm, NCCL_REVOKE_DEFAULT));
      CUDA_OK(cudaStreamSynchronize(s));
      EXPECT(cudaEventQuery(after) == cudaSuccess);
      EXPECT(ncclAllReduce(b.dev, b.dev, 16, ncclFloat, ncclSum, comm, s) == ncclInvalidUsage);
      EXPECT(ncclCommFinalize(comm) == ncclInvalidUsage);
      NCCL_OK(ncclCommDestroy(comm));
    } else {
      NCCL_OK(ncclCommAbort(comm));
      CUDA_OK(cudaStreamSynchronize(s));
      EXPECT(cudaEventQuery(after) == cudaSuccess);
    }
    mark("rank0-done");
  } else {
    waitMark("rank0-done");
    NCCL_OK(ncclCommAbort(comm));
  }
  return finish(revoke ? "revoke" : "abort");
}

// Rank 1 dies (SIGKILL) while rank 0's collective waits for it. Rank 0 sees ncclRemoteError from
// ncclCommGetAsyncError within seconds while the collective stays stuck; the survivors shrink the
// communicator without the dead rank (NCCL_SHRINK_ABORT) and carry on.
int peerDeath() {
  ncclComm_t comm = initWorld();
  cudaStream_t s;
  CUDA_OK(cudaStreamCreate(&s));
  DevBuf b(sizeof(float) * 16);
  if (gRank == 1) {
    waitMark("collective-launched");
    ::kill(::getpid(), SIGKILL);
  }
  NCCL_OK(ncclAllReduce(b.dev, b.dev, 16, ncclFloat, ncclSum, comm, s));
  mark("collective-launched");
  auto t0 = Clock::now();
  ncclResult_t state = ncclSuccess;
  while (Clock::now() - t0 < 60s) {
    NCCL_OK(ncclCommGetAsyncError(comm, &state));
    if (state != ncclSuccess) break;
    std::this_thread::sleep_for(20ms);
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("rank %d: async error %s after %.2f s\n", gRank, ncclGetErrorString(state), secs);
  EXPECT(state == ncclRemoteError);
  EXPECT(secs < 10);
  EXPECT(cudaStreamQuery(s) == cudaErrorNotReady);  // the collective itself stays stuck
  // New work on the communicator reports the error; destroy refuses, as in NCCL.
  EXPECT(ncclAllReduce(b.dev, b.dev, 16, ncclFloat, ncclSum, comm, s) == ncclRemoteError);
  EXPECT(ncclCommDestroy(comm) == ncclRemoteError);
  if (gSize > 2) {
    int dead = 1;
    ncclComm_t shrunk = nullptr;
    NCCL_OK(ncclCommShrink(comm, &dead, 1, &shrunk, nullptr, NCCL_SHRINK_ABORT));
    CUDA_OK(cudaStreamSynchronize(s));  // the shrink stopped the stuck collective
    int v = 0;
    NCCL_OK(ncclCommCount(shrunk, &v));
    EXPECT(v == gSize - 1);
    EXPECT(allreduceSum(shrunk, s, 1) == gSize - 1);
    NCCL_OK(ncclCommDestroy(shrunk));
  }
  NCCL_OK(ncclCommAbort(comm));
  CUDA_OK(cudaStreamSynchronize(s));
  return finish("peer-death");
}

// Ranks call the same collective with different counts (or types): nobody completes it, and each
// rank logs one NCCL WARN line naming both calls.
int mismatch(const std::string& what) {
  ncclComm_t comm = initWorld();
  cudaStream_t s;
  CUDA_OK(cudaStreamCreate(&s));
  DevBuf b(sizeof(float) * 64);
  size_t count = 16;
  ncclDataType_t type = ncclFloat;
  ncclRedOp_t op = ncclSum;
  if (gRank == gSize - 1) {
    if (what == "count") count = 17;
    if (what == "type") type = ncclInt32;
    if (what == "op") op = ncclMax;
  }
  NCCL_OK(ncclAllReduce(b.dev, b.dev, count, type, op, comm, s));
  EXPECT(staysBlocked(s));
  mark("blocked." + std::to_string(gRank));
  for (int r = 0; r < gSize; ++r) waitMark("blocked." + std::to_string(r));
  NCCL_OK(ncclCommAbort(comm));
  CUDA_OK(cudaStreamSynchronize(s));
  return finish("mismatch");
}

// ---- initialisation that cannot complete ---------------------------------------------------

// Whether `rank` has joined the rendezvous of `id`, read from sim/'s shared-memory segment (its name
// is in the id). The API cannot tell: a rank that has joined waits inside ncclCommInitRank exactly
// like one that has not got that far, and the scenarios below must act in between.
bool joinedRendezvous(const ncclUniqueId& id, int rank) {
  simn::UniqueIdPayload p;
  std::memcpy(&p, id.internal, sizeof p);
  p.name[sizeof p.name - 1] = '\0';
  int fd = ::shm_open(p.name, O_RDONLY, 0);
  if (fd < 0) return false;
  bool joined = false;
  void* head = ::mmap(nullptr, simn::kHeaderBytes, PROT_READ, MAP_SHARED, fd, 0);
  if (head != MAP_FAILED) {
    const auto* hdr = static_cast<const simn::SegmentHeader*>(head);
    if (hdr->layoutState.load() == 2 && rank < static_cast<int>(hdr->nranks)) {
      const size_t bytes = hdr->slotsOffset + static_cast<size_t>(rank + 1) * sizeof(simn::RankSlot);
      void* all = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
      if (all != MAP_FAILED) {
        const auto* slots = reinterpret_cast<const simn::RankSlot*>(static_cast<const uint8_t*>(all) + hdr->slotsOffset);
        joined = slots[rank].state.load() == simn::kSlotJoined;
        ::munmap(all, bytes);
      }
    }
    ::munmap(head, simn::kHeaderBytes);
  }
  ::close(fd);
  return joined;
}

bool waitJoined(const ncclUniqueId& id, int rank, std::chrono::seconds limit = 120s) {
  auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (joinedRendezvous(id, rank)) return true;
    std::this_thread::sleep_for(5ms);
  }
  std::fprintf(stderr, "rank %d: rank %d never joined the rendezvous\n", gRank, rank);
  return false;
}

// Every rank marks `name.<rank>` and waits for the others' marks.
void barrier(const std::string& name) {
  mark(name + "." + std::to_string(gRank));
  for (int r = 0; r < gSize; ++r) EXPECT(waitMark(name + "." + std::to_string(r)));
}

// The last rank joins the rendezvous and is then killed (SIGKILL) while the others still wait in
// ncclCommInitRank: they fail with ncclRemoteError (NCCL sees the dead rank's bootstrap socket
// close) instead of waiting for ever. The communicator has one rank more than the job, so the
// rendezvous never completes by itself.
int initPeerDeath() {
  ncclUniqueId id;
  if (!examples::exchangeUniqueId(gDir + "/nccl-uid", gRank, &id, 120s)) return 1;
  if (gRank == gSize - 1) {
    std::thread([id] {
      ncclComm_t c = nullptr;
      (void)ncclCommInitRank(&c, gSize + 1, id, gRank);
    }).detach();
    if (!waitJoined(id, gRank)) return 3;
    mark("dying");
    ::kill(::getpid(), SIGKILL);
    for (;;) ::pause();
  }
  ncclComm_t comm = nullptr;
  auto t0 = Clock::now();
  ncclResult_t r = ncclCommInitRank(&comm, gSize + 1, id, gRank);
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("rank %d: init with a peer that died returned %s after %.2f s\n", gRank, ncclGetErrorString(r), secs);
  EXPECT(r == ncclRemoteError);
  EXPECT(access((gDir + "/marker.dying").c_str(), F_OK) == 0);  // it failed because the peer died
  // NCCL hands back a failed communicator to be aborted (sim/ gives null, which abort accepts).
  EXPECT(ncclCommAbort(comm) == ncclSuccess);
  return finish("init-peer-death");
}

// ncclCommAbort ends an initialisation that waits for a rank that never comes. Blocking: the init
// waits on a thread of the program, which finds the handle (NCCL sets *comm before the rendezvous)
// and aborts it from another thread; the init returns ncclInternalError, NCCL's code for an aborted
// bootstrap. Non-blocking: the init waits on NCCL's own thread, ncclCommGetAsyncError says
// ncclInProgress, and the program's ncclCommAbort ends it.
int initAbort() {
  ncclUniqueId id;
  if (!examples::exchangeUniqueId(gDir + "/nccl-uid", gRank, &id, 120s)) return 1;
  ncclComm_t comm = nullptr;
  ncclResult_t initResult = ncclSuccess;
  std::thread init([&] { initResult = ncclCommInitRank(&comm, gSize + 1, id, gRank); });
  ncclComm_t seen = nullptr;
  auto until = Clock::now() + 120s;
  while ((seen = std::atomic_ref<ncclComm_t>(comm).load()) == nullptr && Clock::now() < until) {
    std::this_thread::sleep_for(2ms);
  }
  if (seen == nullptr) {
    std::fprintf(stderr, "rank %d: ncclCommInitRank set no handle while it waited\n", gRank);
    std::_Exit(3);  // the init thread never returns
  }
  EXPECT(waitJoined(id, gRank));
  auto t0 = Clock::now();
  EXPECT(ncclCommAbort(seen) == ncclSuccess);
  init.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("rank %d: blocking init aborted from another thread returned %s after %.2f s\n", gRank,
              ncclGetErrorString(initResult), secs);
  EXPECT(initResult == ncclInternalError);

  if (!examples::exchangeUniqueId(gDir + "/nccl-uid-nb", gRank, &id, 120s)) return 1;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t nb = nullptr;
  EXPECT(ncclCommInitRankConfig(&nb, gSize + 1, id, gRank, &config) == ncclInProgress);
  EXPECT(nb != nullptr);
  if (nb != nullptr) {
    EXPECT(waitJoined(id, gRank));
    ncclResult_t state = ncclSuccess;
    NCCL_OK(ncclCommGetAsyncError(nb, &state));
    EXPECT(state == ncclInProgress);
    t0 = Clock::now();
    EXPECT(ncclCommAbort(nb) == ncclSuccess);
    std::printf("rank %d: non-blocking init aborted after %.2f s\n", gRank,
                std::chrono::duration<double>(Clock::now() - t0).count());
  }
  // Stay until every rank has aborted: a rank that exits counts as dead to those still waiting.
  barrier("init-abort-done");
  return finish("init-abort");
}

// ---- non-blocking revoke and shrink ---------------------------------------------------------

bool okOrInProgress(ncclResult_t r) { return r == ncclSuccess || r == ncclInProgress; }

// All ranks of a non-blocking communicator but the last start an all-reduce the last rank never
// joins. They revoke the communicator (ncclInProgress or ncclSuccess, then ncclSuccess from
// ncclCommGetAsyncError, and the stuck all-reduce lets its stream go), shrink it without the last
// rank (the parent reports ncclInProgress until the child is ready), sum over the remaining ranks on
// the child, and find the revoked parent refusing new work with ncclInvalidUsage (its state stays
// ncclSuccess, so it can still be destroyed). ncclCommShrink
// returns ncclSuccess in NCCL 2.28 (it drops the group's ncclInProgress) and ncclInProgress in sim/;
// programs must take either, as NCCL's own examples do.
int nonblockingRevokeShrink() {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = initWorld(&config);
  EXPECT(waitAsync(comm) == ncclSuccess);
  cudaStream_t s;
  CUDA_OK(cudaStreamCreate(&s));
  const int n = gSize, left = n - 1;
  EXPECT(allreduceSumNonblocking(comm, s, gRank + 1) == n * (n + 1) / 2);
  if (gRank == left) {
    // Takes no part in the stuck all-reduce and is not in the shrunk communicator.
    for (int r = 0; r < left; ++r) EXPECT(waitMark("nb-done." + std::to_string(r)));
    EXPECT(ncclCommAbort(comm) == ncclSuccess);
    return finish("nonblocking-revoke-shrink");
  }
  DevBuf stuck(sizeof(float) * 16);
  EXPECT(okOrInProgress(ncclAllReduce(stuck.dev, stuck.dev, 16, ncclFloat, ncclSum, comm, s)));
  EXPECT(waitAsync(comm) == ncclSuccess);  // launched; nothing has failed
  EXPECT(staysBlocked(s));

  ncclResult_t r = ncclCommRevoke(comm, NCCL_REVOKE_DEFAULT);
  std::printf("rank %d: ncclCommRevoke returned %s\n", gRank, ncclGetErrorString(r));
  EXPECT(okOrInProgress(r));
  EXPECT(waitAsync(comm) == ncclSuccess);
  CUDA_OK(cudaStreamSynchronize(s));  // the stuck all-reduce was stopped
  EXPECT(ncclCommRevoke(comm, NCCL_REVOKE_DEFAULT) == ncclInvalidArgument);  // already revoked

  int excluded = left;
  ncclComm_t shrunk = nullptr;
  r = ncclCommShrink(comm, &excluded, 1, &shrunk, &config, NCCL_SHRINK_DEFAULT);
  std::printf("rank %d: ncclCommShrink returned %s\n", gRank, ncclGetErrorString(r));
  EXPECT(okOrInProgress(r));
  EXPECT(waitAsync(comm) == ncclSuccess);  // the child is built in the parent's name
  EXPECT(shrunk != nullptr);
  if (shrunk != nullptr) {
    EXPECT(waitAsync(shrunk) == ncclSuccess);
    int v = -1;
    NCCL_OK(ncclCommCount(shrunk, &v));
    EXPECT(v == n - 1);
    NCCL_OK(ncclCommUserRank(shrunk, &v));
    EXPECT(v == gRank);
    EXPECT(allreduceSumNonblocking(shrunk, s, gRank + 1) == (n - 1) * n / 2);
    r = ncclCommFinalize(shrunk);
    EXPECT(okOrInProgress(r));
    EXPECT(waitAsync(shrunk) == ncclSuccess);
    NCCL_OK(ncclCommDestroy(shrunk));
  }

  DevBuf b(sizeof(float) * 16);
  EXPECT(ncclAllReduce(b.dev, b.dev, 16, ncclFloat, ncclSum, comm, s) == ncclInvalidUsage);
  EXPECT(ncclSend(b.dev, 16, ncclFloat, (gRank + 1) % left, comm, s) == ncclInvalidUsage);
  // NCCL refuses those before anything else (ncclEnqueueCheck), so unlike other failed calls on a
  // non-blocking communicator they do not become its state, and the revoked communicator can still
  // be destroyed.
  ncclResult_t state = ncclInternalError;
  NCCL_OK(ncclCommGetAsyncError(comm, &state));
  EXPECT(state == ncclSuccess);
  EXPECT(ncclCommDestroy(comm) == ncclSuccess);
  mark("nb-done." + std::to_string(gRank));
  return finish("nonblocking-revoke-shrink");
}

// ---- several simulated nodes ------------------------------------------------------------------

// Under ncclfr-simrun --nnodes K each node numbers its ranks and devices from 0 (LOCAL_RANK is the
// device) and has its own NCCL_HOSTID, so ranks on different nodes may share a device index, as on a
// cluster: the world, an all-reduce, send/recv between nodes and per-node and cross-node splits all
// work. Two ranks of one node on one device are still refused ("Duplicate GPU").
int nodes(int nnodes) {
  const int perNode = gSize / nnodes, node = gRank / perNode;
  auto envInt = [](const char* k) { return std::getenv(k) != nullptr ? std::atoi(std::getenv(k)) : -1; };
  EXPECT(gSize % nnodes == 0);
  EXPECT(gLocal == gRank % perNode);
  EXPECT(envInt("LOCAL_WORLD_SIZE") == perNode);
  EXPECT(envInt("GROUP_RANK") == node);
  EXPECT(envInt("GROUP_WORLD_SIZE") == nnodes);
  const char* hostId = std::getenv("NCCL_HOSTID");
  std::printf("rank %d: node %d local rank %d host id %s\n", gRank, node, gLocal, hostId != nullptr ? hostId : "(unset)");
  const std::string suffix = "simnode" + std::to_string(node);
  EXPECT(hostId != nullptr && std::string(hostId).size() >= suffix.size() &&
         std::string(hostId).compare(std::string(hostId).size() - suffix.size(), suffix.size(), suffix) == 0);
  int devices = -1;
  CUDA_OK(cudaGetDeviceCount(&devices));
  EXPECT(devices == std::max(8, perNode));

  ncclComm_t world = initWorld();
  cudaStream_t s;
  CUDA_OK(cudaStreamCreate(&s));
  int v = -1;
  NCCL_OK(ncclCommCuDevice(world, &v));
  EXPECT(v == gLocal);
  // An all-reduce over every node.
  const size_t count = 1000;
  DevBuf red(count * sizeof(int32_t));
  for (size_t i = 0; i < count; ++i) reinterpret_cast<int32_t*>(red.host.data())[i] = (gRank + 1) * static_cast<int32_t>(i + 1);
  red.up(s);
  NCCL_OK(ncclAllReduce(red.dev, red.dev, count, ncclInt32, ncclSum, world, s));
  red.down(s);
  for (size_t i = 0; i < count; ++i) {
    EXPECT(reinterpret_cast<int32_t*>(red.host.data())[i] == static_cast<int32_t>(i + 1) * gSize * (gSize + 1) / 2);
  }
  // Send/recv to the same local rank of the next node, from that of the previous one.
  const int to = (gRank + perNode) % gSize, from = (gRank + gSize - perNode) % gSize;
  DevBuf out(count * sizeof(int64_t)), in(count * sizeof(int64_t));
  for (size_t i = 0; i < count; ++i) reinterpret_cast<int64_t*>(out.host.data())[i] = gRank * 1000000000LL + static_cast<int64_t>(i);
  out.up(s);
  NCCL_OK(ncclGroupStart());
  NCCL_OK(ncclSend(out.dev, count, ncclInt64, to, world, s));
  NCCL_OK(ncclRecv(in.dev, count, ncclInt64, from, world, s));
  NCCL_OK(ncclGroupEnd());
  in.down(s);
  for (size_t i = 0; i < count; ++i) {
    EXPECT(reinterpret_cast<int64_t*>(in.host.data())[i] == from * 1000000000LL + static_cast<int64_t>(i));
  }
  // One communicator per local rank, across the nodes: every member on the same device index.
  ncclComm_t across = nullptr;
  NCCL_OK(ncclCommSplit(world, gLocal, gRank, &across, nullptr));
  NCCL_OK(ncclCommCount(across, &v));
  EXPECT(v == nnodes);
  NCCL_OK(ncclCommUserRank(across, &v));
  EXPECT(v == node);
  EXPECT(allreduceSum(across, s, gRank) == perNode * nnodes * (nnodes - 1) / 2 + nnodes * gLocal);
  // One per node.
  ncclComm_t within = nullptr;
  NCCL_OK(ncclCommSplit(world, node, gRank, &within, nullptr));
  NCCL_OK(ncclCommCount(within, &v));
  EXPECT(v == perNode);
  EXPECT(allreduceSum(within, s, 1) == perNode);
  NCCL_OK(ncclCommDestroy(within));
  NCCL_OK(ncclCommDestroy(across));
  NCCL_OK(ncclCommDestroy(world));
  // The control: local ranks 0 and 1 of a node, both on device 0, are one host's duplicate GPU.
  if (perNode >= 2 && gLocal < 2) {
    ncclUniqueId id;
    if (!examples::exchangeUniqueId(gDir + "/nccl-uid-dup." + std::to_string(node), gLocal, &id, 120s)) return 1;
    CUDA_OK(cudaSetDevice(0));
    ncclComm_t dup = nullptr;
    ncclResult_t r = ncclCommInitRank(&dup, 2, id, gLocal);
    std::printf("rank %d: two ranks of node %d on device 0: %s\n", gRank, node, ncclGetErrorString(r));
    EXPECT(r == ncclInvalidUsage);
    EXPECT(ncclCommAbort(dup) == ncclSuccess);  // what NCCL asks of a failed init (sim/ gives null)
    CUDA_OK(cudaSetDevice(gLocal));
  }
  return finish("nodes");
}

// Signal handlers may only make async-signal-safe calls: open and close a prepared path.
char gSignalMarker[4096];
void touchSignalMarker(int) {
  int fd = ::open(gSignalMarker, O_WRONLY | O_CREAT, 0644);
  if (fd >= 0) ::close(fd);
}

// For the launcher's tests: print the environment a rank sees, or misbehave on purpose.
int launcherProbe(const std::string& what) {
  if (what == "env") {
    for (const char* k : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
                          "MASTER_PORT", "TORCHELASTIC_RUN_ID", "NCCL_UID_FILE", "LD_LIBRARY_PATH", "LD_PRELOAD",
                          "NCCL_HOSTID", "NCCLFR_SIM_DEVICES"}) {
      const char* v = std::getenv(k);
      std::printf("%s=%s\n", k, v != nullptr ? v : "");
    }
    return 0;
  }
  if (what == "devices") {
    int n = -1;
    cudaError_t e = cudaGetDeviceCount(&n);
    std::printf("devices=%d (%s)\n", n, cudaGetErrorName(e));
    return e == cudaSuccess ? 0 : 1;
  }
  if (what == "fail-rank1") {
    if (gRank == 1) return 7;
    waitMark("never", 600s);
    return 0;
  }
  if (what == "ignore-term") {
    // Records that SIGTERM arrived, then carries on until SIGKILL.
    std::snprintf(gSignalMarker, sizeof gSignalMarker, "%s/marker.term.%d", gDir.c_str(), gRank);
    signal(SIGTERM, touchSignalMarker);
    mark("ready." + std::to_string(gRank));
    waitMark("never", 600s);
    return 0;
  }
  if (what == "wait-signal") {
    std::snprintf(gSignalMarker, sizeof gSignalMarker, "%s/marker.usr1.%d", gDir.c_str(), gRank);
    signal(SIGUSR1, touchSignalMarker);
    mark("ready." + std::to_string(gRank));
    return waitMark("usr1." + std::to_string(gRank), 120s) ? 0 : 3;
  }
  if (what == "stuck-init") {
    // Rank 0 creates the rendezvous and waits for ranks that never join: killed at the time limit.
    if (gRank == 0) initWorld();
    waitMark("never", 600s);
    return 0;
  }
  std::fprintf(stderr, "unknown probe %s\n", what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: sim_worker SCENARIO [ARG]\n");
    return 2;
  }
  gRank = std::atoi(std::getenv("RANK") != nullptr ? std::getenv("RANK") : "0");
  gSize = std::atoi(std::getenv("WORLD_SIZE") != nullptr ? std::getenv("WORLD_SIZE") : "1");
  gLocal = std::atoi(std::getenv("LOCAL_RANK") != nullptr ? std::getenv("LOCAL_RANK") : "0");
  const char* uid = std::getenv("NCCL_UID_FILE");
  if (uid == nullptr) {
    std::fprintf(stderr, "sim_worker: NCCL_UID_FILE is not set (run it under ncclfr-simrun)\n");
    return 2;
  }
  gDir = std::string(uid).substr(0, std::string(uid).rfind('/'));
  std::string scenario = argv[1];
  std::string arg = argc > 2 ? argv[2] : "";
  if (scenario == "probe") return launcherProbe(arg);
  CUDA_OK(cudaSetDevice(gLocal));
  if (scenario == "collectives") return collectives(arg.empty() ? 37 : std::strtoull(arg.c_str(), nullptr, 10));
  if (scenario == "sendrecv") return sendrecv(arg.empty() ? 5000 : std::strtoull(arg.c_str(), nullptr, 10));
  if (scenario == "split") return split();
  if (scenario == "nonblocking") return nonblocking();
  if (scenario == "abort") return hang(false);
  if (scenario == "revoke") return hang(true);
  if (scenario == "peer-death") return peerDeath();
  if (scenario == "mismatch") return mismatch(arg.empty() ? "count" : arg);
  if (scenario == "init-peer-death") return initPeerDeath();
  if (scenario == "init-abort") return initAbort();
  if (scenario == "nonblocking-revoke-shrink") return nonblockingRevokeShrink();
  if (scenario == "nodes") return nodes(arg.empty() ? 1 : std::atoi(arg.c_str()));
  std::fprintf(stderr, "sim_worker: unknown scenario %s\n", scenario.c_str());
  return 2;
}
