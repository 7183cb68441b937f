// NCCLFR_STACKS: the call stack of each recorded call, deduplicated in the ring file's stack
// table, and the loaded modules needed to symbolize the addresses offline. Opt-in: unwinding costs
// microseconds per call.
#pragma once

#include <cstdint>
#include <string>

#include "shm_ring.h"

namespace ncclfr::recorder {

// The stack table index of the calling thread's stack (frames inside libncclfr.so left out), or
// -1 when the table is full or stacks are off.
int32_t captureStack(RingRegion& ring);
// Writes the loaded modules (path, base, GNU build id) into the ring's module table.
void recordModules(RingRegion& ring);
// "symbol+0x1c (libfoo.so)" for a return address of this process, via dladdr.
std::string symbolizeAddress(uint64_t address);

}  // namespace ncclfr::recorder
