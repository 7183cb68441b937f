// The recorder's own cost per NCCL call: the same calls with libncclfr.so in front of a "null" NCCL
// that returns at once (ncclX, which the shim interposes) and straight into it (pncclX, which it
// does not), on 1 and 4 threads, each thread on its own communicator as frameworks do. The
// difference is the recorder's hot path: sequence numbers, the ring append (lock-free, shared by
// all threads), the return code and duration. CUDA event calls are not in it (NCCLFR_TIMING=host; the
// null NCCL has no CUDA anyway).
//
//   bin/recorder_overhead                 # re-runs itself with LD_PRELOAD=libncclfr.so
//   bin/recorder_overhead --benchmark_filter=AllReduce
//
// Report: the median over repetitions of CPU ns per call (docs/performance.md).
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <nccl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr int kMaxThreads = 8;
ncclComm_t gComms[kMaxThreads];
char gSend[256], gRecv[256];

void BM_AllReduce_NoShim(benchmark::State& state) {
  ncclComm_t comm = gComms[state.thread_index()];
  for (auto _ : state) {
    benchmark::DoNotOptimize(pncclAllReduce(gSend, gRecv, 64, ncclFloat, ncclSum, comm, nullptr));
  }
}

void BM_AllReduce_Shim(benchmark::State& state) {
  ncclComm_t comm = gComms[state.thread_index()];
  for (auto _ : state) {
    benchmark::DoNotOptimize(ncclAllReduce(gSend, gRecv, 64, ncclFloat, ncclSum, comm, nullptr));
  }
}

void BM_Send_NoShim(benchmark::State& state) {
  ncclComm_t comm = gComms[state.thread_index()];
  int peer = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(pncclSend(gSend, 64, ncclFloat, peer, comm, nullptr));
    peer = (peer + 1) & 7;
  }
}

void BM_Send_Shim(benchmark::State& state) {
  ncclComm_t comm = gComms[state.thread_index()];
  int peer = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ncclSend(gSend, 64, ncclFloat, peer, comm, nullptr));
    peer = (peer + 1) & 7;
  }
}

// A pipeline step: group { send, recv } (4 calls per iteration).
void BM_GroupSendRecv_NoShim(benchmark::State& state) {
  ncclComm_t comm = gComms[state.thread_index()];
  for (auto _ : state) {
    pncclGroupStart();
    pncclSend(gSend, 64, ncclFloat, 1, comm, nullptr);
    pncclRecv(gRecv, 64, ncclFloat, 1, comm, nullptr);
    benchmark::DoNotOptimize(pncclGroupEnd());
  }
  state.SetItemsProcessed(state.iterations() * 4);
}

void BM_GroupSendRecv_Shim(benchmark::State& state) {
  ncclComm_t comm = gComms[state.thread_index()];
  for (auto _ : state) {
    ncclGroupStart();
    ncclSend(gSend, 64, ncclFloat, 1, comm, nullptr);
    ncclRecv(gRecv, 64, ncclFloat, 1, comm, nullptr);
    benchmark::DoNotOptimize(ncclGroupEnd());
  }
  state.SetItemsProcessed(state.iterations() * 4);
}

void configure(benchmark::internal::Benchmark* b) {
  b->Threads(1)->Threads(4)->Repetitions(10)->ReportAggregatesOnly(true)->MinTime(0.05);
}

BENCHMARK(BM_AllReduce_NoShim)->Apply(configure);
BENCHMARK(BM_AllReduce_Shim)->Apply(configure);
BENCHMARK(BM_Send_NoShim)->Apply(configure);
BENCHMARK(BM_Send_Shim)->Apply(configure);
BENCHMARK(BM_GroupSendRecv_NoShim)->Apply(configure);
BENCHMARK(BM_GroupSendRecv_Shim)->Apply(configure);

// Runs this program again with the recorder preloaded, recording host-side only into a private
// temporary folder.
[[noreturn]] void reexecWithShim(char** argv) {
  char dir[] = "/tmp/ncclfr-bench-XXXXXX";
  if (mkdtemp(dir) == nullptr) {
    std::perror("recorder_overhead: mkdtemp");
    std::exit(1);
  }
  setenv("LD_PRELOAD", NCCLFR_BENCH_RECORDER_LIB, 1);
  setenv("NCCLFR_TIMING", "host", 1);
  setenv("NCCLFR_SHM_DIR", dir, 1);
  setenv("NCCLFR_DUMP_DIR", dir, 1);
  setenv("NCCLFR_BENCH_CHILD", dir, 1);
  execv("/proc/self/exe", argv);
  std::perror("recorder_overhead: exec");
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  const char* child = getenv("NCCLFR_BENCH_CHILD");
  if (child == nullptr) reexecWithShim(argv);
  // The shim must be the one answering ncclX, or the comparison means nothing.
  if (dlsym(RTLD_DEFAULT, "ncclAllReduce") == dlsym(RTLD_DEFAULT, "pncclAllReduce")) {
    std::fprintf(stderr, "recorder_overhead: libncclfr.so is not in front of NCCL\n");
    return 1;
  }
  ncclUniqueId id;
  ncclGetUniqueId(&id);
  for (auto& c : gComms) {
    if (ncclCommInitRank(&c, 8, id, 0) != ncclSuccess) return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (auto& c : gComms) ncclCommDestroy(c);
  std::string rm = std::string("rm -rf ") + child;
  return std::system(rm.c_str()) == 0 ? 0 : 1;
}
