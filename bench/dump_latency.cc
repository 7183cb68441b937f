// Dump latency versus ring size (issue 7, item 3; docs/performance.md). Target: <= 5 ms for a ring of
// 4,096 entries.
//
// The program re-runs itself with libncclfr.so preloaded in front of the "null" NCCL of
// bench/recorder_null_nccl.cc and a ring of --entries calls (NCCLFR_BUFFER), then makes twice that
// many calls over 8 communicators (all-reduces and grouped send/recv pairs, a pipeline-parallel
// mix), so the ring has wrapped and every slot holds a call. What is timed:
//
//   DumpOnSignal   raise(NCCLFR_DUMP_SIGNAL): the recorder's live dump path end to end. The handler
//                  wakes the watchdog, which drains the ring, starts an incident (trigger file),
//                  converts the ring (recorder/ring_to_dump.h) and writes the file
//                  (ncclfr::writeDumpFile); raise() returns when the file is on disk. This is what a
//                  rank pays when it detects a hang, minus the detection itself.
//   RingToDump     the converter alone, reading the same live ring from its /dev/shm-style file as
//                  `ncclfr salvage` does.
//   WriteDumpFile  the writer alone, for the message RingToDump built (temporary file + rename).
//
//   bin/dump_latency --entries 4096
//   bin/dump_latency --entries 65536 --benchmark_format=json
//
// Real (wall) time: the work happens on the watchdog thread, not the one that is timed. Report the
// median over repetitions.
#include <benchmark/benchmark.h>
#include <dirent.h>
#include <dlfcn.h>
#include <nccl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "ncclfr/dump_file.h"
#include "ring_to_dump.h"
#include "shm_ring.h"

namespace {

namespace fs = std::filesystem;

constexpr int kComms = 8;
constexpr int kDumpSignal = SIGUSR2;
ncclComm_t gComms[kComms];
char gSend[256], gRecv[256];
std::string gTmp;      // private folder: ring file, dumps
uint32_t gEntries = 0;

// One step of the fill pattern: an all-reduce and a grouped send/recv pair on communicator `c`.
void oneStep(int c) {
  ncclAllReduce(gSend, gRecv, 64, ncclFloat, ncclSum, gComms[c], nullptr);
  ncclGroupStart();
  ncclSend(gSend, 16, ncclFloat, 1, gComms[c], nullptr);
  ncclRecv(gRecv, 16, ncclFloat, 1, gComms[c], nullptr);
  ncclGroupEnd();
}

// Dump files under `dir`, and the size of the last one seen.
size_t countDumps(const std::string& dir, uintmax_t* bytes = nullptr) {
  size_t n = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".ncclfr") {
      ++n;
      if (bytes != nullptr) *bytes = fs::file_size(it->path(), ec);
    }
  }
  return n;
}

void removeDumps(const std::string& dir) {
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".ncclfr") doomed.push_back(it->path());
  }
  for (const auto& p : doomed) fs::remove(p, ec);
}

std::string ringPath() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(gTmp + "/shm", ec)) {
    if (e.path().extension() == ".ring") return e.path().string();
  }
  return {};
}

void BM_DumpOnSignal(benchmark::State& state) {
  const std::string dumps = gTmp + "/dumps";
  int step = 0;
  uintmax_t bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    // A call between dumps, so each dump is taken while the rank is making progress, as in a job.
    oneStep(step++ % kComms);
    removeDumps(dumps);
    state.ResumeTiming();
    raise(kDumpSignal);
    state.PauseTiming();
    if (countDumps(dumps, &bytes) != 1) {
      state.SkipWithError("the dump signal wrote no dump (is libncclfr.so preloaded and NCCLFR_DUMP_DIR writable?)");
      state.ResumeTiming();
      break;
    }
    state.ResumeTiming();
  }
  // Every benchmark sets the same counters: the CSV reporter insists.
  state.counters["entries"] = gEntries;
  state.counters["bytes"] = static_cast<double>(bytes);
}

ncclfr::recorder::DumpRequest request() {
  ncclfr::recorder::DumpRequest q;
  q.reason = ncclfr::schema::DumpReason::SIGNAL;
  q.detail = "bench";
  q.incidentId = "bench";
  return q;
}

void BM_RingToDump(benchmark::State& state) {
  ncclfr::recorder::RingRegion ring;
  std::string error;
  if (!ncclfr::recorder::openRingFile(ringPath(), &ring, &error)) {
    state.SkipWithError(("cannot open the ring file: " + error).c_str());
    return;
  }
  ncclfr::recorder::DumpRequest q = request();
  uint64_t written = 0;
  size_t words = 0;
  for (auto _ : state) {
    capnp::MallocMessageBuilder message;
    ncclfr::recorder::DumpStats stats;
    if (!ncclfr::recorder::ringToDump(ring, q, message, &stats, &error)) {
      state.SkipWithError(error.c_str());
      break;
    }
    written = stats.writtenEntries;
    words = capnp::computeSerializedSizeInWords(message);
    benchmark::DoNotOptimize(words);
  }
  ncclfr::recorder::unmapRing(&ring);
  state.counters["entries"] = static_cast<double>(written);
  state.counters["bytes"] = static_cast<double>(words * sizeof(capnp::word));
}

void BM_WriteDumpFile(benchmark::State& state) {
  ncclfr::recorder::RingRegion ring;
  std::string error;
  if (!ncclfr::recorder::openRingFile(ringPath(), &ring, &error)) {
    state.SkipWithError(("cannot open the ring file: " + error).c_str());
    return;
  }
  capnp::MallocMessageBuilder message;
  ncclfr::recorder::DumpStats stats;
  bool ok = ncclfr::recorder::ringToDump(ring, request(), message, &stats, &error);
  ncclfr::recorder::unmapRing(&ring);
  if (!ok) {
    state.SkipWithError(error.c_str());
    return;
  }
  const std::string path = gTmp + "/write-bench.ncclfr";
  std::error_code ec;
  for (auto _ : state) {
    // A live dump always makes a new file; replacing one would add freeing the old one's pages.
    state.PauseTiming();
    fs::remove(path, ec);
    state.ResumeTiming();
    if (!ncclfr::writeDumpFile(path, message, &error)) {
      state.SkipWithError(error.c_str());
      break;
    }
  }
  state.counters["bytes"] = static_cast<double>(fs::file_size(path, ec));
  state.counters["entries"] = static_cast<double>(stats.writtenEntries);
  fs::remove(path, ec);
}

// Each signal dump leaves a trigger file in the job folder (the real path publishes one), so the
// iterations are bounded rather than left to the library's time-based choice.
void configureSignal(benchmark::internal::Benchmark* b) {
  b->Iterations(20)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime()->Unit(benchmark::kMillisecond);
}
void configureLocal(benchmark::internal::Benchmark* b) {
  b->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.2);
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "dump_latency: %s\nusage: dump_latency --entries N [google benchmark flags]\n", why);
  std::exit(2);
}

// Runs this program again with the recorder preloaded and configured for the benchmark.
[[noreturn]] void reexecWithShim(char** argv, uint32_t entries) {
  char dir[] = "/tmp/ncclfr-bench-dump-XXXXXX";
  if (mkdtemp(dir) == nullptr) {
    std::perror("dump_latency: mkdtemp");
    std::exit(1);
  }
  std::string d = dir;
  setenv("LD_PRELOAD", NCCLFR_BENCH_RECORDER_LIB, 1);
  setenv("NCCLFR_BUFFER", std::to_string(entries).c_str(), 1);
  setenv("NCCLFR_TIMING", "host", 1);  // the null NCCL has no CUDA
  setenv("NCCLFR_SHM_DIR", (d + "/shm").c_str(), 1);
  setenv("NCCLFR_DUMP_DIR", (d + "/dumps").c_str(), 1);
  setenv("NCCLFR_DUMP_SIGNAL", "SIGUSR2", 1);
  setenv("NCCLFR_TIMEOUT", "1h", 1);  // nothing but the signal may start a dump
  setenv("NCCLFR_JOB", "bench-dump", 1);
  setenv("NCCLFR_BENCH_CHILD", dir, 1);
  execv("/proc/self/exe", argv);
  std::perror("dump_latency: exec");
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  // --entries is ours; everything else goes to Google Benchmark.
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--entries") == 0) {
      if (i + 1 >= argc) usage("missing value after --entries");
      gEntries = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (gEntries < 64 || (gEntries & (gEntries - 1)) != 0) usage("--entries must be a power of two >= 64");
  const char* child = getenv("NCCLFR_BENCH_CHILD");
  if (child == nullptr) reexecWithShim(argv, gEntries);
  gTmp = child;
  // The private folder goes on every way out but a crash.
  struct RemoveOnExit {
    ~RemoveOnExit() {
      std::error_code ec;
      fs::remove_all(gTmp, ec);
    }
  } removeOnExit;
  if (dlsym(RTLD_DEFAULT, "ncclAllReduce") == dlsym(RTLD_DEFAULT, "pncclAllReduce")) {
    std::fprintf(stderr, "dump_latency: libncclfr.so is not in front of NCCL\n");
    return 1;
  }
  ncclUniqueId id;
  ncclGetUniqueId(&id);
  for (auto& c : gComms) {
    if (ncclCommInitRank(&c, 8, id, 0) != ncclSuccess) return 1;
  }
  // Four calls a step: 2 * entries calls fill the ring twice over.
  for (uint32_t s = 0; s < gEntries / 2; ++s) oneStep(static_cast<int>(s % kComms));
  if (ringPath().empty()) {
    std::fprintf(stderr, "dump_latency: the recorder made no ring file in %s/shm\n", child);
    return 1;
  }

  const std::string n = std::to_string(gEntries);
  benchmark::RegisterBenchmark(("DumpOnSignal/" + n).c_str(), BM_DumpOnSignal)->Apply(configureSignal);
  benchmark::RegisterBenchmark(("RingToDump/" + n).c_str(), BM_RingToDump)->Apply(configureLocal);
  benchmark::RegisterBenchmark(("WriteDumpFile/" + n).c_str(), BM_WriteDumpFile)->Apply(configureLocal);
  int rc = static_cast<int>(rest.size());
  rest.push_back(nullptr);
  benchmark::Initialize(&rc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rc, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (auto& c : gComms) ncclCommDestroy(c);
  return 0;
}
