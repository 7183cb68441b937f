// libncclfr.so over the real libnccl.so.2 from the CUDA installation. Without a GPU, the calls that
// work anyway must pass their results through unchanged; with a GPU, a real job is recorded with
// GPU times and NCCL's own communicator id.
#include <dlfcn.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "process_harness.h"

using namespace rectest;

namespace {

std::string preload() {
  std::string runtime = NCCLFR_TEST_SANITIZER_RUNTIME;
  return runtime.empty() ? std::string(NCCLFR_TEST_RECORDER_LIB) : runtime + " " + NCCLFR_TEST_RECORDER_LIB;
}

std::map<std::string, std::string> realEnv(const Workspace& w) {
  return {{"LD_PRELOAD", preload()},
          {"LD_LIBRARY_PATH", std::string(NCCLFR_TEST_REAL_NCCL_DIR) + ":" + NCCLFR_TEST_CUDA_LIB_DIR},
          {"NCCLFR_SHM_DIR", w.shm()},
          {"NCCLFR_DUMP_DIR", w.dumps()},
          {"NCCLFR_JOB", "real"},
          {"NCCLFR_TIMEOUT", "5s"}};
}

bool haveGpu() {
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (cuda == nullptr) return false;
  using InitFn = int (*)(unsigned);
  using CountFn = int (*)(int*);
  auto init = reinterpret_cast<InitFn>(dlsym(cuda, "cuInit"));
  auto count = reinterpret_cast<CountFn>(dlsym(cuda, "cuDeviceGetCount"));
  int n = 0;
  return init != nullptr && count != nullptr && init(0) == 0 && count(&n) == 0 && n > 0;
}

}  // namespace

TEST_CASE("over the real NCCL, return codes pass through unchanged") {
  Workspace w;
  Process p({NCCLFR_TEST_REAL_NCCL_CHECK}, realEnv(w), w.path("out"), w.path("err"));
  REQUIRE(p.wait());
  INFO(p.out() + p.err());
  CHECK(p.exitedWith(0));
  CHECK(p.outContains("0 mismatches"));
  CHECK(p.outContains("version 22809"));
  // Failed inits are recorded as such, not as incidents: no dump, and the ring left with the process.
  CHECK(countDumps(w.dumps()) == 0);
  CHECK(countFiles(w.shm(), ".ring") == 0);
}

TEST_CASE("on a GPU: a real NCCL job is recorded with GPU times and NCCL's commHash") {
  if (!haveGpu()) {
    std::printf("SKIPPED: no GPU (libcuda.so.1 with a device) on this machine\n");
    std::fflush(stdout);
    std::exit(4);
  }
  Workspace w;
  auto env = realEnv(w);
  env["NCCLFR_DUMP_ON_EXIT"] = "1";
  env["NCCL_DEBUG"] = "INFO";
  env["NCCL_DEBUG_SUBSYS"] = "INIT";
  Process p({NCCLFR_TEST_JOB, "--uid-file", w.path("uid"), "--scenario", "exact", "--calls", "20", "--cuda"}, env,
            w.path("out"), w.path("err"));
  REQUIRE(p.wait(std::chrono::seconds(120)));
  INFO(p.err());
  REQUIRE(p.exitedWith(0));
  auto dumps = dumpsIn(w.dumps());
  REQUIRE(dumps.size() == 1);
  auto d = dumps[0]->dump();
  CHECK(d.getProcess().getTiming() == ncclfr::schema::TimingMode::FULL);
  CHECK(d.getProcess().getCudaDriverVersion() > 0);
  auto c = d.getComms()[1];
  CHECK(c.getLastCompletedSeq() == c.getLastEnqueuedSeq());
  CHECK(c.getLastStartedSeq() == c.getLastEnqueuedSeq());
  int timed = 0;
  for (auto e : d.getEntries()) {
    if (e.getComm() == 0) continue;
    CHECK(e.getState() == ncclfr::schema::EntryState::COMPLETED);
    timed += e.getStartMonoNs() > 0 && e.getEndMonoNs() >= e.getStartMonoNs() &&
             e.getStartMonoNs() >= e.getEnqueueMonoNs() - 1'000'000;
  }
  CHECK(timed == static_cast<int>(d.getEntries().size()));
  // NCCL logs "ncclCommInitRank comm 0x... rank 0 nranks 1 ... commId 0x... - Init COMPLETE" for the
  // world communicator; ours must be the same number.
  std::string log = p.out() + p.err();
  uint64_t ncclId = 0;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    auto at = line.find("commId 0x");
    if (line.find("ncclCommInitRank comm") == std::string::npos || line.find("Init COMPLETE") == std::string::npos ||
        at == std::string::npos) {
      continue;
    }
    ncclId = std::stoull(line.substr(at + 7), nullptr, 16);
    break;
  }
  REQUIRE(ncclId != 0);
  CHECK(ncclId == d.getComms()[0].getId());
}
