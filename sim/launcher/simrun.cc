// ncclfr-simrun: starts an N-rank job of one program on this machine, torchrun style, with sim/'s
// CUDA and NCCL stand-ins first on the library path. It owns the job's life: it forwards signals,
// ends the whole job when a rank fails (or on Ctrl-C, or at the time limit) with SIGTERM first and
// SIGKILL after a grace period (the flight recorder dumps on SIGTERM), exits with the first failing
// rank's code, and removes the job's leftovers from /dev/shm.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifndef NCCLFR_SIM_LIB_DIR
#define NCCLFR_SIM_LIB_DIR ""
#endif

namespace {

constexpr int kExitTimeout = 124;
constexpr int kExitLauncherError = 125;

const char kUsage[] =
    "usage: ncclfr-simrun -n N [options] [--] program [args...]\n"
    "\n"
    "Runs N ranks of `program` as one job on sim/ (CUDA and NCCL stand-ins for a CPU-only machine).\n"
    "Each rank gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, GROUP_WORLD_SIZE,\n"
    "ROLE_RANK, ROLE_WORLD_SIZE, ROLE_NAME, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RUN_ID,\n"
    "TORCHELASTIC_RESTART_COUNT, TORCHELASTIC_MAX_RESTARTS (as torchrun sets them), NCCL_UID_FILE (a\n"
    "fresh file path for exchanging the ncclUniqueId, unless already set) and NCCLFR_SIM_JOB; sim/lib\n"
    "is put first on LD_LIBRARY_PATH and LD_PRELOAD is passed on unchanged.\n"
    "\n"
    "options:\n"
    "  -n, --nproc N          number of ranks (required); also --nproc-per-node with --nnodes 1\n"
    "      --nnodes K         simulate K nodes of N/K ranks each (LOCAL_* and NCCL_HOSTID per node)\n"
    "      --timeout SECONDS  job time limit (default: none). When it expires every rank gets SIGTERM,\n"
    "                         then SIGKILL after the grace period; the launcher exits with 124\n"
    "      --grace SECONDS    time between SIGTERM and SIGKILL whenever the job is ended (default 10)\n"
    "      --no-kill-on-failure\n"
    "                         when a rank fails, let the other ranks run on (default: end the job)\n"
    "      --job-id ID        job id (TORCHELASTIC_RUN_ID, NCCLFR_SIM_JOB; default simrun-<pid>)\n"
    "      --log-dir DIR      write rank R's stdout and stderr to DIR/rank.R.out and DIR/rank.R.err\n"
    "      --devices N        simulated GPUs per node (NCCLFR_SIM_DEVICES; default max(8, ranks/node))\n"
    "      --sim-lib-dir DIR  where libcudart.so.13, libcuda.so.1, libnccl.so.2 are (default: the\n"
    "                         build's sim/lib)\n"
    "      --no-sim           leave LD_LIBRARY_PATH alone (run on the real CUDA and NCCL)\n"
    "  -q, --quiet            no launcher messages on stderr\n"
    "  -h, --help             this text\n"
    "\n"
    "signals: SIGINT (Ctrl-C), SIGTERM and SIGHUP end the job: SIGINT becomes SIGTERM to every rank,\n"
    "SIGTERM and SIGHUP are forwarded as they are, and SIGKILL follows after the grace period (a second\n"
    "SIGINT sends it at once). SIGQUIT, SIGUSR1 and SIGUSR2 are forwarded and the job goes on.\n"
    "\n"
    "exit status: 0 if every rank exited 0; else the exit code of the first rank that failed (128+n\n"
    "if it was killed by signal n); 124 if the time limit expired; 128+n if the launcher was stopped\n"
    "by signal n (SIGINT, SIGTERM, SIGHUP) before any rank failed; 125 for a launcher error (bad\n"
    "usage, cannot start a rank); a rank that cannot exec the program exits 127 (not found) or 126.\n";

struct Options {
  int nproc = 0;
  int nnodes = 1;
  double timeout = 0;
  double grace = 10;
  bool killOnFailure = true;
  std::string jobId;
  std::string logDir;
  int devices = 0;
  std::string simLibDir;
  bool useSim = true;
  bool quiet = false;
  std::vector<std::string> command;
};

bool gQuiet = false;

void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void say(const char* fmt, ...) {
  if (gQuiet) return;
  va_list ap;
  va_start(ap, fmt);
  std::fputs("ncclfr-simrun: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
}

[[noreturn]] void usageError(const std::string& msg) {
  std::fprintf(stderr, "ncclfr-simrun: %s (see --help)\n", msg.c_str());
  std::exit(kExitLauncherError);
}

bool parseInt(const std::string& s, int* out) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < 0 || v > 1000000) return false;
  *out = static_cast<int>(v);
  return true;
}

bool parseSeconds(const std::string& s, double* out) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v) || v < 0) return false;
  *out = v;
  return true;
}

Options parse(int argc, char** argv) {
  Options o;
  int i = 1;
  auto value = [&](const std::string& opt) -> std::string {
    if (i + 1 >= argc) usageError("option " + opt + " needs a value");
    return argv[++i];
  };
  for (; i < argc; ++i) {
    std::string a = argv[i];
    std::string inlineValue;
    bool hasInline = false;
    if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
      inlineValue = a.substr(a.find('=') + 1);
      a = a.substr(0, a.find('='));
      hasInline = true;
    }
    auto val = [&](const std::string& opt) { return hasInline ? inlineValue : value(opt); };
    if (a == "--") {
      ++i;
      break;
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "-n" || a == "--nproc" || a == "--nproc-per-node" || a == "--nproc_per_node") {
      if (!parseInt(val(a), &o.nproc) || o.nproc < 1) usageError(a + " needs a positive number of ranks");
    } else if (a == "--nnodes") {
      if (!parseInt(val(a), &o.nnodes) || o.nnodes < 1) usageError("--nnodes needs a positive number");
    } else if (a == "--timeout") {
      if (!parseSeconds(val(a), &o.timeout)) usageError("--timeout needs a number of seconds");
    } else if (a == "--grace") {
      if (!parseSeconds(val(a), &o.grace)) usageError("--grace needs a number of seconds");
    } else if (a == "--no-kill-on-failure") {
      o.killOnFailure = false;
    } else if (a == "--kill-on-failure") {
      o.killOnFailure = true;
    } else if (a == "--job-id") {
      o.jobId = val(a);
      if (o.jobId.empty()) usageError("--job-id needs a value");
    } else if (a == "--log-dir") {
      o.logDir = val(a);
    } else if (a == "--devices") {
      if (!parseInt(val(a), &o.devices) || o.devices < 1) usageError("--devices needs a positive number");
    } else if (a == "--sim-lib-dir") {
      o.simLibDir = val(a);
    } else if (a == "--no-sim") {
      o.useSim = false;
    } else if (a == "-q" || a == "--quiet") {
      o.quiet = true;
    } else if (!a.empty() && a[0] == '-') {
      usageError("unknown option " + a);
    } else {
      break;
    }
  }
  for (; i < argc; ++i) o.command.emplace_back(argv[i]);
  if (o.nproc < 1) usageError("the number of ranks is required: -n N");
  if (o.command.empty()) usageError("no program to run");
  if (o.nproc % o.nnodes != 0) usageError("-n must be a multiple of --nnodes");
  return o;
}

std::string defaultSimLibDir() {
  // Next to the launcher in a build tree (<build>/bin/ncclfr-simrun, <build>/sim/lib) or an install.
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    std::string dir(exe);
    dir = dir.substr(0, dir.rfind('/'));
    for (const char* rel : {"/../sim/lib", "/../lib/ncclfr-sim"}) {
      std::string cand = dir + rel;
      if (::access((cand + "/libnccl.so.2").c_str(), R_OK) == 0) return cand;
    }
  }
  return NCCLFR_SIM_LIB_DIR;
}

// Same rule as libnccl's segment names, so the launcher finds its job's leftovers.
std::string jobTag(const std::string& jobId) {
  std::string tag;
  for (char c : jobId) {
    if (tag.size() >= 32) break;
    tag.push_back((std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_');
  }
  return tag;
}

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 29500;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 29500;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

int gSignalPipe[2] = {-1, -1};

void onSignal(int sig) {
  int saved = errno;
  unsigned char b = static_cast<unsigned char>(sig);
  (void)!::write(gSignalPipe[1], &b, 1);
  errno = saved;
}

constexpr int kHandled[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD};

struct Rank {
  pid_t pid = -1;
  bool running = false;
};

int removeEntry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }

void removeJobSegments(const std::string& tag) {
  DIR* d = ::opendir("/dev/shm");
  if (d == nullptr) return;
  std::string prefix = "ncclfr-sim." + tag + ".";
  while (dirent* e = ::readdir(d)) {
    if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0) {
      ::unlink((std::string("/dev/shm/") + e->d_name).c_str());
    }
  }
  ::closedir(d);
}

[[noreturn]] void execRank(const Options& o, int rank, const std::vector<std::pair<std::string, std::string>>& env) {
  // A rank is its own process group, so the launcher can signal it and everything it started.
  ::setpgid(0, 0);
  // If the launcher dies, the ranks get SIGTERM (and can dump) instead of running on orphaned.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  for (int sig : kHandled) ::signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0) {
    ::dup2(devnull, 0);
    ::close(devnull);
  }
  if (!o.logDir.empty()) {
    for (auto [fd, ext] : {std::pair{1, ".out"}, std::pair{2, ".err"}}) {
      std::string path = o.logDir + "/rank." + std::to_string(rank) + ext;
      int f = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (f < 0) {
        std::fprintf(stderr, "ncclfr-simrun: rank %d: cannot open %s: %s\n", rank, path.c_str(), std::strerror(errno));
        ::_exit(kExitLauncherError);
      }
      ::dup2(f, fd);
      ::close(f);
    }
  }
  for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
  std::vector<char*> args;
  for (const std::string& a : o.command) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  int err = errno;
  std::fprintf(stderr, "ncclfr-simrun: rank %d: cannot run %s: %s\n", rank, args[0], std::strerror(err));
  ::_exit(err == ENOENT ? 127 : 126);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  gQuiet = o.quiet;
  if (o.jobId.empty()) o.jobId = "simrun-" + std::to_string(::getpid());
  if (o.simLibDir.empty()) o.simLibDir = defaultSimLibDir();
  if (char* real = ::realpath(o.simLibDir.c_str(), nullptr)) {
    o.simLibDir = real;
    std::free(real);
  }
  if (o.useSim && ::access((o.simLibDir + "/libnccl.so.2").c_str(), R_OK) != 0) {
    usageError("no libnccl.so.2 in the sim library folder '" + o.simLibDir + "' (use --sim-lib-dir)");
  }
  if (!o.logDir.empty() && ::mkdir(o.logDir.c_str(), 0755) != 0 && errno != EEXIST) {
    usageError("cannot create --log-dir " + o.logDir + ": " + std::strerror(errno));
  }

  // A private folder for the job: the default NCCL_UID_FILE lives there.
  std::string tmpl = std::string(std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp") +
                     "/ncclfr-simrun.XXXXXX";
  std::vector<char> tmpBuf(tmpl.begin(), tmpl.end());
  tmpBuf.push_back('\0');
  if (::mkdtemp(tmpBuf.data()) == nullptr) usageError(std::string("cannot create a job folder: ") + std::strerror(errno));
  const std::string jobDir = tmpBuf.data();

  if (::pipe2(gSignalPipe, O_CLOEXEC | O_NONBLOCK) != 0) usageError("pipe failed");
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : kHandled) ::sigaction(sig, &sa, nullptr);

  const int perNode = o.nproc / o.nnodes;
  const std::string port = std::to_string(freePort());
  std::string ldPath = o.simLibDir;
  if (const char* old = std::getenv("LD_LIBRARY_PATH"); old != nullptr && *old != '\0') ldPath += std::string(":") + old;
  const char* userHostId = std::getenv("NCCL_HOSTID");

  std::vector<Rank> ranks(static_cast<size_t>(o.nproc));
  for (int r = 0; r < o.nproc; ++r) {
    const int node = r / perNode, local = r % perNode;
    std::vector<std::pair<std::string, std::string>> env = {
        {"RANK", std::to_string(r)},
        {"WORLD_SIZE", std::to_string(o.nproc)},
        {"LOCAL_RANK", std::to_string(local)},
        {"LOCAL_WORLD_SIZE", std::to_string(perNode)},
        {"GROUP_RANK", std::to_string(node)},
        {"GROUP_WORLD_SIZE", std::to_string(o.nnodes)},
        {"ROLE_RANK", std::to_string(r)},
        {"ROLE_WORLD_SIZE", std::to_string(o.nproc)},
        {"ROLE_NAME", "default"},
        {"MASTER_ADDR", "127.0.0.1"},
        {"MASTER_PORT", port},
        {"TORCHELASTIC_RUN_ID", o.jobId},
        {"TORCHELASTIC_RESTART_COUNT", "0"},
        {"TORCHELASTIC_MAX_RESTARTS", "0"},
        {"NCCLFR_SIM_JOB", o.jobId},
    };
    if (std::getenv("NCCL_UID_FILE") == nullptr) env.emplace_back("NCCL_UID_FILE", jobDir + "/nccl-uid");
    if (std::getenv("OMP_NUM_THREADS") == nullptr) env.emplace_back("OMP_NUM_THREADS", "1");
    if (o.useSim) env.emplace_back("LD_LIBRARY_PATH", ldPath);
    if (o.devices > 0) env.emplace_back("NCCLFR_SIM_DEVICES", std::to_string(o.devices));
    if (o.nnodes > 1) {
      // Ranks of different simulated nodes must not look like two ranks on one GPU.
      env.emplace_back("NCCL_HOSTID", std::string(userHostId != nullptr ? userHostId : "") + "simnode" +
                                          std::to_string(node));
    }
    // The handled signals are blocked across fork: a signal that came before the child reset its
    // handlers would run the launcher's handler in the child (which then survives a SIGTERM and
    // writes into the launcher's signal pipe). The child unblocks them after resetting them.
    sigset_t handled, previous;
    sigemptyset(&handled);
    for (int sig : kHandled) sigaddset(&handled, sig);
    ::sigprocmask(SIG_BLOCK, &handled, &previous);
    pid_t pid = ::fork();
    if (pid != 0) ::sigprocmask(SIG_SETMASK, &previous, nullptr);
    if (pid < 0) {
      say("cannot start rank %d: %s", r, std::strerror(errno));
      for (Rank& k : ranks) {
        if (k.running) ::kill(-k.pid, SIGKILL);
      }
      return kExitLauncherError;
    }
    if (pid == 0) execRank(o, r, env);
    ::setpgid(pid, pid);
    ranks[static_cast<size_t>(r)] = Rank{pid, true};
  }

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const bool hasTimeout = o.timeout > 0;
  const auto timeoutAt = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.timeout));
  bool terminating = false;
  Clock::time_point killAt{};
  int exitCode = 0;
  bool haveExitCode = false;
  int running = o.nproc;

  auto signalAll = [&](int sig) {
    for (Rank& k : ranks) {
      if (k.running) ::kill(-k.pid, sig);
    }
  };
  auto terminate = [&](int sig) {
    if (terminating) return;
    terminating = true;
    signalAll(sig);
    killAt = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.grace));
  };
  auto setExit = [&](int code) {
    if (!haveExitCode) {
      exitCode = code;
      haveExitCode = true;
    }
  };

  while (running > 0) {
    int waitMs = -1;
    auto now = Clock::now();
    auto until = [&](Clock::time_point t) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count() + 1;
      int m = static_cast<int>(std::max<long long>(0, std::min<long long>(ms, 1 << 30)));
      waitMs = waitMs < 0 ? m : std::min(waitMs, m);
    };
    if (hasTimeout && !terminating) until(timeoutAt);
    if (terminating) until(killAt);
    pollfd p{gSignalPipe[0], POLLIN, 0};
    ::poll(&p, 1, waitMs);
    unsigned char buf[64];
    ssize_t n;
    while ((n = ::read(gSignalPipe[0], buf, sizeof buf)) > 0) {
      for (ssize_t k = 0; k < n; ++k) {
        int sig = buf[k];
        switch (sig) {
          case SIGCHLD:
            break;
          case SIGINT:
            if (terminating) {
              say("second interrupt: sending SIGKILL to %d rank(s)", running);
              signalAll(SIGKILL);
            } else {
              say("interrupted: sending SIGTERM to %d rank(s)", running);
              setExit(128 + SIGINT);
              terminate(SIGTERM);
            }
            break;
          case SIGTERM:
          case SIGHUP:
            say("received %s: forwarding it to %d rank(s)", strsignal(sig), running);
            setExit(128 + sig);
            if (terminating) {
              signalAll(sig);
            } else {
              terminate(sig);
            }
            break;
          default:
            signalAll(sig);
            break;
        }
      }
    }
    // Reap.
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      for (size_t r = 0; r < ranks.size(); ++r) {
        Rank& k = ranks[r];
        if (k.pid != pid || !k.running) continue;
        k.running = false;
        --running;
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (code == 0) break;
        if (terminating) {
          if (WIFSIGNALED(status)) {
            say("rank %zu (pid %d) ended by signal %d (%s)", r, pid, WTERMSIG(status), strsignal(WTERMSIG(status)));
          } else {
            say("rank %zu (pid %d) exited with code %d", r, pid, code);
          }
          break;
        }
        if (WIFSIGNALED(status)) {
          say("rank %zu (pid %d) was killed by signal %d (%s)", r, pid, WTERMSIG(status), strsignal(WTERMSIG(status)));
        } else {
          say("rank %zu (pid %d) exited with code %d", r, pid, code);
        }
        setExit(code);
        if (o.killOnFailure && running > 0) {
          say("terminating the job: SIGTERM to %d rank(s), SIGKILL after %g s", running, o.grace);
          terminate(SIGTERM);
        }
        break;
      }
    }
    now = Clock::now();
    if (running > 0 && hasTimeout && !terminating && now >= timeoutAt) {
      say("job time limit of %g s reached: SIGTERM to %d rank(s), SIGKILL after %g s", o.timeout, running, o.grace);
      exitCode = kExitTimeout;
      haveExitCode = true;
      terminate(SIGTERM);
    }
    if (running > 0 && terminating && now >= killAt) {
      say("%d rank(s) still running %g s after SIGTERM: sending SIGKILL", running, o.grace);
      signalAll(SIGKILL);
      killAt = now + std::chrono::hours(24 * 365);
    }
  }

  removeJobSegments(jobTag(o.jobId));
  ::nftw(jobDir.c_str(), removeEntry, 16, FTW_DEPTH | FTW_PHYS);
  return exitCode;
}
