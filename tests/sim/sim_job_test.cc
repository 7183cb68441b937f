// Multi-process jobs on sim/, driven through ncclfr-simrun exactly as other parts' end-to-end tests
// and the demo drive them: the semantics of the stand-in libraries across processes (collectives,
// send/recv, split, non-blocking communicators, hangs, aborts, peer death, mismatches), a program
// built against the real CUDA and NCCL running unchanged, and the launcher's own contract (env,
// signals, failure handling, time limit, exit codes, /dev/shm cleanup).
#include <catch2/catch.hpp>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Generous: CI runs these two at a time on a loaded two-core machine.
constexpr auto kJobLimit = 240s;

struct TempDir {
  std::string path;
  TempDir() {
    std::string t = (std::getenv("TMPDIR") != nullptr ? std::string(std::getenv("TMPDIR")) : "/tmp") + "/sim_job_test.XXXXXX";
    std::vector<char> buf(t.begin(), t.end());
    buf.push_back('\0');
    REQUIRE(::mkdtemp(buf.data()) != nullptr);
    path = buf.data();
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  bool has(const std::string& name) const { return ::access((path + "/" + name).c_str(), F_OK) == 0; }
};

struct Job {
  pid_t pid = -1;
  std::string outPath;
  int exitCode = -1;
  std::string output;
};

// Starts `args` with extra environment, stdout and stderr going to a file.
Job start(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env,
          const std::string& outPath) {
  Job job;
  job.outPath = outPath;
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int fd = ::open(outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(99);
  }
  job.pid = pid;
  return job;
}

void finish(Job& job) {
  auto until = Clock::now() + kJobLimit;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(job.pid, &status, WNOHANG);
    if (r == job.pid) break;
    if (Clock::now() > until) {
      ::kill(job.pid, SIGKILL);
      ::waitpid(job.pid, &status, 0);
      FAIL("job did not finish within the test's limit");
    }
    std::this_thread::sleep_for(10ms);
  }
  job.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream in(job.outPath);
  std::stringstream ss;
  ss << in.rdbuf();
  job.output = ss.str();
}

Job run(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env,
        const TempDir& dir) {
  Job job = start(args, env, dir.path + "/output.txt");
  finish(job);
  return job;
}

std::vector<std::string> simrun(int n, std::vector<std::string> rest) {
  std::vector<std::string> a = {NCCLFR_SIMRUN, "-n", std::to_string(n), "--timeout", "200", "--grace", "5"};
  a.insert(a.end(), rest.begin(), rest.end());
  return a;
}

int count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
  return n;
}

void expectPassed(const Job& job, const std::string& scenario, int ranks) {
  INFO(job.output);
  CHECK(job.exitCode == 0);
  CHECK(count(job.output, ": " + scenario + " passed") == ranks);
}

void runScenario(int n, const std::string& scenario, const std::string& arg = "",
                 std::vector<std::pair<std::string, std::string>> env = {}) {
  TempDir dir;
  std::vector<std::string> rest = {"--", NCCLFR_SIM_WORKER, scenario};
  if (!arg.empty()) rest.push_back(arg);
  expectPassed(run(simrun(n, rest), env, dir), scenario, n);
}

bool waitFor(const std::function<bool()>& pred, std::chrono::seconds limit = 120s) {
  auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// Small buffers force every collective and message through many chunks.
const std::vector<std::pair<std::string, std::string>> kSmallBuffers = {{"NCCLFR_SIM_CHUNK_BYTES", "256"},
                                                                        {"NCCLFR_SIM_P2P_BYTES", "192"}};

}  // namespace

// ---- the libraries across processes ---------------------------------------------------------

TEST_CASE("every collective, type and reduction operator is correct on 2 ranks") { runScenario(2, "collectives"); }
TEST_CASE("every collective, type and reduction operator is correct on 3 ranks, in many chunks") {
  runScenario(3, "collectives", "101", kSmallBuffers);
}
TEST_CASE("every collective, type and reduction operator is correct on 5 ranks") { runScenario(5, "collectives"); }
TEST_CASE("every collective, type and reduction operator is correct on 8 ranks") { runScenario(8, "collectives", "9"); }
TEST_CASE("every collective, type and reduction operator is correct on 16 ranks") {
  runScenario(16, "collectives", "3");
}

TEST_CASE("send/recv rings and all-pairs exchanges in groups complete and deliver in order") {
  runScenario(4, "sendrecv", "3000", kSmallBuffers);
  runScenario(7, "sendrecv", "1000");
}

TEST_CASE("split (colors, keys, NCCL_SPLIT_NOCOLOR, nested) and shrink build the right communicators") {
  runScenario(6, "split");
  runScenario(2, "split");
}

TEST_CASE("non-blocking communicators report ncclInProgress and complete when polled") {
  runScenario(3, "nonblocking");
}

TEST_CASE("a collective whose peer never arrives blocks its stream until ncclCommAbort") { runScenario(2, "abort"); }

TEST_CASE("ncclCommRevoke unblocks a hung collective and the communicator refuses new work") {
  runScenario(3, "revoke");
}

TEST_CASE("a dead peer shows as ncclRemoteError within seconds and the survivors shrink and go on") {
  TempDir dir;
  Job job = run(simrun(3, {"--no-kill-on-failure", "--", NCCLFR_SIM_WORKER, "peer-death"}), {}, dir);
  INFO(job.output);
  CHECK(job.exitCode == 128 + SIGKILL);  // the launcher reports the rank that died first
  CHECK(count(job.output, "peer-death passed") == 2);
  CHECK(count(job.output, "async error remote process exited") == 2);
}

TEST_CASE("a rank that dies after joining the rendezvous fails the others' ncclCommInitRank with ncclRemoteError") {
  TempDir dir;
  Job job = run(simrun(3, {"--no-kill-on-failure", "--", NCCLFR_SIM_WORKER, "init-peer-death"}), {}, dir);
  INFO(job.output);
  CHECK(job.exitCode == 128 + SIGKILL);  // the rank that died; the others exited 0, not hung
  CHECK(count(job.output, "init-peer-death passed") == 2);
  CHECK(count(job.output, "init with a peer that died returned remote process exited") == 2);
}

TEST_CASE("ncclCommAbort ends an initialisation waiting for a rank that never comes, blocking or not") {
  TempDir dir;
  Job job = run(simrun(2, {"--", NCCLFR_SIM_WORKER, "init-abort"}), {}, dir);
  expectPassed(job, "init-abort", 2);
  CHECK(count(job.output, "blocking init aborted from another thread returned internal error") == 2);
}

TEST_CASE("a non-blocking communicator is revoked, shrunk without a rank, and refuses new work") {
  runScenario(4, "nonblocking-revoke-shrink");
}

TEST_CASE("mismatched collectives never complete and each rank logs one NCCL WARN line") {
  for (const char* what : {"count", "type", "op"}) {
    TempDir dir;
    Job job = run(simrun(3, {"--", NCCLFR_SIM_WORKER, "mismatch", what}), {{"NCCL_DEBUG", "WARN"}}, dir);
    INFO(what << "\n" << job.output);
    CHECK(job.exitCode == 0);
    CHECK(count(job.output, "mismatch passed") == 3);
    CHECK(count(job.output, "NCCL WARN Mismatched collectives") == 3);
  }
}

#ifdef NCCLFR_ALLREDUCE_CHECK
TEST_CASE("a program built against the real CUDA runtime and NCCL runs unchanged on sim/") {
  TempDir dir;
  Job job = run(simrun(4, {"--", NCCLFR_ALLREDUCE_CHECK, "--count", "333"}), {{"NCCL_DEBUG", "VERSION"}}, dir);
  INFO(job.output);
  CHECK(job.exitCode == 0);
  CHECK(count(job.output, "every collective correct") == 4);
  // It really ran on the stand-ins: they announce themselves at NCCL_DEBUG=VERSION (rank 0).
  CHECK(count(job.output, "NCCL version 2.28.9+ncclfr-sim") == 1);
}
#endif

// ---- the launcher ---------------------------------------------------------------------------

TEST_CASE("ncclfr-simrun gives every rank torchrun's environment and sim/ first on the library path") {
  TempDir dir;
  std::string logs = dir.path + "/logs";
  // A preloaded library must reach the ranks, as the flight recorder is preloaded that way. (An
  // AddressSanitizer build would object that it precedes its runtime; this one is harmless.)
  const std::string preload = "libm.so.6";
  std::string asan = std::getenv("ASAN_OPTIONS") != nullptr ? std::getenv("ASAN_OPTIONS") : "";
  Job job = run({NCCLFR_SIMRUN, "-n", "4", "--nnodes", "2", "--job-id", "envtest", "--log-dir", logs, "--",
                 NCCLFR_SIM_WORKER, "probe", "env"},
                {{"LD_PRELOAD", preload},
                 {"LD_LIBRARY_PATH", "/some/where"},
                 {"ASAN_OPTIONS", asan + (asan.empty() ? "" : ":") + "verify_asan_link_order=0"}},
                dir);
  INFO(job.output);
  REQUIRE(job.exitCode == 0);
  for (int r = 0; r < 4; ++r) {
    std::ifstream in(logs + "/rank." + std::to_string(r) + ".out");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string out = ss.str();
    INFO(out);
    CHECK(out.find("RANK=" + std::to_string(r) + "\n") != std::string::npos);
    CHECK(out.find("WORLD_SIZE=4\n") != std::string::npos);
    CHECK(out.find("LOCAL_RANK=" + std::to_string(r % 2) + "\n") != std::string::npos);
    CHECK(out.find("LOCAL_WORLD_SIZE=2\n") != std::string::npos);
    CHECK(out.find("GROUP_RANK=" + std::to_string(r / 2) + "\n") != std::string::npos);
    CHECK(out.find("MASTER_ADDR=127.0.0.1\n") != std::string::npos);
    CHECK(out.find("TORCHELASTIC_RUN_ID=envtest\n") != std::string::npos);
    CHECK(out.find("NCCL_HOSTID=simnode" + std::to_string(r / 2) + "\n") != std::string::npos);
    CHECK(out.find("LD_LIBRARY_PATH=" + std::string(NCCLFR_SIM_LIB_DIR) + ":/some/where\n") != std::string::npos);
    CHECK(out.find("LD_PRELOAD=" + preload + "\n") != std::string::npos);
    CHECK(out.find("NCCL_UID_FILE=/") != std::string::npos);
  }
}

TEST_CASE("ncclfr-simrun --nnodes: communicators span the simulated nodes, each with its own host id and numbering") {
  // NCCL_HOSTID, if the user set one, prefixes each node's id.
  for (const std::string userHostId : {"", "rack7-"}) {
    TempDir dir;
    Job job = run(simrun(6, {"--nnodes", "3", "--", NCCLFR_SIM_WORKER, "nodes", "3"}), {{"NCCL_HOSTID", userHostId}},
                  dir);
    INFO("NCCL_HOSTID=" << userHostId);
    expectPassed(job, "nodes", 6);
    INFO(job.output);
    for (int r = 0; r < 6; ++r) {
      const std::string node = std::to_string(r / 2);
      CHECK(job.output.find("rank " + std::to_string(r) + ": node " + node + " local rank " + std::to_string(r % 2) +
                            " host id " + userHostId + "simnode" + node + "\n") != std::string::npos);
    }
    // The control: two ranks of one node on one device are refused, on every node.
    CHECK(count(job.output, "on device 0: invalid usage") == 6);
  }
}

TEST_CASE("ncclfr-simrun --devices sets the simulated GPU count, --sim-lib-dir and --no-sim the library path") {
  auto rankOut = [](const std::string& logs, int r) {
    std::ifstream in(logs + "/rank." + std::to_string(r) + ".out");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  SECTION("--devices: every rank sees that many GPUs, through the stand-in runtime") {
    TempDir dir;
    std::string logs = dir.path + "/logs";
    Job job = run({NCCLFR_SIMRUN, "-n", "2", "--devices", "3", "--log-dir", logs, "--", NCCLFR_SIM_WORKER, "probe",
                   "devices"},
                  {}, dir);
    INFO(job.output);
    REQUIRE(job.exitCode == 0);
    for (int r = 0; r < 2; ++r) CHECK(rankOut(logs, r).find("devices=3 (cudaSuccess)") != std::string::npos);
  }
  SECTION("default: max(8, ranks per node)") {
    TempDir dir;
    std::string logs = dir.path + "/logs";
    Job job = run({NCCLFR_SIMRUN, "-n", "2", "--log-dir", logs, "--", NCCLFR_SIM_WORKER, "probe", "devices"}, {}, dir);
    INFO(job.output);
    REQUIRE(job.exitCode == 0);
    CHECK(rankOut(logs, 0).find("devices=8 (cudaSuccess)") != std::string::npos);
  }
  SECTION("--sim-lib-dir goes first on LD_LIBRARY_PATH instead of the build's sim/lib") {
    TempDir dir;
    std::string libs = dir.path + "/simlib", logs = dir.path + "/logs";
    REQUIRE(::mkdir(libs.c_str(), 0755) == 0);
    for (const char* so : {"libcudart.so.13", "libcuda.so.1", "libnccl.so.2"}) {
      REQUIRE(::symlink((std::string(NCCLFR_SIM_LIB_DIR) + "/" + so).c_str(), (libs + "/" + so).c_str()) == 0);
    }
    Job job = run({NCCLFR_SIMRUN, "-n", "2", "--sim-lib-dir", libs, "--log-dir", logs, "--", NCCLFR_SIM_WORKER,
                   "probe", "env"},
                  {{"LD_LIBRARY_PATH", "/some/where"}}, dir);
    INFO(job.output);
    REQUIRE(job.exitCode == 0);
    for (int r = 0; r < 2; ++r) CHECK(rankOut(logs, r).find("LD_LIBRARY_PATH=" + libs + ":/some/where\n") != std::string::npos);
  }
  SECTION("--sim-lib-dir without the stand-ins is a launcher error, said in one line") {
    TempDir dir;
    Job job = run({NCCLFR_SIMRUN, "-n", "2", "--sim-lib-dir", dir.path, "--", NCCLFR_SIM_WORKER, "probe", "env"}, {},
                  dir);
    INFO(job.output);
    CHECK(job.exitCode == 125);
    CHECK(job.output.find("no libnccl.so.2 in the sim library folder") != std::string::npos);
  }
  SECTION("--no-sim leaves LD_LIBRARY_PATH as it was") {
    TempDir dir;
    std::string logs = dir.path + "/logs";
    Job job = run({NCCLFR_SIMRUN, "-n", "2", "--no-sim", "--log-dir", logs, "--", NCCLFR_SIM_WORKER, "probe", "env"},
                  {{"LD_LIBRARY_PATH", "/some/where"}}, dir);
    INFO(job.output);
    REQUIRE(job.exitCode == 0);
    for (int r = 0; r < 2; ++r) CHECK(rankOut(logs, r).find("LD_LIBRARY_PATH=/some/where\n") != std::string::npos);
  }
}

TEST_CASE("when a rank fails the job ends and the launcher exits with that rank's code") {
  TempDir dir;
  auto t0 = Clock::now();
  Job job = run({NCCLFR_SIMRUN, "-n", "3", "--grace", "30", "--", NCCLFR_SIM_WORKER, "probe", "fail-rank1"},
                {{"NCCL_UID_FILE", dir.path + "/uid"}}, dir);
  INFO(job.output);
  CHECK(job.exitCode == 7);
  CHECK(job.output.find("rank 1 (pid") != std::string::npos);
  // The other ranks died of the SIGTERM, well before any grace period or time limit.
  CHECK(count(job.output, "ended by signal 15") == 2);
  CHECK(Clock::now() - t0 < 30s);
}

TEST_CASE("with --no-kill-on-failure the other ranks run on and the failing rank's code is still reported") {
  TempDir dir;
  // Ranks other than 1 wait for a marker the test writes after rank 1 has failed.
  Job job = start({NCCLFR_SIMRUN, "-n", "3", "--no-kill-on-failure", "--", "/bin/sh", "-c",
                   "if [ $RANK = 1 ]; then exit 5; fi; while [ ! -e " + dir.path +
                       "/go ]; do sleep 0.01; done; echo rank $RANK finished"},
                  {}, dir.path + "/output.txt");
  std::ifstream probe;
  REQUIRE(waitFor([&] {
    std::ifstream in(dir.path + "/output.txt");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str().find("exited with code 5") != std::string::npos;
  }));
  std::ofstream(dir.path + "/go") << "1";
  finish(job);
  INFO(job.output);
  CHECK(job.exitCode == 5);
  CHECK(count(job.output, "finished") == 2);
}

TEST_CASE("the time limit sends SIGTERM to every rank, then SIGKILL after the grace period, and exits 124") {
  TempDir dir;
  // 5 s: both ranks must have started and installed their SIGTERM handler by then, loaded or not.
  Job job = run({NCCLFR_SIMRUN, "-n", "2", "--timeout", "5", "--grace", "1", "--", NCCLFR_SIM_WORKER, "probe",
                 "ignore-term"},
                {{"NCCL_UID_FILE", dir.path + "/uid"}}, dir);
  INFO(job.output);
  CHECK(job.exitCode == 124);
  // Both ranks saw the SIGTERM (and ignored it), then were killed.
  CHECK(dir.has("marker.term.0"));
  CHECK(dir.has("marker.term.1"));
  CHECK(count(job.output, "ended by signal 9") == 2);
}

TEST_CASE("Ctrl-C ends the job with SIGTERM then SIGKILL and other signals are forwarded") {
  SECTION("SIGINT") {
    TempDir dir;
    Job job = start({NCCLFR_SIMRUN, "-n", "2", "--grace", "1", "--", NCCLFR_SIM_WORKER, "probe", "ignore-term"},
                    {{"NCCL_UID_FILE", dir.path + "/uid"}}, dir.path + "/output.txt");
    REQUIRE(waitFor([&] { return dir.has("marker.ready.0") && dir.has("marker.ready.1"); }));
    ::kill(job.pid, SIGINT);
    finish(job);
    INFO(job.output);
    CHECK(job.exitCode == 128 + SIGINT);
    CHECK(dir.has("marker.term.0"));
    CHECK(dir.has("marker.term.1"));
  }
  SECTION("SIGUSR1") {
    TempDir dir;
    Job job = start({NCCLFR_SIMRUN, "-n", "2", "--", NCCLFR_SIM_WORKER, "probe", "wait-signal"},
                    {{"NCCL_UID_FILE", dir.path + "/uid"}}, dir.path + "/output.txt");
    REQUIRE(waitFor([&] { return dir.has("marker.ready.0") && dir.has("marker.ready.1"); }));
    ::kill(job.pid, SIGUSR1);
    finish(job);
    INFO(job.output);
    CHECK(job.exitCode == 0);
  }
}

TEST_CASE("a job killed during initialisation leaves nothing in /dev/shm") {
  TempDir dir;
  const std::string jobId = "shmtest" + std::to_string(::getpid());
  auto leftovers = [&] {
    int n = 0;
    if (DIR* d = ::opendir("/dev/shm")) {
      const std::string prefix = "ncclfr-sim." + jobId + ".";
      while (dirent* e = ::readdir(d)) n += std::strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0;
      ::closedir(d);
    }
    return n;
  };
  Job job = start({NCCLFR_SIMRUN, "-n", "2", "--job-id", jobId, "--timeout", "100", "--grace", "1", "--",
                   NCCLFR_SIM_WORKER, "probe", "stuck-init"},
                  {}, dir.path + "/output.txt");
  // Rank 0 created the rendezvous and waits for rank 1, which never comes.
  REQUIRE(waitFor([&] { return leftovers() == 1; }));
  ::kill(job.pid, SIGTERM);
  finish(job);
  INFO(job.output);
  CHECK(job.exitCode == 128 + SIGTERM);
  CHECK(leftovers() == 0);
}

TEST_CASE("ncclfr-simrun reports usage errors and unrunnable programs with documented codes") {
  TempDir dir;
  CHECK(run({NCCLFR_SIMRUN, "--", "/bin/true"}, {}, dir).exitCode == 125);
  CHECK(run({NCCLFR_SIMRUN, "-n", "2", "--bogus", "--", "/bin/true"}, {}, dir).exitCode == 125);
  CHECK(run({NCCLFR_SIMRUN, "-n", "3", "--nnodes", "2", "--", "/bin/true"}, {}, dir).exitCode == 125);
  CHECK(run({NCCLFR_SIMRUN, "-n", "2", "--", "/nonexistent/program"}, {}, dir).exitCode == 127);
  Job help = run({NCCLFR_SIMRUN, "--help"}, {}, dir);
  CHECK(help.exitCode == 0);
  CHECK(help.output.find("usage: ncclfr-simrun -n N") != std::string::npos);
  CHECK(run({NCCLFR_SIMRUN, "-n", "2", "--", "/bin/true"}, {}, dir).exitCode == 0);
}
