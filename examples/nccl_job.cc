// nccl_job: a training loop that uses NCCL the way PyTorch's ProcessGroupNCCL does, with a fault that
// can be planted on one rank. It is the job that ncclfr's end-to-end tests and demo record and analyze.
//
// Each rank runs `--steps` steps. A step is: "compute" on the compute stream; with --layout tp-dp an
// all-gather and a reduce-scatter on the tensor-parallel communicator; a ring of sends and receives in
// a group (pipeline traffic) on the world communicator; an all-reduce of the gradients on the
// data-parallel communicator (the world one with --layout world); every fifth step a broadcast from a
// rotating root. Like PyTorch, every communicator has its own stream, ordered against the compute
// stream with events, so a blocked stream on one communicator holds up the next communicator's work
// (the cross-communicator chains ncclfr must see through). The host waits for each step like an
// optimizer does, polling ncclCommGetAsyncError while it waits, and aborts the communicators and exits
// on an NCCL error or after --watchdog-timeout, as PyTorch's watchdog does.
//
// Faults (--fault, on --fault-rank at --fault-step, before the collective of --fault-comm):
//   host_stall     the host thread stops before issuing the collective (a data-loader hang)
//   device_stall   a never-ending "kernel" is queued on the communicator's stream before it (a hung GPU)
//   mismatch       the collective is issued with a different count (or dtype / reduction op, --mismatch)
//   p2p_unmatched  an extra send to the next rank that nobody receives
//   die            the process kills itself with SIGKILL (an OOM kill, a node failure)
//   error          the collective is called with an invalid root and the rank aborts, like a framework
//                  that catches an NCCL error
//
// Ranks meet through a file (see uid_exchange.h). Environment: RANK, WORLD_SIZE, LOCAL_RANK (as
// torchrun and ncclfr-simrun set them; OMPI_COMM_WORLD_* and SLURM_* also work).
//
// Exit codes: 0 all steps done and every result checked; 1 an NCCL error, an abort or a watchdog
// timeout; 2 bad usage; 3 a wrong collective result.
#include <cuda_runtime.h>
#include <nccl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "uid_exchange.h"

namespace {

using Clock = std::chrono::steady_clock;

enum class Fault { kNone, kHostStall, kDeviceStall, kMismatch, kP2pUnmatched, kDie, kError };
enum class Target { kDefault, kWorld, kTp, kDp };

struct Options {
  std::string uidFile;
  int steps = 20;
  bool tpDp = false;
  int tp = 2;
  size_t count = 1024;
  Fault fault = Fault::kNone;
  int faultRank = -1;
  int faultStep = 0;
  Target faultComm = Target::kDefault;
  std::string mismatch = "count";
  int threads = 1;
  bool nonblocking = false;
  double stepMs = 2;
  double watchdogSec = 0;  // 0: wait forever, like a job without a watchdog
  bool quiet = false;
};

int envInt(const char* const* names, int fallback) {
  for (const char* const* n = names; *n != nullptr; ++n) {
    if (const char* v = std::getenv(*n)) return std::atoi(v);
  }
  return fallback;
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "nccl_job: %s\n"
               "usage: nccl_job --uid-file PATH [--steps N] [--layout world|tp-dp] [--tp N] [--count N]\n"
               "                [--fault none|host_stall|device_stall|mismatch|p2p_unmatched|die|error]\n"
               "                [--fault-rank R] [--fault-step S] [--fault-comm world|tp|dp]\n"
               "                [--mismatch count|dtype|redop] [--threads T] [--nonblocking]\n"
               "                [--step-ms MS] [--watchdog-timeout SEC] [--quiet]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  if (const char* f = std::getenv("NCCL_UID_FILE")) o.uidFile = f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    if (a == "--uid-file") o.uidFile = value();
    else if (a == "--steps") o.steps = std::atoi(value().c_str());
    else if (a == "--layout") {
      std::string v = value();
      if (v == "tp-dp") o.tpDp = true;
      else if (v != "world") usage("--layout is world or tp-dp");
    } else if (a == "--tp") o.tp = std::atoi(value().c_str());
    else if (a == "--count") o.count = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--fault") {
      std::string v = value();
      if (v == "none") o.fault = Fault::kNone;
      else if (v == "host_stall") o.fault = Fault::kHostStall;
      else if (v == "device_stall") o.fault = Fault::kDeviceStall;
      else if (v == "mismatch") o.fault = Fault::kMismatch;
      else if (v == "p2p_unmatched") o.fault = Fault::kP2pUnmatched;
      else if (v == "die") o.fault = Fault::kDie;
      else if (v == "error") o.fault = Fault::kError;
      else usage(("unknown fault " + v).c_str());
    } else if (a == "--fault-rank") o.faultRank = std::atoi(value().c_str());
    else if (a == "--fault-step") o.faultStep = std::atoi(value().c_str());
    else if (a == "--fault-comm") {
      std::string v = value();
      if (v == "world") o.faultComm = Target::kWorld;
      else if (v == "tp") o.faultComm = Target::kTp;
      else if (v == "dp") o.faultComm = Target::kDp;
      else usage("--fault-comm is world, tp or dp");
    } else if (a == "--mismatch") {
      o.mismatch = value();
      if (o.mismatch != "count" && o.mismatch != "dtype" && o.mismatch != "redop") {
        usage("--mismatch is count, dtype or redop");
      }
    } else if (a == "--threads") o.threads = std::atoi(value().c_str());
    else if (a == "--nonblocking") o.nonblocking = true;
    else if (a == "--step-ms") o.stepMs = std::atof(value().c_str());
    else if (a == "--watchdog-timeout") o.watchdogSec = std::atof(value().c_str());
    else if (a == "--quiet") o.quiet = true;
    else if (a == "-h" || a == "--help") usage("a training loop with a plantable NCCL fault");
    else usage(("unknown argument " + a).c_str());
  }
  if (o.uidFile.empty()) usage("--uid-file (or NCCL_UID_FILE) is required");
  if (o.steps < 1 || o.threads < 1 || o.tp < 1 || o.count < 1) usage("--steps, --threads, --tp and --count must be positive");
  if (o.fault != Fault::kNone && o.faultRank < 0) usage("--fault needs --fault-rank");
  return o;
}

struct Rank {
  int rank = 0;
  int world = 1;
};

// One communicator and the stream its collectives run on.
struct Comm {
  const char* name = "";
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  int rank = 0;
  int size = 1;
};

std::vector<Comm*> gAllComms;  // every communicator, for the abort path
Options gOpt;
Rank gMe;

[[noreturn]] void abortAllAndExit(int code) {
  for (Comm* c : gAllComms) {
    if (c->comm != nullptr) ncclCommAbort(c->comm);
  }
  std::exit(code);
}

#define CUDA_OK(call)                                                                                  \
  do {                                                                                                 \
    cudaError_t e_ = (call);                                                                           \
    if (e_ != cudaSuccess) {                                                                           \
      std::fprintf(stderr, "rank %d: %s failed: %s\n", gMe.rank, #call, cudaGetErrorString(e_));       \
      abortAllAndExit(1);                                                                              \
    }                                                                                                  \
  } while (0)

// For non-blocking communicators a call may return ncclInProgress: wait until the communicator says
// the operation is issued (as the NCCL documentation asks).
void ncclOk(ncclResult_t r, const char* what, const Comm* c) {
  if (r == ncclInProgress && c != nullptr) {
    do {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      if (ncclCommGetAsyncError(c->comm, &r) != ncclSuccess) break;
    } while (r == ncclInProgress);
  }
  if (r != ncclSuccess) {
    std::fprintf(stderr, "rank %d: %s failed: %s (%s)\n", gMe.rank, what, ncclGetErrorString(r),
                 ncclGetLastError(c != nullptr ? c->comm : nullptr));
    abortAllAndExit(1);
  }
}

void hostSleep(void* ms) {
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(*static_cast<double*>(ms)));
}

// A "kernel" that never finishes: the stream it is on stops here for good.
void hangForever(void*) {
  for (;;) ::pause();
}

// Waits for `stream` like a framework waiting for a step, checking every communicator for
// asynchronous errors meanwhile (peer death shows up there) and enforcing the watchdog timeout.
void waitFor(cudaStream_t stream) {
  auto start = Clock::now();
  auto lastCheck = start;
  for (;;) {
    cudaError_t q = cudaStreamQuery(stream);
    if (q == cudaSuccess) return;
    if (q != cudaErrorNotReady) {
      std::fprintf(stderr, "rank %d: stream failed: %s\n", gMe.rank, cudaGetErrorString(q));
      abortAllAndExit(1);
    }
    auto now = Clock::now();
    if (now - lastCheck > std::chrono::milliseconds(100)) {
      lastCheck = now;
      for (Comm* c : gAllComms) {
        ncclResult_t async = ncclSuccess;
        if (ncclCommGetAsyncError(c->comm, &async) == ncclSuccess && async != ncclSuccess &&
            async != ncclInProgress) {
          std::fprintf(stderr, "rank %d: NCCL async error on the %s communicator: %s; aborting\n", gMe.rank,
                       c->name, ncclGetErrorString(async));
          abortAllAndExit(1);
        }
      }
      if (gOpt.watchdogSec > 0 &&
          std::chrono::duration<double>(now - start).count() > gOpt.watchdogSec) {
        std::fprintf(stderr, "rank %d: watchdog: step did not finish in %.1f s; aborting\n", gMe.rank,
                     gOpt.watchdogSec);
        abortAllAndExit(1);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// The per-rank state of the training loop.
struct Job {
  Comm world, tp, dp;  // dp and tp alias world when --layout world
  cudaStream_t compute = nullptr;
  float* grads = nullptr;     // all-reduce in place
  float* shard = nullptr;     // tensor-parallel shard
  float* gathered = nullptr;  // all-gathered activations
  float* scattered = nullptr;
  float* sendBuf = nullptr;
  float* recvBuf = nullptr;
  float* bcast = nullptr;
  std::vector<float> host;
  size_t count = 0;
  cudaEvent_t ready = nullptr, done = nullptr;
};

Comm* target(Job& j, Target t) {
  switch (t) {
    case Target::kWorld: return &j.world;
    case Target::kTp: return &j.tp;
    case Target::kDefault:
    case Target::kDp: return &j.dp;
  }
  return &j.dp;
}

bool faultHere(int step, const Comm* c, Job& j) {
  return gOpt.fault != Fault::kNone && gMe.rank == gOpt.faultRank && step == gOpt.faultStep &&
         c == target(j, gOpt.faultComm);
}

// PyTorch-style ordering: the communicator's stream waits for the compute stream, and the compute
// stream waits for the collective before the next step uses its result.
void beforeCollective(Job& j, Comm& c) {
  CUDA_OK(cudaEventRecord(j.ready, j.compute));
  CUDA_OK(cudaStreamWaitEvent(c.stream, j.ready, 0));
}
void afterCollective(Job& j, Comm& c) {
  CUDA_OK(cudaEventRecord(j.done, c.stream));
  CUDA_OK(cudaStreamWaitEvent(j.compute, j.done, 0));
}

// Plants the fault, if this is the place. Returns the count to use (mismatch changes it).
size_t plantFault(int step, Comm& c, Job& j, size_t count, ncclDataType_t* dtype, ncclRedOp_t* op) {
  if (!faultHere(step, &c, j)) return count;
  switch (gOpt.fault) {
    case Fault::kHostStall:
      if (!gOpt.quiet) std::fprintf(stderr, "rank %d: planted host stall before step %d on %s\n", gMe.rank, step, c.name);
      for (;;) ::pause();
    case Fault::kDeviceStall:
      if (!gOpt.quiet) std::fprintf(stderr, "rank %d: planted device stall at step %d on %s\n", gMe.rank, step, c.name);
      CUDA_OK(cudaLaunchHostFunc(c.stream, hangForever, nullptr));
      return count;
    case Fault::kMismatch:
      if (!gOpt.quiet) std::fprintf(stderr, "rank %d: planted %s mismatch at step %d on %s\n", gMe.rank, gOpt.mismatch.c_str(), step, c.name);
      if (gOpt.mismatch == "dtype") *dtype = ncclInt32;  // same byte size, different type
      else if (gOpt.mismatch == "redop") *op = ncclMax;
      else return count - 1;
      return count;
    case Fault::kDie:
      if (!gOpt.quiet) std::fprintf(stderr, "rank %d: planted death at step %d\n", gMe.rank, step);
      std::fflush(stderr);
      ::raise(SIGKILL);
      return count;
    case Fault::kError: {
      if (!gOpt.quiet) std::fprintf(stderr, "rank %d: planted invalid call at step %d on %s\n", gMe.rank, step, c.name);
      ncclResult_t r = ncclBroadcast(j.bcast, j.bcast, count, ncclFloat32, c.size /* no such root */, c.comm, c.stream);
      std::fprintf(stderr, "rank %d: ncclBroadcast returned %s; aborting\n", gMe.rank, ncclGetErrorString(r));
      abortAllAndExit(1);
    }
    case Fault::kP2pUnmatched:
    case Fault::kNone:
      return count;
  }
  return count;
}

void allReduce(Job& j, Comm& c, int step) {
  ncclDataType_t dtype = ncclFloat32;
  ncclRedOp_t op = ncclSum;
  size_t n = plantFault(step, c, j, j.count, &dtype, &op);
  beforeCollective(j, c);
  ncclOk(ncclAllReduce(j.grads, j.grads, n, dtype, op, c.comm, c.stream), "ncclAllReduce", &c);
  afterCollective(j, c);
}

void tensorParallel(Job& j, int step) {
  Comm& c = j.tp;
  ncclDataType_t dtype = ncclFloat32;
  ncclRedOp_t op = ncclSum;
  size_t shardCount = j.count / static_cast<size_t>(c.size);
  size_t n = plantFault(step, c, j, shardCount, &dtype, &op);
  beforeCollective(j, c);
  ncclOk(ncclAllGather(j.shard, j.gathered, n, dtype, c.comm, c.stream), "ncclAllGather", &c);
  ncclOk(ncclReduceScatter(j.gathered, j.scattered, shardCount, ncclFloat32, ncclSum, c.comm, c.stream),
         "ncclReduceScatter", &c);
  afterCollective(j, c);
}

// A ring shift: every rank sends to the next and receives from the previous, in one group.
void pipeline(Job& j, int step) {
  Comm& c = j.world;
  if (c.size < 2) return;
  int next = (c.rank + 1) % c.size, prev = (c.rank + c.size - 1) % c.size;
  size_t n = j.count / 4 + 1;
  bool extra = gOpt.fault == Fault::kP2pUnmatched && gMe.rank == gOpt.faultRank && step == gOpt.faultStep;
  if (extra && !gOpt.quiet) std::fprintf(stderr, "rank %d: planted unmatched send at step %d\n", gMe.rank, step);
  beforeCollective(j, c);
  ncclOk(ncclGroupStart(), "ncclGroupStart", nullptr);
  ncclOk(ncclSend(j.sendBuf, n, ncclFloat32, next, c.comm, c.stream), "ncclSend", &c);
  ncclOk(ncclRecv(j.recvBuf, n, ncclFloat32, prev, c.comm, c.stream), "ncclRecv", &c);
  if (extra) ncclOk(ncclSend(j.sendBuf, n, ncclFloat32, next, c.comm, c.stream), "ncclSend", &c);
  ncclResult_t r = ncclGroupEnd();
  ncclOk(r, "ncclGroupEnd", &c);
  afterCollective(j, c);
}

void broadcast(Job& j, int step) {
  Comm& c = j.world;
  ncclDataType_t dtype = ncclFloat32;
  ncclRedOp_t op = ncclSum;
  size_t n = plantFault(step, c, j, j.count, &dtype, &op);
  beforeCollective(j, c);
  ncclOk(ncclBroadcast(j.bcast, j.bcast, n, dtype, step % c.size, c.comm, c.stream), "ncclBroadcast", &c);
  afterCollective(j, c);
}

void initComm(Comm& c, const char* name, ncclUniqueId id) {
  c.name = name;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = gOpt.nonblocking ? 0 : 1;
  config.commName = name;
  ncclResult_t r = ncclCommInitRankConfig(&c.comm, gMe.world, id, gMe.rank, &config);
  ncclOk(r, "ncclCommInitRankConfig", &c);
  gAllComms.push_back(&c);
  CUDA_OK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
  c.rank = gMe.rank;
  c.size = gMe.world;
}

void splitComm(const Comm& parent, Comm& c, const char* name, int color, int key) {
  c.name = name;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = gOpt.nonblocking ? 0 : 1;
  config.commName = name;
  // A non-blocking split leaves *newcomm NULL until the new communicator is ready, and returns
  // ncclInProgress (sim/) or ncclSuccess (NCCL 2.28 drops the "in progress" internally): either
  // way the work is tied to the parent, so that is the one to poll until it reports success.
  ncclResult_t r = ncclCommSplit(parent.comm, color, key, &c.comm, &config);
  if (r == ncclSuccess && gOpt.nonblocking && c.comm == nullptr) r = ncclInProgress;
  ncclOk(r, "ncclCommSplit", &parent);
  if (c.comm == nullptr) {
    std::fprintf(stderr, "rank %d: ncclCommSplit returned no communicator\n", gMe.rank);
    abortAllAndExit(1);
  }
  gAllComms.push_back(&c);
  CUDA_OK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
  ncclOk(ncclCommUserRank(c.comm, &c.rank), "ncclCommUserRank", &c);
  ncclOk(ncclCommCount(c.comm, &c.size), "ncclCommCount", &c);
}

float* deviceBuffer(size_t count) {
  float* p = nullptr;
  CUDA_OK(cudaMalloc(&p, count * sizeof(float)));
  return p;
}

void fill(Job& j, float* dst, float value, size_t count) {
  for (size_t k = 0; k < count; ++k) j.host[k] = value;
  CUDA_OK(cudaMemcpy(dst, j.host.data(), count * sizeof(float), cudaMemcpyHostToDevice));
}

bool check(Job& j, const float* src, float want, size_t count, const char* what, int step) {
  CUDA_OK(cudaMemcpy(j.host.data(), src, count * sizeof(float), cudaMemcpyDeviceToHost));
  for (size_t k = 0; k < count; ++k) {
    if (std::fabs(j.host[k] - want) > 1e-3f * std::fabs(want) + 1e-3f) {
      std::fprintf(stderr, "rank %d: step %d: %s[%zu] = %g, expected %g\n", gMe.rank, step, what, k,
                   static_cast<double>(j.host[k]), static_cast<double>(want));
      return false;
    }
  }
  return true;
}

// The extra threads of --threads: each drives its own communicator (split from world) with
// all-reduces on its own stream, as a framework with several process groups on several threads does.
void sideThread(Comm* c, int steps, std::atomic<int>* failures) {
  float* buf = deviceBuffer(gOpt.count);
  for (int step = 0; step < steps; ++step) {
    ncclOk(ncclAllReduce(buf, buf, gOpt.count, ncclFloat32, ncclSum, c->comm, c->stream), "ncclAllReduce", c);
    waitFor(c->stream);
  }
  if (cudaFree(buf) != cudaSuccess) failures->fetch_add(1);
}

}  // namespace

int main(int argc, char** argv) {
  gOpt = parse(argc, argv);
  const char* rankVars[] = {"RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID", "PMI_RANK", nullptr};
  const char* sizeVars[] = {"WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS", "PMI_SIZE", nullptr};
  const char* localVars[] = {"LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", nullptr};
  gMe.rank = envInt(rankVars, 0);
  gMe.world = envInt(sizeVars, 1);
  int localRank = envInt(localVars, 0);
  if (gMe.rank < 0 || gMe.rank >= gMe.world) usage("RANK must be in [0, WORLD_SIZE)");
  if (gOpt.tpDp && gMe.world % gOpt.tp != 0) usage("WORLD_SIZE must be a multiple of --tp");

  int devices = 0;
  CUDA_OK(cudaGetDeviceCount(&devices));
  if (devices < 1) usage("no CUDA device");
  CUDA_OK(cudaSetDevice(localRank % devices));

  ncclUniqueId id;
  if (!examples::exchangeUniqueId(gOpt.uidFile, gMe.rank, &id)) return 1;

  Job j;
  initComm(j.world, "world", id);
  if (gOpt.tpDp) {
    // Tensor-parallel groups are consecutive ranks; data-parallel groups take one rank of each.
    splitComm(j.world, j.tp, "tp", gMe.rank / gOpt.tp, gMe.rank);
    splitComm(j.world, j.dp, "dp", gMe.rank % gOpt.tp, gMe.rank);
  } else {
    j.tp = j.world;
    j.dp = j.world;
  }
  std::vector<Comm> side(static_cast<size_t>(gOpt.threads - 1));
  for (size_t t = 0; t < side.size(); ++t) splitComm(j.world, side[t], "side", 0, gMe.rank);

  j.count = gOpt.count;
  if (gOpt.tpDp) j.count = (j.count + gOpt.tp - 1) / gOpt.tp * gOpt.tp;
  j.host.resize(j.count);
  j.grads = deviceBuffer(j.count);
  j.shard = deviceBuffer(j.count);
  j.gathered = deviceBuffer(j.count);
  j.scattered = deviceBuffer(j.count);
  j.sendBuf = deviceBuffer(j.count);
  j.recvBuf = deviceBuffer(j.count);
  j.bcast = deviceBuffer(j.count);
  CUDA_OK(cudaStreamCreateWithFlags(&j.compute, cudaStreamNonBlocking));
  CUDA_OK(cudaEventCreateWithFlags(&j.ready, cudaEventDisableTiming));
  CUDA_OK(cudaEventCreateWithFlags(&j.done, cudaEventDisableTiming));

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (auto& c : side) threads.emplace_back(sideThread, &c, gOpt.steps, &failures);

  bool correct = true;
  for (int step = 0; step < gOpt.steps && correct; ++step) {
    float v = static_cast<float>(gMe.rank + 1) * static_cast<float>(step + 1);
    fill(j, j.grads, v, j.count);
    fill(j, j.shard, static_cast<float>(j.tp.rank + 1), j.count / static_cast<size_t>(j.tp.size));
    fill(j, j.sendBuf, static_cast<float>(gMe.rank), j.count / 4 + 1);
    if (step % 5 == 0) fill(j, j.bcast, gMe.rank == step % gMe.world ? 42.0f + static_cast<float>(step) : -1.0f, j.count);

    CUDA_OK(cudaLaunchHostFunc(j.compute, hostSleep, &gOpt.stepMs));
    if (gOpt.tpDp) tensorParallel(j, step);
    pipeline(j, step);
    allReduce(j, j.dp, step);
    if (step % 5 == 0) broadcast(j, step);
    waitFor(j.compute);

    // Sum over the data-parallel group of (rank + 1) * (step + 1).
    float want = 0;
    for (int r = 0; r < gMe.world; ++r) {
      if (!gOpt.tpDp || r % gOpt.tp == gMe.rank % gOpt.tp) want += static_cast<float>(r + 1) * static_cast<float>(step + 1);
    }
    correct = check(j, j.grads, want, j.count, "allreduce", step);
    if (correct && gOpt.tpDp) {
      // Every tp rank gathers the same blocks (block k holds k + 1); reduce-scatter sums them over
      // the tp ranks and hands rank r block r: tp.size * (r + 1).
      float tpWant = static_cast<float>(j.tp.size * (j.tp.rank + 1));
      correct = check(j, j.scattered, tpWant, j.count / static_cast<size_t>(j.tp.size), "reducescatter", step);
    }
    if (correct && gMe.world > 1) {
      correct = check(j, j.recvBuf, static_cast<float>((gMe.rank + gMe.world - 1) % gMe.world), j.count / 4 + 1, "recv", step);
    }
    if (correct && step % 5 == 0) correct = check(j, j.bcast, 42.0f + static_cast<float>(step), j.count, "broadcast", step);
  }
  for (auto& t : threads) t.join();
  if (!correct || failures.load() != 0) abortAllAndExit(3);

  for (auto& c : side) ncclOk(ncclCommDestroy(c.comm), "ncclCommDestroy", nullptr);
  if (gOpt.tpDp) {
    ncclOk(ncclCommDestroy(j.tp.comm), "ncclCommDestroy", nullptr);
    ncclOk(ncclCommDestroy(j.dp.comm), "ncclCommDestroy", nullptr);
  }
  ncclOk(ncclCommFinalize(j.world.comm), "ncclCommFinalize", &j.world);
  ncclOk(ncclCommDestroy(j.world.comm), "ncclCommDestroy", nullptr);
  if (gMe.rank == 0 && !gOpt.quiet) {
    std::printf("nccl_job: %d ranks, %d steps, every result checked\n", gMe.world, gOpt.steps);
  }
  return 0;
}
