#include "log.h"

#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>

namespace ncclfr::recorder {
namespace {

std::atomic<int> gLevel{static_cast<int>(LogLevel::kWarn)};
std::atomic<uint32_t> gHotWarnings{0};

void vlog(const char* fmt, va_list ap) {
  char buf[1024];
  int n = std::snprintf(buf, sizeof buf, "ncclfr[%d]: ", static_cast<int>(getpid()));
  if (n < 0) return;
  int m = std::vsnprintf(buf + n, sizeof buf - static_cast<size_t>(n) - 1, fmt, ap);
  if (m < 0) return;
  size_t len = static_cast<size_t>(n) + std::min<size_t>(static_cast<size_t>(m), sizeof buf - static_cast<size_t>(n) - 2);
  buf[len++] = '\n';
  ssize_t ignored = ::write(2, buf, len);
  (void)ignored;
}

}  // namespace

void setLogLevel(LogLevel level) { gLevel.store(static_cast<int>(level), std::memory_order_relaxed); }
LogLevel logLevel() { return static_cast<LogLevel>(gLevel.load(std::memory_order_relaxed)); }

void logWarn(const char* fmt, ...) {
  if (gLevel.load(std::memory_order_relaxed) < static_cast<int>(LogLevel::kWarn)) return;
  va_list ap;
  va_start(ap, fmt);
  vlog(fmt, ap);
  va_end(ap);
}

void logInfo(const char* fmt, ...) {
  if (gLevel.load(std::memory_order_relaxed) < static_cast<int>(LogLevel::kInfo)) return;
  va_list ap;
  va_start(ap, fmt);
  vlog(fmt, ap);
  va_end(ap);
}

void raiseHotWarning(HotWarning w) {
  // A plain load first: once raised, the flag costs no further cache-line traffic.
  if ((gHotWarnings.load(std::memory_order_relaxed) & w) == 0) gHotWarnings.fetch_or(w, std::memory_order_relaxed);
}

uint32_t hotWarnings() { return gHotWarnings.load(std::memory_order_relaxed); }

}  // namespace ncclfr::recorder
