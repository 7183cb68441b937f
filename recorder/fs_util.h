// Small file-system helpers shared by the recorder's watchdog, the trigger protocol and salvage.
// All return false with a one-line *error instead of throwing.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace ncclfr::fs {

// mkdir -p with `mode` for every folder it creates (existing folders keep theirs).
bool makeDirs(const std::string& path, mode_t mode, std::string* error);
// Creates `path` (O_EXCL) holding `data`.
bool writeNewFile(const std::string& path, std::string_view data, mode_t mode, std::string* error);
// Reads at most `limit` bytes of `path`.
bool readSmallFile(const std::string& path, size_t limit, std::string* out, std::string* error);
bool pathExists(const std::string& path);

}  // namespace ncclfr::fs
