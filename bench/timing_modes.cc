// Per-call cost of the recorder on a real CUDA driver and NCCL (or on sim/): the same small
// all-reduce on a 1-rank communicator, issued alternately through ncclAllReduce (which
// libncclfr.so interposes when it is preloaded) and pncclAllReduce (NCCL's own entry, which it does
// not), in batches, in one process. The median of the paired batch differences is what the recorder
// adds to a call in the NCCLFR_TIMING mode the process runs with (full: CUDA events before and after; end: one
// event after; host: no CUDA call). Without the preload both paths go straight to NCCL, and the
// difference shows the method's noise floor.
//
// Built like an example program (CUDA and NCCL headers, the real libcudart and libnccl, no RPATH,
// no project code), so the same binary runs on a GPU machine and, through ncclfr-simrun, on sim/.
// scripts/gpu-validate.sh runs it once per mode.
//
//   ncclfr_timing_bench [--batches N] [--batch B] [--count C]
//
// Prints one line:
//   timing_bench: timing=full shim=yes calls=12800 direct_ns=... shim_ns=... added_ns=... p10/p90
// Exit codes: 0 done; 1 a CUDA or NCCL call failed; 2 bad usage.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

#define CHECK_CUDA(call)                                                                          \
  do {                                                                                            \
    cudaError_t e_ = (call);                                                                      \
    if (e_ != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "ncclfr_timing_bench: %s failed: %s\n", #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)
#define CHECK_NCCL(call)                                                                          \
  do {                                                                                            \
    ncclResult_t r_ = (call);                                                                     \
    if (r_ != ncclSuccess) {                                                                      \
      std::fprintf(stderr, "ncclfr_timing_bench: %s failed: %s\n", #call, ncclGetErrorString(r_)); \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "ncclfr_timing_bench: %s\n"
               "usage: ncclfr_timing_bench [--batches N] [--batch B] [--count C]\n",
               why);
  std::exit(2);
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  int batches = 400, batch = 32;
  size_t count = 256;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> long {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return std::strtol(argv[++i], nullptr, 10);
    };
    if (a == "--batches") batches = static_cast<int>(value());
    else if (a == "--batch") batch = static_cast<int>(value());
    else if (a == "--count") count = static_cast<size_t>(value());
    else if (a == "-h" || a == "--help") usage("per-call cost of the recorder");
    else usage(("unknown argument " + a).c_str());
  }
  if (batches < 2 || batch < 1 || count < 1) usage("--batches must be >= 2, --batch and --count >= 1");

  const char* local = std::getenv("LOCAL_RANK");
  int devices = 0;
  CHECK_CUDA(cudaGetDeviceCount(&devices));
  if (devices < 1) usage("no CUDA device");
  CHECK_CUDA(cudaSetDevice((local != nullptr ? std::atoi(local) : 0) % devices));
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  float *send = nullptr, *recv = nullptr;
  CHECK_CUDA(cudaMalloc(&send, count * sizeof(float)));
  CHECK_CUDA(cudaMalloc(&recv, count * sizeof(float)));

  ncclUniqueId id;
  CHECK_NCCL(ncclGetUniqueId(&id));
  ncclComm_t comm;
  CHECK_NCCL(ncclCommInitRank(&comm, 1, id, 0));

  // The recorder must be the one answering ncclAllReduce when it is preloaded; without it the two
  // names are the same function.
  bool shim = dlsym(RTLD_DEFAULT, "ncclAllReduce") != dlsym(RTLD_DEFAULT, "pncclAllReduce");

  auto runBatch = [&](bool viaShim) {
    auto t0 = Clock::now();
    for (int k = 0; k < batch; ++k) {
      ncclResult_t r = viaShim ? ncclAllReduce(send, recv, count, ncclFloat, ncclSum, comm, stream)
                               : pncclAllReduce(send, recv, count, ncclFloat, ncclSum, comm, stream);
      if (r != ncclSuccess) {
        std::fprintf(stderr, "ncclfr_timing_bench: ncclAllReduce failed: %s\n", ncclGetErrorString(r));
        std::exit(1);
      }
    }
    auto t1 = Clock::now();
    // Outside the timed part: the launch queue must not fill up, or the timed calls would wait for
    // the GPU instead of measuring the host path. The pause lets the recorder's watchdog reclaim the
    // batch's events, as a training step's compute does.
    CHECK_CUDA(cudaStreamSynchronize(stream));
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / batch;
  };

  // Warm-up: NCCL's first launches and the recorder's event pool (the watchdog sets a context up on
  // its first cycles; calls before that go untracked).
  for (int w = 0; w < 20; ++w) {
    runBatch(true);
    runBatch(false);
  }
  std::vector<double> direct, viaShim;
  direct.reserve(static_cast<size_t>(batches));
  viaShim.reserve(static_cast<size_t>(batches));
  for (int b = 0; b < batches; ++b) {
    // Alternate which path goes first, so drift (clock, cache, a noisy neighbour) hits both alike.
    if (b % 2 == 0) {
      direct.push_back(runBatch(false));
      viaShim.push_back(runBatch(true));
    } else {
      viaShim.push_back(runBatch(true));
      direct.push_back(runBatch(false));
    }
  }
  std::vector<double> added(direct.size());
  for (size_t i = 0; i < direct.size(); ++i) added[i] = viaShim[i] - direct[i];

  const char* timing = std::getenv("NCCLFR_TIMING");
  std::printf(
      "timing_bench: timing=%s shim=%s calls=%d direct_ns=%.1f shim_ns=%.1f added_ns=%.1f "
      "added_p10_ns=%.1f added_p90_ns=%.1f\n",
      shim ? (timing != nullptr && *timing != '\0' ? timing : "full") : "none", shim ? "yes" : "no",
      batches * batch, percentile(direct, 0.5), percentile(viaShim, 0.5), percentile(added, 0.5),
      percentile(added, 0.1), percentile(added, 0.9));

  CHECK_NCCL(ncclCommDestroy(comm));
  CHECK_CUDA(cudaFree(send));
  CHECK_CUDA(cudaFree(recv));
  CHECK_CUDA(cudaStreamDestroy(stream));
  return 0;
}
