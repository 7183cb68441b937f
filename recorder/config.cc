#include "config.h"

#include <signal.h>
#include <strings.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace ncclfr::recorder {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

struct SignalName {
  const char* name;
  int number;
};
constexpr SignalName kSignals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
    {"TERM", SIGTERM}, {"ALRM", SIGALRM}, {"CONT", SIGCONT}, {"PWR", SIGPWR},   {"WINCH", SIGWINCH},
    {"URG", SIGURG},   {"XCPU", SIGXCPU},
};

uint32_t roundUpPow2(uint64_t n) {
  uint64_t p = 1;
  while (p < n) p <<= 1;
  return static_cast<uint32_t>(p);
}

}  // namespace

bool parseDuration(std::string_view text, int64_t* ns) {
  text = trim(text);
  if (text.empty()) return false;
  size_t unitAt = 0;
  while (unitAt < text.size() && (std::isdigit(static_cast<unsigned char>(text[unitAt])) || text[unitAt] == '.')) {
    ++unitAt;
  }
  std::string number(text.substr(0, unitAt));
  std::string_view unit = trim(text.substr(unitAt));
  if (number.empty() || std::count(number.begin(), number.end(), '.') > 1) return false;
  char* end = nullptr;
  double value = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !std::isfinite(value) || value < 0) return false;
  double scale;
  if (unit.empty() || unit == "s") scale = 1e9;
  else if (unit == "ms") scale = 1e6;
  else if (unit == "us") scale = 1e3;
  else if (unit == "ns") scale = 1;
  else if (unit == "m" || unit == "min") scale = 60e9;
  else if (unit == "h") scale = 3600e9;
  else return false;
  double result = value * scale;
  if (result > 9.0e18) return false;
  *ns = static_cast<int64_t>(std::llround(result));
  return true;
}

bool parseSignal(std::string_view text, int* signal) {
  text = trim(text);
  if (text.empty()) return false;
  if (equalsIgnoreCase(text, "none")) {
    *signal = 0;
    return true;
  }
  int n = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), n);
  if (r.ec == std::errc() && r.ptr == text.data() + text.size()) {
    if (n < 0 || n >= NSIG) return false;
    *signal = n;
    return true;
  }
  if (text.size() > 3 && equalsIgnoreCase(text.substr(0, 3), "SIG")) text.remove_prefix(3);
  for (const auto& s : kSignals) {
    if (equalsIgnoreCase(text, s.name)) {
      *signal = s.number;
      return true;
    }
  }
  if (text.size() > 5 && equalsIgnoreCase(text.substr(0, 5), "RTMIN")) {
    std::string_view off = text.substr(5);
    if (off.size() > 1 && off[0] == '+') off.remove_prefix(1);
    int k = 0;
    auto rr = std::from_chars(off.data(), off.data() + off.size(), k);
    if (rr.ec == std::errc() && rr.ptr == off.data() + off.size() && SIGRTMIN + k <= SIGRTMAX) {
      *signal = SIGRTMIN + k;
      return true;
    }
  }
  return false;
}

bool parseBool(std::string_view text, bool* value) {
  text = trim(text);
  for (const char* t : {"1", "true", "yes", "on"}) {
    if (equalsIgnoreCase(text, t)) {
      *value = true;
      return true;
    }
  }
  for (const char* f : {"0", "false", "no", "off"}) {
    if (equalsIgnoreCase(text, f)) {
      *value = false;
      return true;
    }
  }
  return false;
}

std::string formatDuration(int64_t ns) {
  if (ns % 60'000'000'000 == 0 && ns != 0) return std::to_string(ns / 60'000'000'000) + "m";
  if (ns % 1'000'000'000 == 0) return std::to_string(ns / 1'000'000'000) + "s";
  if (ns % 1'000'000 == 0) return std::to_string(ns / 1'000'000) + "ms";
  if (ns % 1'000 == 0) return std::to_string(ns / 1'000) + "us";
  return std::to_string(ns) + "ns";
}

RecorderConfig parseConfig(const EnvLookup& env, std::string_view cwd) {
  RecorderConfig c;
  auto get = [&](const char* name) -> const char* {
    const char* v = env(name);
    return (v != nullptr && *v != '\0') ? v : nullptr;
  };
  auto bad = [&](const char* name, const char* value, const std::string& expected, const std::string& dflt) {
    c.warnings.push_back(std::string("ignoring ") + name + "='" + value + "' (" + expected + "); using " + dflt);
  };

  if (const char* v = get("NCCLFR_ENABLE")) {
    if (!parseBool(v, &c.enable)) bad("NCCLFR_ENABLE", v, "expected 0 or 1", "1");
  }
  std::string dumpDir = "ncclfr-dumps";
  if (const char* v = get("NCCLFR_DUMP_DIR")) dumpDir = v;
  c.dumpDir = (dumpDir[0] == '/' || cwd.empty()) ? dumpDir : std::string(cwd) + "/" + dumpDir;
  while (c.dumpDir.size() > 1 && c.dumpDir.back() == '/') c.dumpDir.pop_back();
  if (const char* v = get("NCCLFR_SHM_DIR")) {
    c.shmDir = v;
    while (c.shmDir.size() > 1 && c.shmDir.back() == '/') c.shmDir.pop_back();
  }
  if (const char* v = get("NCCLFR_BUFFER")) {
    uint64_t n = 0;
    std::string_view s = trim(v);
    auto r = std::from_chars(s.data(), s.data() + s.size(), n);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size() || n < kMinBufferEntries || n > kMaxBufferEntries) {
      bad("NCCLFR_BUFFER", v,
          "expected a number of entries from " + std::to_string(kMinBufferEntries) + " to " +
              std::to_string(kMaxBufferEntries),
          std::to_string(c.bufferEntries));
    } else {
      c.bufferEntries = roundUpPow2(n);
    }
  }
  if (const char* v = get("NCCLFR_TIMEOUT")) {
    int64_t ns = 0;
    if (!parseDuration(v, &ns) || ns < 1'000'000) {
      bad("NCCLFR_TIMEOUT", v, "expected a duration of at least 1ms such as 500ms, 10s, 5m", formatDuration(c.timeoutNs));
    } else {
      c.timeoutNs = ns;
    }
  }
  if (const char* v = get("NCCLFR_TRIGGER_POLL")) {
    int64_t ns = 0;
    if (!parseDuration(v, &ns) || ns < 1'000'000) {
      bad("NCCLFR_TRIGGER_POLL", v, "expected a duration of at least 1ms such as 500ms, 10s",
          formatDuration(c.triggerPollNs));
    } else {
      c.triggerPollNs = ns;
    }
  }
  if (const char* v = get("NCCLFR_TIMING")) {
    std::string_view s = trim(v);
    if (equalsIgnoreCase(s, "full")) c.timing = shm::TimingMode::kFull;
    else if (equalsIgnoreCase(s, "end")) c.timing = shm::TimingMode::kEndOnly;
    else if (equalsIgnoreCase(s, "host")) c.timing = shm::TimingMode::kHostOnly;
    else bad("NCCLFR_TIMING", v, "expected full, end or host", "full");
  }
  if (const char* v = get("NCCLFR_STACKS")) {
    if (!parseBool(v, &c.stacks)) bad("NCCLFR_STACKS", v, "expected 0 or 1", "0");
  }
  if (const char* v = get("NCCLFR_DUMP_ON_EXIT")) {
    if (!parseBool(v, &c.dumpOnExit)) bad("NCCLFR_DUMP_ON_EXIT", v, "expected 0 or 1", "0");
  }
  if (const char* v = get("NCCLFR_DUMP_SIGNAL")) {
    int sig = 0;
    if (!parseSignal(v, &sig) || sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV || sig == SIGBUS ||
        sig == SIGFPE || sig == SIGILL || sig == SIGABRT || sig == SIGTERM) {
      bad("NCCLFR_DUMP_SIGNAL", v, "expected none or a signal such as SIGUSR2 that is not already used", "none");
    } else {
      c.dumpSignal = sig;
    }
  }
  if (const char* v = get("NCCLFR_LOG")) {
    std::string_view s = trim(v);
    if (equalsIgnoreCase(s, "none") || s == "0") c.log = LogLevel::kNone;
    else if (equalsIgnoreCase(s, "warn") || s == "1") c.log = LogLevel::kWarn;
    else if (equalsIgnoreCase(s, "info") || s == "2") c.log = LogLevel::kInfo;
    else bad("NCCLFR_LOG", v, "expected none, warn or info", "warn");
  }
  return c;
}

}  // namespace ncclfr::recorder
