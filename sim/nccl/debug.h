// NCCL_DEBUG-style logging for sim/'s libnccl, in NCCL's own line format
// ("host:pid:tid [dev] NCCL WARN ...", on stdout like NCCL), so logs of a simulated job read like a
// real one. Every WARN is also kept as ncclGetLastError()'s message, whatever NCCL_DEBUG says.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ncclfr::sim::nccl {

enum class LogLevel { None = 0, Version = 1, Warn = 2, Info = 3, Trace = 5 };

LogLevel debugLevel();
void logf(LogLevel level, int cudaDev, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
const char* lastError();
// NCCL's 64-bit hash (src/include/utils.h): commHash for a new communicator is getHash of the
// 128-byte ncclUniqueId, and for a split communicator the digest of (parent hash, split count, color).
void eatHash(uint64_t acc[2], const void* bytes, size_t size);
uint64_t digestHash(const uint64_t acc[2]);
uint64_t getHash(const void* bytes, size_t size);
// NCCL_HOSTID if set, else hostname + boot id: ranks with equal host hashes share a node.
uint64_t hostHash();

}  // namespace ncclfr::sim::nccl

#define SIM_WARN(dev, ...) ::ncclfr::sim::nccl::logf(::ncclfr::sim::nccl::LogLevel::Warn, dev, __VA_ARGS__)
#define SIM_INFO(dev, ...) ::ncclfr::sim::nccl::logf(::ncclfr::sim::nccl::LogLevel::Info, dev, __VA_ARGS__)
