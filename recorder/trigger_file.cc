// The trigger file protocol of include/ncclfr/trigger.h.
#include "ncclfr/trigger.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <random>

#include "fs_util.h"

namespace ncclfr::trigger {
namespace {

// Reads "key=value" from the front of `rest`, up to the next space.
bool takeField(std::string_view* rest, std::string_view key, std::string_view* value) {
  if (rest->substr(0, key.size()) != key || rest->size() <= key.size() || (*rest)[key.size()] != '=') {
    return false;
  }
  rest->remove_prefix(key.size() + 1);
  size_t end = rest->find(' ');
  *value = rest->substr(0, end);
  rest->remove_prefix(end == std::string_view::npos ? rest->size() : end + 1);
  return true;
}

template <typename T>
bool toNumber(std::string_view s, T* out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// Words in the file never contain spaces or newlines: they are separators.
std::string word(std::string_view s) {
  std::string w(s);
  for (char& c : w) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\0') c = '_';
  }
  if (w.empty()) w = "-";
  return w;
}

}  // namespace

std::string fileName(uint64_t generation) { return std::string(kFilePrefix) + std::to_string(generation); }

bool parseFileName(std::string_view name, uint64_t* generation) {
  if (name.substr(0, kFilePrefix.size()) != kFilePrefix) return false;
  name.remove_prefix(kFilePrefix.size());
  if (name.empty() || name[0] == '0') return false;
  return toNumber(name, generation);
}

std::string format(const Request& r) {
  std::string detail(r.detail);
  for (char& c : detail) {
    if (c == '\n' || c == '\r' || c == '\0') c = ' ';
  }
  return "ncclfr-trigger " + std::to_string(kFormatVersion) + " incident=" + word(r.incidentId) +
         " reason=" + word(r.reason) + " rank=" + std::to_string(r.triggerRank) +
         " wall_ns=" + std::to_string(r.wallNs) + " host=" + word(r.host) + " pid=" + std::to_string(r.pid) +
         " propagate=" + (r.propagate ? "1" : "0") + " detail=" + detail + "\n";
}

bool parse(std::string_view text, Request* r, std::string* error) {
  size_t nl = text.find('\n');
  if (nl == std::string_view::npos) {
    *error = "incomplete trigger line";
    return false;
  }
  std::string_view rest = text.substr(0, nl);
  constexpr std::string_view kHead = "ncclfr-trigger ";
  if (rest.substr(0, kHead.size()) != kHead) {
    *error = "not an ncclfr trigger file";
    return false;
  }
  rest.remove_prefix(kHead.size());
  size_t sp = rest.find(' ');
  int version = 0;
  if (sp == std::string_view::npos || !toNumber(rest.substr(0, sp), &version)) {
    *error = "trigger file without a format version";
    return false;
  }
  if (version != kFormatVersion) {
    *error = "trigger format " + std::to_string(version) + " is not the one this ncclfr reads (" +
             std::to_string(kFormatVersion) + ")";
    return false;
  }
  rest.remove_prefix(sp + 1);
  std::string_view v;
  Request out;
  if (!takeField(&rest, "incident", &v)) goto bad;
  out.incidentId = std::string(v);
  if (!takeField(&rest, "reason", &v)) goto bad;
  out.reason = std::string(v);
  if (!takeField(&rest, "rank", &v) || !toNumber(v, &out.triggerRank)) goto bad;
  if (!takeField(&rest, "wall_ns", &v) || !toNumber(v, &out.wallNs)) goto bad;
  if (!takeField(&rest, "host", &v)) goto bad;
  out.host = std::string(v);
  if (!takeField(&rest, "pid", &v) || !toNumber(v, &out.pid)) goto bad;
  if (!takeField(&rest, "propagate", &v) || (v != "0" && v != "1")) goto bad;
  out.propagate = v == "1";
  // Fields a later version inserts before detail are skipped.
  while (!rest.empty() && rest.substr(0, 7) != "detail=") {
    size_t next = rest.find(' ');
    rest.remove_prefix(next == std::string_view::npos ? rest.size() : next + 1);
  }
  if (rest.substr(0, 7) == "detail=") out.detail = std::string(rest.substr(7));
  *r = std::move(out);
  return true;
bad:
  *error = "malformed trigger line";
  return false;
}

std::string makeIncidentId(int64_t wallNs, std::string_view who) {
  time_t secs = static_cast<time_t>(wallNs / 1000000000);
  int millis = static_cast<int>((wallNs / 1000000) % 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02d.%03dZ-", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf + word(who);
}

uint64_t latestGeneration(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  uint64_t best = 0;
  while (struct dirent* e = ::readdir(d)) {
    uint64_t g = 0;
    if (parseFileName(e->d_name, &g) && g > best) best = g;
  }
  ::closedir(d);
  return best;
}

bool exists(const std::string& dir, uint64_t generation) {
  struct stat st {};
  return ::stat((dir + "/" + fileName(generation)).c_str(), &st) == 0;
}

bool read(const std::string& dir, uint64_t generation, Request* request, std::string* error) {
  std::string path = dir + "/" + fileName(generation);
  std::string text;
  if (!fs::readSmallFile(path, 4096, &text, error)) return false;
  if (!parse(text, request, error)) {
    *error = path + ": " + *error;
    return false;
  }
  return true;
}

PublishResult publish(const std::string& dir, const Request& request, uint64_t after, uint64_t* generation,
                      Request* winner, std::string* error) noexcept {
  try {
    if (!fs::makeDirs(dir, 0700, error)) return PublishResult::kFailed;
    std::random_device rd;
    std::string tmp = dir + "/.ncclfr-trigger.tmp." + word(request.host) + "." + std::to_string(request.pid) +
                      "." + std::to_string(rd());
    std::string line = format(request);
    if (!fs::writeNewFile(tmp, line, 0644, error)) return PublishResult::kFailed;
    PublishResult result = PublishResult::kFailed;
    // Generation after+1 or, when that one is there, the rival's incident in it. Further tries only
    // when a file of a generation is unreadable (a half-copied folder, say).
    for (int attempt = 0; attempt < 8; ++attempt) {
      uint64_t g = after + 1 + static_cast<uint64_t>(attempt);
      std::string name = dir + "/" + fileName(g);
      if (::link(tmp.c_str(), name.c_str()) == 0) {
        *generation = g;
        result = PublishResult::kCreated;
        break;
      }
      int err = errno;
      struct stat st {};
      // NFS may report EEXIST for a link that did succeed (a retransmitted request): our temporary
      // file then has two names.
      if (err == EEXIST && ::stat(tmp.c_str(), &st) == 0 && st.st_nlink == 2) {
        *generation = g;
        result = PublishResult::kCreated;
        break;
      }
      if (err != EEXIST) {
        *error = "cannot create " + name + ": " + std::strerror(err);
        break;
      }
      std::string readError;
      if (read(dir, g, winner, &readError)) {
        *generation = g;
        result = PublishResult::kJoined;
        break;
      }
    }
    ::unlink(tmp.c_str());
    if (result == PublishResult::kFailed && error->empty()) *error = "no free trigger generation in " + dir;
    return result;
  } catch (...) {
    *error = "out of memory";
    return PublishResult::kFailed;
  }
}

}  // namespace ncclfr::trigger
