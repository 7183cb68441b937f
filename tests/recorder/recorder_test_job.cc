// recorder_test_job: a plain NCCL program (CUDA and NCCL headers, no ncclfr headers) that the
// recorder's end-to-end tests run with LD_PRELOAD=libncclfr.so, on sim/ or on the test-only fake
// NCCL. Each scenario drives NCCL in one way and prints what the recorder should have seen.
//
//   recorder_test_job [--uid-file PATH] --scenario NAME [--calls N] [--threads T] [--comms C] [--cuda]
//                     [--marker PATH] [--term-handler]
//
// Scenarios:
//   exact   T threads x C communicators (split from the world one), N rounds of every kind of call
//           each (collectives, ncclBcast, grouped send/recv); prints the expected counts as
//           "comm <index> coll <n> send <peer> <n> recv <peer> <n>" lines, then exits normally.
//   idle    N all-reduces, then prints "ready" and waits (for a signal, a trigger, a kill).
//   busy    N rounds of every kind of call (as `exact`, one thread, on the world communicator),
//           then prints "ready" and waits.
//   abort   N all-reduces, then ncclCommAbort, then exits normally.
//   heldabort  (--cuda) N all-reduces; then a host function holds the stream until the abort and
//           --hold-ms more (-1: for good), N more all-reduces are queued behind it, and at once
//           ncclCommAbort; prints "aborted" and, unless the stream
//           is held for good, waits for it and exits normally.
//   revoke  N all-reduces, then ncclCommRevoke and ncclCommDestroy, then exits normally.
//   fork    N all-reduces; a forked child makes N calls of its own (and with --exec-child runs
//           `exact` in a fresh process); then N more in the parent, then exits.
//   crash   N all-reduces, then abort() (SIGABRT).
//   destroy N all-reduces, ncclCommDestroy, then waits a little and exits.
//   nonblocking  a non-blocking communicator (config.blocking = 0), N all-reduces, each followed by
//           ncclCommGetAsyncError until it reports success (with --no-poll: none, and the calls
//           start right after the init), then exits.
//   lapincall  thread A's one all-reduce (the process's first work call: make it block with
//           FAKE_NCCL_BLOCK_AT=0) while thread B, on its own communicator and stream, makes N calls
//           1 ms apart, prints "ready", waits for A's call to return, then makes 5 more 20 ms apart.
//   biggroup  one group of N all-reduces, then 3 all-reduces 10 ms apart, on one stream.
//   nbgroup  C non-blocking communicators split from the (blocking) world one; one group of N
//           all-reduces spread over them; 50 ms later ncclCommGetAsyncError on the last one only
//           until it reports success, then at once 40 all-reduces on the world communicator and,
//           20 ms later, one more, all on the group's stream.
//   latesplit  children whose handle NCCL writes after the split returned: a non-blocking parent
//           split from the world one, three splits of it through one variable (the handle shows
//           when the parent's ncclCommGetAsyncError reports success), and a split of the world one
//           inside a group (the handle shows at ncclGroupEnd); N all-reduces on the first two and
//           the grouped one (the third is destroyed unused), then exits.
//   latesplitfail  (with FAKE_NCCL_SPLIT_FAIL=1) the non-blocking parent, one split of it that fails
//           in the background; polls the parent until it says so, prints "ready" and waits.
//   derive  ncclCommInitAll, splits (one NOCOLOR) and a shrink; one all-reduce on each; prints the pid.
//   capture N rounds of an all-reduce on a normal stream, then one and a send/recv group on a stream
//           being captured into a CUDA graph.
// --keep-going reports failed calls on stderr instead of exiting.
// --term-handler installs a SIGTERM handler before NCCL is touched; it writes "term handler ran"
// to --marker and exits with status 42 (the recorder must chain to it).
// Ranks come from RANK/WORLD_SIZE (ncclfr-simrun, torchrun), default 0 of 1.
#include <cuda_runtime.h>
#include <fcntl.h>
#include <nccl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../../examples/uid_exchange.h"

namespace {

struct Options {
  std::string uidFile;
  std::string scenario = "exact";
  std::string marker;
  int calls = 10;
  int threads = 1;
  int comms = 1;
  bool cuda = false;
  bool termHandler = false;
  bool execChild = false;
  bool keepGoing = false;
  bool noPoll = false;
  int holdMs = 200;
  std::string self;
};
bool gKeepGoing = false;

int gRank = 0, gWorld = 1;
int gDevice = 0;  // the current device is per thread: every thread selects it
std::string gMarker;

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess && r != ncclInProgress) {
    std::fprintf(stderr, "rank %d: %s failed: %d\n", gRank, what, static_cast<int>(r));
    if (!gKeepGoing) std::exit(1);
  }
}

void onTerm(int) {
  if (!gMarker.empty()) {
    int fd = open(gMarker.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      const char msg[] = "term handler ran\n";
      ssize_t ignored = write(fd, msg, sizeof msg - 1);
      (void)ignored;
      close(fd);
    }
  }
  _exit(42);
}

struct Buffers {
  void* send = nullptr;
  void* recv = nullptr;
  cudaStream_t stream = nullptr;
  bool cuda = false;
  Buffers() = default;
  Buffers(const Buffers&) = delete;
  Buffers& operator=(const Buffers&) = delete;
  Buffers(Buffers&& o) noexcept { *this = std::move(o); }
  Buffers& operator=(Buffers&& o) noexcept {
    std::swap(send, o.send);
    std::swap(recv, o.recv);
    std::swap(stream, o.stream);
    std::swap(cuda, o.cuda);
    return *this;
  }
  ~Buffers() {
    if (cuda) {
      if (send) cudaFree(send);
      if (recv) cudaFree(recv);
      if (stream) cudaStreamDestroy(stream);
    } else {
      std::free(send);
      std::free(recv);
    }
  }
};

Buffers makeBuffers(const Options& o, size_t bytes) {
  Buffers b;
  b.cuda = o.cuda;
  if (o.cuda) {
    cudaSetDevice(gDevice);
    // A non-blocking stream and a memset on it, never the legacy stream: legacy work waits for
    // every blocking stream of the device, so a memset there by one thread while another thread's
    // collective waits for its peers ties the ranks together and can deadlock (on GPUs too).
    if (cudaMalloc(&b.send, bytes) != cudaSuccess || cudaMalloc(&b.recv, bytes) != cudaSuccess ||
        cudaStreamCreateWithFlags(&b.stream, cudaStreamNonBlocking) != cudaSuccess ||
        cudaMemsetAsync(b.send, 0, bytes, b.stream) != cudaSuccess || cudaStreamSynchronize(b.stream) != cudaSuccess) {
      std::fprintf(stderr, "rank %d: CUDA set-up failed\n", gRank);
      std::exit(1);
    }
  } else {
    b.send = std::calloc(1, bytes);
    b.recv = std::calloc(1, bytes);
  }
  return b;
}

void sync(const Options& o, const Buffers& b) {
  if (o.cuda) cudaStreamSynchronize(b.stream);
}

ncclComm_t initWorld(const Options& o) {
  ncclUniqueId id;
  if (!examples::exchangeUniqueId(o.uidFile, gRank, &id)) std::exit(1);
  ncclComm_t comm;
  check(ncclCommInitRank(&comm, gWorld, id, gRank), "ncclCommInitRank");
  return comm;
}

// What one thread issued on one communicator.
struct Counts {
  long coll = 0;
  std::map<int, long> send, recv;
};

void rounds(const Options& o, ncclComm_t comm, const Buffers& b, int n, Counts* c) {
  constexpr size_t kCount = 64;
  int next = (gRank + 1) % gWorld, prev = (gRank + gWorld - 1) % gWorld;
  for (int i = 0; i < n; ++i) {
    check(ncclAllReduce(b.send, b.recv, kCount, ncclFloat, ncclSum, comm, b.stream), "ncclAllReduce");
    check(ncclBcast(b.recv, kCount, ncclFloat, 0, comm, b.stream), "ncclBcast");
    check(ncclAllGather(b.send, b.recv, kCount / gWorld, ncclFloat, comm, b.stream), "ncclAllGather");
    check(ncclReduceScatter(b.send, b.recv, kCount / gWorld, ncclFloat, ncclMax, comm, b.stream), "ncclReduceScatter");
    check(ncclReduce(b.send, b.recv, kCount, ncclFloat, ncclSum, i % gWorld, comm, b.stream), "ncclReduce");
    check(ncclGroupStart(), "ncclGroupStart");
    check(ncclSend(b.send, kCount, ncclFloat, next, comm, b.stream), "ncclSend");
    check(ncclRecv(b.recv, kCount, ncclFloat, prev, comm, b.stream), "ncclRecv");
    check(ncclGroupEnd(), "ncclGroupEnd");
    c->coll += 5;
    c->send[next] += 1;
    c->recv[prev] += 1;
  }
  sync(o, b);
}

void allReduces(const Options& o, ncclComm_t comm, const Buffers& b, int n) {
  for (int i = 0; i < n; ++i) {
    check(ncclAllReduce(b.send, b.recv, 64, ncclFloat, ncclSum, comm, b.stream), "ncclAllReduce");
  }
  sync(o, b);
}

// A host function that holds its stream until the communicator has been aborted, then *ms
// milliseconds more, or for good when that is negative.
std::atomic<bool> gAborted{false};
void holdStream(void* ms) {
  int n = *static_cast<const int*>(ms);
  if (n < 0) {
    for (;;) pause();
  }
  while (!gAborted.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(n));
}

[[noreturn]] void waitForever() {
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) pause();
}

int runExact(const Options& o) {
  ncclComm_t world = initWorld(o);
  // Communicators in creation order, as the dump lists them: world, then the splits.
  std::vector<ncclComm_t> comms;
  for (int k = 0; k < o.threads * o.comms; ++k) {
    ncclComm_t c;
    check(ncclCommSplit(world, 0, gRank, &c, nullptr), "ncclCommSplit");
    comms.push_back(c);
  }
  std::vector<Counts> counts(comms.size());
  std::vector<std::thread> threads;
  // Threads take turns round by round, so every rank issues the communicators' calls in the same
  // order: NCCL (and sim/) may deadlock when ranks interleave communicators differently. Within a
  // turn a thread's calls still race with the other threads' recording and with the watchdog.
  std::mutex turnMutex;
  std::condition_variable turnChanged;
  int turn = 0;
  for (int t = 0; t < o.threads; ++t) {
    threads.emplace_back([&, t] {
      Buffers b = makeBuffers(o, 4096);
      for (int i = 0; i < o.calls; ++i) {
        std::unique_lock<std::mutex> lock(turnMutex);
        turnChanged.wait(lock, [&] { return turn % o.threads == t; });
        for (int k = 0; k < o.comms; ++k) {
          size_t idx = static_cast<size_t>(t * o.comms + k);
          rounds(o, comms[idx], b, 1, &counts[idx]);
        }
        ++turn;
        turnChanged.notify_all();
      }
    });
  }
  for (auto& th : threads) th.join();
  std::printf("comm 0 coll 0\n");
  for (size_t i = 0; i < comms.size(); ++i) {
    std::printf("comm %zu coll %ld", i + 1, counts[i].coll);
    for (auto& [peer, n] : counts[i].send) std::printf(" send %d %ld", peer, n);
    for (auto& [peer, n] : counts[i].recv) std::printf(" recv %d %ld", peer, n);
    std::printf("\n");
  }
  std::fflush(stdout);
  for (ncclComm_t c : comms) check(ncclCommDestroy(c), "ncclCommDestroy");
  check(ncclCommDestroy(world), "ncclCommDestroy");
  return 0;
}

int runFork(const Options& o) {
  ncclComm_t world = initWorld(o);
  Buffers b = makeBuffers(o, 4096);
  allReduces(o, world, b, o.calls);
  std::fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    // A DataLoader-style worker: whatever it does with NCCL must not land in the parent's ring.
    allReduces(o, world, b, o.calls);
    if (o.execChild) {
      std::string calls = std::to_string(o.calls);
      std::string uid = o.uidFile + ".child";
      execl(o.self.c_str(), o.self.c_str(), "--uid-file", uid.c_str(), "--scenario", "exact", "--calls",
            calls.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "fork: child failed (status %d)\n", status);
    return 1;
  }
  allReduces(o, world, b, o.calls);
  check(ncclCommDestroy(world), "ncclCommDestroy");
  std::printf("parent calls %d\n", 2 * o.calls);
  return 0;
}

// Streams of their own: on the fake CUDA driver any handle will do.
cudaStream_t streamFor(const Options& o, Buffers& b, uintptr_t fake) {
  return o.cuda ? b.stream : reinterpret_cast<cudaStream_t>(fake);
}

void sleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

int runLapInCall(const Options& o) {
  ncclComm_t world = initWorld(o);
  ncclComm_t other;
  check(ncclCommSplit(world, 0, gRank, &other, nullptr), "ncclCommSplit");
  std::atomic<bool> aReturned{false};
  std::thread a([&] {
    Buffers b = makeBuffers(o, 4096);
    check(ncclAllReduce(b.send, b.recv, 64, ncclFloat, ncclSum, world, streamFor(o, b, 0xa000)), "ncclAllReduce");
    aReturned.store(true);
  });
  std::thread bThread([&] {
    Buffers b = makeBuffers(o, 4096);
    cudaStream_t s = streamFor(o, b, 0xb000);
    // A is inside NCCL by now: the fake NCCL marks the call it blocks (else give A 200 ms).
    const char* blocked = std::getenv("FAKE_NCCL_BLOCKED_MARK");
    if (blocked != nullptr) {
      while (access(blocked, F_OK) != 0) sleepMs(1);
    } else {
      sleepMs(200);
    }
    for (int i = 0; i < o.calls; ++i) {
      check(ncclAllReduce(b.send, b.recv, 64, ncclFloat, ncclSum, other, s), "ncclAllReduce");
      sleepMs(1);
    }
    std::printf("ready\n");
    std::fflush(stdout);
    while (!aReturned.load()) sleepMs(5);
    for (int i = 0; i < 5; ++i) {
      sleepMs(20);
      check(ncclAllReduce(b.send, b.recv, 64, ncclFloat, ncclSum, other, s), "ncclAllReduce");
    }
  });
  a.join();
  bThread.join();
  check(ncclCommDestroy(other), "ncclCommDestroy");
  check(ncclCommDestroy(world), "ncclCommDestroy");
  return 0;
}

int runLateSplit(const Options& o) {
  ncclComm_t world = initWorld(o);
  Buffers b = makeBuffers(o, 4096);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  auto waitReady = [](ncclComm_t c) {
    ncclResult_t state = ncclInProgress;
    while (state == ncclInProgress) check(ncclCommGetAsyncError(c, &state), "ncclCommGetAsyncError");
    check(state, "ncclCommGetAsyncError");
  };
  ncclComm_t nb = nullptr;
  check(ncclCommSplit(world, 0, gRank, &nb, &config), "ncclCommSplit");
  waitReady(nb);
  if (o.scenario == "latesplitfail") {
    // With FAKE_NCCL_SPLIT_FAIL=1 the split fails in the background: the parent says so.
    ncclComm_t child = nullptr;
    check(ncclCommSplit(nb, 0, gRank, &child, nullptr), "ncclCommSplit");
    ncclResult_t state = ncclInProgress;
    while (state == ncclInProgress) check(ncclCommGetAsyncError(nb, &state), "ncclCommGetAsyncError");
    std::printf("split ended with %d\n", static_cast<int>(state));
    std::fflush(stdout);
    waitForever();
  }
  // Children of the non-blocking parent, all through one variable: the split's work is the
  // parent's, so once the parent reports success the handle is there.
  ncclComm_t v = nullptr;
  ncclComm_t late[3];
  for (ncclComm_t& c : late) {
    check(ncclCommSplit(nb, 0, gRank, &v, nullptr), "ncclCommSplit");
    waitReady(nb);
    if (v == nullptr) {
      std::fprintf(stderr, "no handle after the parent reported success\n");
      return 1;
    }
    c = v;
  }
  ncclComm_t grouped = nullptr;
  check(ncclGroupStart(), "ncclGroupStart");
  check(ncclCommSplit(world, 1, gRank, &grouped, nullptr), "ncclCommSplit");
  check(ncclGroupEnd(), "ncclGroupEnd");
  if (grouped == nullptr) {
    std::fprintf(stderr, "no handle after ncclGroupEnd\n");
    return 1;
  }
  // late[2] is destroyed unused.
  for (int i = 0; i < o.calls; ++i) {
    for (ncclComm_t c : {late[0], late[1]}) {
      check(ncclAllReduce(b.send, b.recv, 64, ncclFloat, ncclSum, c, b.stream), "ncclAllReduce");
      waitReady(c);
    }
    check(ncclAllReduce(b.send, b.recv, 64, ncclFloat, ncclSum, grouped, b.stream), "ncclAllReduce");
  }
  sync(o, b);
  for (ncclComm_t c : {grouped, late[2], late[1], late[0], nb, world}) check(ncclCommDestroy(c), "ncclCommDestroy");
  return 0;
}

int runBigGroup(const Options& o) {
  ncclComm_t world = initWorld(o);
  Buffers b = makeBuffers(o, 4096);
  cudaStream_t s = streamFor(o, b, 0xc000);
  bool nonBlocking = o.scenario == "nbgroup";
  std::vector<ncclComm_t> comms;
  for (int k = 0; nonBlocking && k < o.comms; ++k) {
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t c;
    check(ncclCommSplit(world, 0, gRank, &c, &config), "ncclCommSplit");
    ncclResult_t state = ncclInProgress;
    while (state == ncclInProgress) check(ncclCommGetAsyncError(c, &state), "ncclCommGetAsyncError");
    comms.push_back(c);
  }
  if (!nonBlocking) comms.push_back(world);
  check(ncclGroupStart(), "ncclGroupStart");
  for (int i = 0; i < o.calls; ++i) {
    check(ncclAllReduce(b.send, b.recv, 64, ncclFloat, ncclSum, comms[i % comms.size()], s), "ncclAllReduce");
  }
  check(ncclGroupEnd(), "ncclGroupEnd");
  int after = 3;
  if (nonBlocking) {
    sleepMs(50);  // the watchdog has seen the group deferred
    ncclResult_t state = ncclInProgress;
    while (state == ncclInProgress) check(ncclCommGetAsyncError(comms.back(), &state), "ncclCommGetAsyncError");
    after = 40;
  }
  for (int i = 0; i < after; ++i) {
    if (!nonBlocking) sleepMs(10);
    check(ncclAllReduce(b.send, b.recv, 64, ncclFloat, ncclSum, world, s), "ncclAllReduce");
  }
  if (nonBlocking) {
    sleepMs(20);
    check(ncclAllReduce(b.send, b.recv, 64, ncclFloat, ncclSum, world, s), "ncclAllReduce");
  }
  sync(o, b);
  for (ncclComm_t c : comms) {
    if (c != world) check(ncclCommDestroy(c), "ncclCommDestroy");
  }
  check(ncclCommDestroy(world), "ncclCommDestroy");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.self = argv[0];
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "recorder_test_job: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--uid-file") o.uidFile = value();
    else if (a == "--scenario") o.scenario = value();
    else if (a == "--calls") o.calls = std::atoi(value().c_str());
    else if (a == "--threads") o.threads = std::atoi(value().c_str());
    else if (a == "--comms") o.comms = std::atoi(value().c_str());
    else if (a == "--marker") o.marker = value();
    else if (a == "--cuda") o.cuda = true;
    else if (a == "--term-handler") o.termHandler = true;
    else if (a == "--exec-child") o.execChild = true;
    else if (a == "--keep-going") o.keepGoing = true;
    else if (a == "--no-poll") o.noPoll = true;
    else if (a == "--hold-ms") o.holdMs = std::atoi(value().c_str());
    else {
      std::fprintf(stderr, "recorder_test_job: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (o.uidFile.empty()) {
    if (const char* f = std::getenv("NCCL_UID_FILE")) o.uidFile = f;  // ncclfr-simrun sets it
  }
  if (o.uidFile.empty()) {
    std::fprintf(stderr, "recorder_test_job: --uid-file (or NCCL_UID_FILE) is required\n");
    return 2;
  }
  if (const char* r = std::getenv("RANK")) gRank = std::atoi(r);
  if (const char* w = std::getenv("WORLD_SIZE")) gWorld = std::atoi(w);
  gMarker = o.marker;
  gKeepGoing = o.keepGoing;
  if (o.termHandler) signal(SIGTERM, onTerm);
  if (o.cuda) {
    int dev = 0;
    if (const char* l = std::getenv("LOCAL_RANK")) dev = std::atoi(l);
    int n = 0;
    if (cudaGetDeviceCount(&n) == cudaSuccess && n > 0) gDevice = dev % n;
    cudaSetDevice(gDevice);
  }

  if (o.scenario == "exact") return runExact(o);
  if (o.scenario == "derive") {
    // Communicators made every other way, for the commHash checks: ncclCommInitAll (its unique id is
    // made inside NCCL), two splits and a NOCOLOR one (which counts), and a shrink.
    ncclComm_t all[2];
    check(ncclCommInitAll(all, 2, nullptr), "ncclCommInitAll");
    ncclComm_t a = nullptr, b = nullptr, none = nullptr, shrunk = nullptr;
    check(ncclCommSplit(all[0], 0, 0, &a, nullptr), "ncclCommSplit");
    check(ncclCommSplit(all[0], NCCL_SPLIT_NOCOLOR, 0, &none, nullptr), "ncclCommSplit(NOCOLOR)");
    check(ncclCommSplit(all[0], 5, 0, &b, nullptr), "ncclCommSplit");
    int exclude[1] = {1};
    check(ncclCommShrink(all[0], exclude, 1, &shrunk, nullptr, NCCL_SHRINK_DEFAULT), "ncclCommShrink");
    Buffers buf = makeBuffers(o, 4096);
    for (ncclComm_t c : {all[0], all[1], a, b, shrunk}) allReduces(o, c, buf, 1);
    for (ncclComm_t c : {shrunk, b, a, all[1], all[0]}) check(ncclCommDestroy(c), "ncclCommDestroy");
    std::printf("pid %d\n", static_cast<int>(getpid()));
    return 0;
  }
  if (o.scenario == "capture") {
    // Every other call goes to a stream that is being captured into a CUDA graph (the test's fake
    // libcuda.so.1 says stream 0xca97 is capturing).
    ncclComm_t world = initWorld(o);
    Buffers b = makeBuffers(o, 4096);
    cudaStream_t capturing = reinterpret_cast<cudaStream_t>(0xca97);
    for (int i = 0; i < o.calls; ++i) {
      check(ncclAllReduce(b.send, b.recv, 64, ncclFloat, ncclSum, world, b.stream), "ncclAllReduce");
      check(ncclAllReduce(b.send, b.recv, 64, ncclFloat, ncclSum, world, capturing), "ncclAllReduce(captured)");
      check(ncclGroupStart(), "ncclGroupStart");
      check(ncclSend(b.send, 64, ncclFloat, 0, world, capturing), "ncclSend(captured)");
      check(ncclRecv(b.recv, 64, ncclFloat, 0, world, capturing), "ncclRecv(captured)");
      check(ncclGroupEnd(), "ncclGroupEnd");
    }
    check(ncclCommDestroy(world), "ncclCommDestroy");
    return 0;
  }
  if (o.scenario == "fork") return runFork(o);
  if (o.scenario == "lapincall") return runLapInCall(o);
  if (o.scenario == "latesplit" || o.scenario == "latesplitfail") return runLateSplit(o);
  if (o.scenario == "biggroup" || o.scenario == "nbgroup") return runBigGroup(o);
  ncclComm_t world = nullptr;
  if (o.scenario == "nonblocking") {
    ncclUniqueId id;
    if (!examples::exchangeUniqueId(o.uidFile, gRank, &id)) return 1;
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    config.commName = "nb-world";
    ncclResult_t r = ncclCommInitRankConfig(&world, gWorld, id, gRank, &config);
    check(r, "ncclCommInitRankConfig");
    ncclResult_t state = ncclInProgress;
    while (state == ncclInProgress) check(ncclCommGetAsyncError(world, &state), "ncclCommGetAsyncError");
    check(state, "non-blocking init");
    Buffers b = makeBuffers(o, 4096);
    // No pause here: the recorder has the context's CUDA events ready when ncclCommGetAsyncError
    // first reports the init done, so even the first call is timed.
    for (int i = 0; i < o.calls; ++i) {
      check(ncclAllReduce(b.send, b.recv, 64, ncclFloat, ncclSum, world, b.stream), "ncclAllReduce");
      if (o.noPoll) continue;
      state = ncclInProgress;
      while (state == ncclInProgress) check(ncclCommGetAsyncError(world, &state), "ncclCommGetAsyncError");
    }
    sync(o, b);
    check(ncclCommDestroy(world), "ncclCommDestroy");
    return 0;
  }
  world = initWorld(o);
  Buffers b = makeBuffers(o, 4096);
  if (o.scenario == "busy") {
    Counts counts;
    rounds(o, world, b, o.calls, &counts);
    waitForever();
  }
  allReduces(o, world, b, o.calls);
  if (o.scenario == "idle") waitForever();
  if (o.scenario == "heldabort") {
    // The calls are queued behind the held stream when the communicator is aborted: they "run"
    // (and their events fire) only after the abort, if ever.
    cudaLaunchHostFunc(b.stream, holdStream, &o.holdMs);
    for (int i = 0; i < o.calls; ++i) {
      check(ncclAllReduce(b.send, b.recv, 64, ncclFloat, ncclSum, world, b.stream), "ncclAllReduce");
    }
    check(ncclCommAbort(world), "ncclCommAbort");
    gAborted.store(true);
    std::printf("aborted\n");
    std::fflush(stdout);
    if (o.holdMs < 0) waitForever();
    sync(o, b);
    return 0;
  }
  if (o.scenario == "abort") {
    check(ncclCommAbort(world), "ncclCommAbort");
    std::printf("aborted\n");
    return 0;
  }
  if (o.scenario == "revoke") {
    check(ncclCommRevoke(world, NCCL_REVOKE_DEFAULT), "ncclCommRevoke");
    check(ncclCommDestroy(world), "ncclCommDestroy");
    std::printf("revoked\n");
    return 0;
  }
  if (o.scenario == "crash") abort();
  if (o.scenario == "destroy") {
    check(ncclCommDestroy(world), "ncclCommDestroy");
    std::printf("destroyed\n");
    return 0;
  }
  std::fprintf(stderr, "recorder_test_job: unknown scenario %s\n", o.scenario.c_str());
  return 2;
}
