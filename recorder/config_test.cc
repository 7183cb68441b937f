#include "config.h"

#include <signal.h>

#include <catch2/catch.hpp>

#include <map>
#include <string>

using namespace ncclfr::recorder;

namespace {
RecorderConfig parse(const std::map<std::string, std::string>& env, const std::string& cwd = "/work") {
  return parseConfig(
      [&](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      cwd);
}
}  // namespace

TEST_CASE("durations take units, and a bare number is seconds") {
  int64_t ns = 0;
  CHECK((parseDuration("500ms", &ns) && ns == 500'000'000));
  CHECK((parseDuration("10s", &ns) && ns == 10'000'000'000));
  CHECK((parseDuration("5m", &ns) && ns == 300'000'000'000));
  CHECK((parseDuration("1h", &ns) && ns == 3'600'000'000'000));
  CHECK((parseDuration("2", &ns) && ns == 2'000'000'000));
  CHECK((parseDuration("1.5", &ns) && ns == 1'500'000'000));
  CHECK((parseDuration(" 250us ", &ns) && ns == 250'000));
  CHECK_FALSE(parseDuration("", &ns));
  CHECK_FALSE(parseDuration("ten", &ns));
  CHECK_FALSE(parseDuration("5 parsecs", &ns));
  CHECK_FALSE(parseDuration("-1s", &ns));
  CHECK_FALSE(parseDuration("1.2.3", &ns));
}

TEST_CASE("signals by name or number") {
  int sig = -1;
  CHECK((parseSignal("SIGUSR2", &sig) && sig == SIGUSR2));
  CHECK((parseSignal("usr1", &sig) && sig == SIGUSR1));
  CHECK((parseSignal("12", &sig) && sig == 12));
  CHECK((parseSignal("none", &sig) && sig == 0));
  CHECK((parseSignal("SIGRTMIN+2", &sig) && sig == SIGRTMIN + 2));
  CHECK_FALSE(parseSignal("SIGNOPE", &sig));
  CHECK_FALSE(parseSignal("999", &sig));
}

TEST_CASE("defaults catch a hang well before PyTorch's 10-minute watchdog") {
  RecorderConfig c = parse({});
  CHECK(c.enable);
  CHECK(c.timeoutNs == 60'000'000'000);
  CHECK(c.timeoutNs < 600'000'000'000 / 5);
  CHECK(c.triggerPollNs == 5'000'000'000);
  CHECK(c.dumpDir == "/work/ncclfr-dumps");
  CHECK(c.shmDir == "/dev/shm");
  CHECK(c.bufferEntries == 16384);
  CHECK(c.timing == ncclfr::shm::TimingMode::kFull);
  CHECK_FALSE(c.stacks);
  CHECK_FALSE(c.dumpOnExit);
  CHECK(c.dumpSignal == 0);
  CHECK(c.log == LogLevel::kWarn);
  CHECK(c.warnings.empty());
}

TEST_CASE("every variable is read") {
  RecorderConfig c = parse({{"NCCLFR_ENABLE", "0"},
                            {"NCCLFR_DUMP_DIR", "/shared/dumps/"},
                            {"NCCLFR_SHM_DIR", "/tmp/shm"},
                            {"NCCLFR_BUFFER", "1000"},
                            {"NCCLFR_TIMEOUT", "90s"},
                            {"NCCLFR_TRIGGER_POLL", "500ms"},
                            {"NCCLFR_TIMING", "end"},
                            {"NCCLFR_STACKS", "1"},
                            {"NCCLFR_DUMP_ON_EXIT", "yes"},
                            {"NCCLFR_DUMP_SIGNAL", "SIGUSR2"},
                            {"NCCLFR_LOG", "info"}});
  CHECK_FALSE(c.enable);
  CHECK(c.dumpDir == "/shared/dumps");
  CHECK(c.shmDir == "/tmp/shm");
  CHECK(c.bufferEntries == 1024);  // rounded up to a power of two
  CHECK(c.timeoutNs == 90'000'000'000);
  CHECK(c.triggerPollNs == 500'000'000);
  CHECK(c.timing == ncclfr::shm::TimingMode::kEndOnly);
  CHECK(c.stacks);
  CHECK(c.dumpOnExit);
  CHECK(c.dumpSignal == SIGUSR2);
  CHECK(c.log == LogLevel::kInfo);
  CHECK(c.warnings.empty());
}

TEST_CASE("a bad value gives one warning and the default") {
  RecorderConfig c = parse({{"NCCLFR_TIMEOUT", "soon"},
                            {"NCCLFR_BUFFER", "12"},
                            {"NCCLFR_TIMING", "sometimes"},
                            {"NCCLFR_DUMP_SIGNAL", "SIGKILL"},
                            {"NCCLFR_ENABLE", "maybe"}});
  CHECK(c.timeoutNs == 60'000'000'000);
  CHECK(c.bufferEntries == 16384);
  CHECK(c.timing == ncclfr::shm::TimingMode::kFull);
  CHECK(c.dumpSignal == 0);
  CHECK(c.enable);
  REQUIRE(c.warnings.size() == 5);
  CHECK(c.warnings[0].find("NCCLFR_ENABLE='maybe'") != std::string::npos);
  for (const auto& w : c.warnings) CHECK(w.find("using") != std::string::npos);
}

TEST_CASE("a relative dump folder is taken from the working directory") {
  CHECK(parse({{"NCCLFR_DUMP_DIR", "out"}}, "/home/me").dumpDir == "/home/me/out");
}
