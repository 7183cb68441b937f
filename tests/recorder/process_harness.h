// Running recorded jobs from a test: spawn processes with LD_PRELOAD=libncclfr.so and a clean
// NCCLFR_* environment, wait for conditions with deadlines (never a fixed sleep), read their dumps.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ncclfr/dump_file.h"

extern char** environ;

namespace rectest {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Generous: ctest -j2 on a loaded two-core machine, under sanitizers.
inline constexpr std::chrono::seconds kDeadline{60};

inline std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds limit = kDeadline) {
  auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

// A temporary folder with shm/ and dumps/ for one test; removed afterwards.
struct Workspace {
  fs::path root;
  Workspace() {
    char tmpl[] = "/tmp/ncclfr-e2e-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    root = tmpl;
  }
  ~Workspace() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  std::string shm() const { return (root / "shm").string(); }
  std::string dumps() const { return (root / "dumps").string(); }
  std::string path(const std::string& name) const { return (root / name).string(); }
};

class Process {
 public:
  Process(const std::vector<std::string>& args, const std::map<std::string, std::string>& env, const std::string& outPath,
          const std::string& errPath)
      : out_(outPath), err_(errPath) {
    std::vector<std::string> envStrings;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string kv = *e;
      std::string key = kv.substr(0, kv.find('='));
      // The test decides these; nothing leaks in from the caller's shell.
      if (key.rfind("NCCLFR_", 0) == 0 || key.rfind("FAKE_NCCL_", 0) == 0 || key == "LD_PRELOAD" ||
          key == "LD_LIBRARY_PATH" || key == "RANK" || key == "WORLD_SIZE" || key == "LOCAL_RANK" ||
          env.count(key)) {
        continue;
      }
      envStrings.push_back(kv);
    }
    for (const auto& [k, v] : env) envStrings.push_back(k + "=" + v);
    std::vector<char*> argv, envp;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : envStrings) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(rc == 0);
  }
  ~Process() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      int status;
      ::waitpid(pid_, &status, 0);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  std::string out() const { return readFile(out_); }
  std::string err() const { return readFile(err_); }
  void signal(int sig) { ::kill(pid_, sig); }

  // Waits for the process to end; false if it is still running at the deadline.
  bool wait(std::chrono::milliseconds limit = kDeadline) {
    if (reaped_) return true;
    return waitUntil(
        [&] {
          int status = 0;
          pid_t r = ::waitpid(pid_, &status, WNOHANG);
          if (r == pid_) {
            reaped_ = true;
            status_ = status;
          }
          return reaped_;
        },
        limit);
  }
  bool exitedWith(int code) const { return reaped_ && WIFEXITED(status_) && WEXITSTATUS(status_) == code; }
  bool killedBy(int sig) const { return reaped_ && WIFSIGNALED(status_) && WTERMSIG(status_) == sig; }
  std::string describe() const {
    if (!reaped_) return "still running";
    if (WIFEXITED(status_)) return "exit " + std::to_string(WEXITSTATUS(status_));
    return "signal " + std::to_string(WTERMSIG(status_));
  }
  bool outContains(const std::string& text) const { return out().find(text) != std::string::npos; }

 private:
  std::string out_, err_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

// Every dump under `dir`, opened.
inline std::vector<std::unique_ptr<ncclfr::DumpFile>> dumpsIn(const std::string& dir) {
  std::vector<std::unique_ptr<ncclfr::DumpFile>> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  std::vector<std::string> paths;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.path().extension() == ".ncclfr") paths.push_back(e.path().string());
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    std::string error;
    auto f = ncclfr::DumpFile::open(p, &error);
    INFO(error);
    REQUIRE(f != nullptr);
    out.push_back(std::move(f));
  }
  return out;
}

// Runs a job to a clean exit (status 0) and opens the dumps it left.
inline std::vector<std::unique_ptr<ncclfr::DumpFile>> runToExit(const Workspace& w,
                                                                const std::map<std::string, std::string>& env,
                                                                const std::vector<std::string>& args,
                                                                std::chrono::milliseconds limit = kDeadline) {
  Process p(args, env, w.path("out"), w.path("err"));
  REQUIRE(p.wait(limit));
  INFO(p.describe() + "\n" + p.out() + p.err());
  REQUIRE(p.exitedWith(0));
  return dumpsIn(w.dumps());
}

inline size_t countDumps(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) n += e.path().extension() == ".ncclfr";
  return n;
}

inline size_t countFiles(const std::string& dir, const std::string& suffix) {
  size_t n = 0;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    n += name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  }
  return n;
}

inline int countLines(const std::string& text, const std::string& needle) {
  int n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
  return n;
}

}  // namespace rectest
