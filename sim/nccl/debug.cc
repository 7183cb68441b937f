#include "debug.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace ncclfr::sim::nccl {
namespace {

std::mutex gLogMu;
char gLastError[1024];

LogLevel parseLevel() {
  const char* v = std::getenv("NCCL_DEBUG");
  if (v == nullptr) return LogLevel::None;
  if (strcasecmp(v, "VERSION") == 0) return LogLevel::Version;
  if (strcasecmp(v, "WARN") == 0) return LogLevel::Warn;
  if (strcasecmp(v, "INFO") == 0) return LogLevel::Info;
  if (strcasecmp(v, "TRACE") == 0) return LogLevel::Trace;
  return LogLevel::None;
}

}  // namespace

LogLevel debugLevel() {
  static const LogLevel level = parseLevel();
  return level;
}

void logf(LogLevel level, int cudaDev, const char* fmt, ...) {
  char msg[900];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  std::lock_guard<std::mutex> lock(gLogMu);
  if (level == LogLevel::Warn) std::snprintf(gLastError, sizeof gLastError, "%s", msg);
  if (static_cast<int>(debugLevel()) < static_cast<int>(level)) return;
  char host[64] = "unknown";
  ::gethostname(host, sizeof host - 1);
  if (char* dot = std::strchr(host, '.')) *dot = '\0';
  const char* tag = level == LogLevel::Warn ? "WARN" : (level == LogLevel::Info ? "INFO" : "TRACE");
  std::fprintf(stdout, "%s:%d:%d [%d] NCCL %s %s\n", host, static_cast<int>(::getpid()),
               static_cast<int>(::syscall(SYS_gettid)), cudaDev, tag, msg);
  std::fflush(stdout);
}

const char* lastError() { return gLastError; }

void eatHash(uint64_t acc[2], const void* bytes, size_t size) {
  const char* ptr = static_cast<const char*>(bytes);
  acc[0] ^= size;
  while (size != 0) {
    acc[0] += acc[1];
    acc[1] ^= acc[0];
    acc[0] ^= acc[0] >> 31;
    acc[0] *= 0x9de62bbc8cef3ce3ULL;
    acc[1] ^= acc[1] >> 32;
    acc[1] *= 0x485cd6311b599e79ULL;
    size_t chunk = size < sizeof(uint64_t) ? size : sizeof(uint64_t);
    uint64_t x = 0;
    std::memcpy(&x, ptr, chunk);
    ptr += chunk;
    size -= chunk;
    acc[0] += x;
  }
}

uint64_t digestHash(const uint64_t acc[2]) {
  uint64_t h = acc[0];
  h ^= h >> 31;
  h *= 0xbac3bd562846de6bULL;
  h += acc[1];
  h ^= h >> 32;
  h *= 0x995a187a14e7b445ULL;
  return h;
}

uint64_t getHash(const void* bytes, size_t size) {
  uint64_t acc[2] = {1, 1};
  eatHash(acc, bytes, size);
  return digestHash(acc);
}

uint64_t hostHash() {
  static const uint64_t hash = [] {
    std::string id;
    if (const char* h = std::getenv("NCCL_HOSTID"); h != nullptr && *h != '\0') {
      id = h;
    } else {
      char host[256] = {};
      ::gethostname(host, sizeof host - 1);
      id = host;
      if (FILE* f = std::fopen("/proc/sys/kernel/random/boot_id", "r")) {
        char boot[64] = {};
        if (std::fgets(boot, sizeof boot, f) != nullptr) id += boot;
        std::fclose(f);
      }
    }
    return getHash(id.data(), id.size());
  }();
  return hash;
}

}  // namespace ncclfr::sim::nccl
