// Checks shared by the commands that write a file (db, report, export): they must never destroy the
// dumps they read, or an unrelated file a mistyped -o happened to name.
#pragma once

#include <string>
#include <vector>

namespace ncclfr::cli {

enum class OutputKind {
  kAny,     // report, export: any existing file that is not a dump or an input may be replaced
  kSqlite,  // db: only an empty file or an SQLite database may be replaced
};

// False, with one line in *error ("refusing to overwrite OUT: ..."), when `out` exists and is one of
// `inputs` (the paths given or the dump files found, compared by device and inode), an ncclfr dump
// (by its magic, whatever its name), something other than a regular file or folder (a FIFO or a
// device would be replaced by the rename), or, for kSqlite, a non-empty file that is not an SQLite
// database. A missing `out` or a folder passes: the write itself reports those. Never throws.
bool checkOutputPath(const std::string& out, const std::vector<std::string>& inputs, OutputKind kind,
                     std::string* error) noexcept;

// checkOutputPath against the paths given and the dump files found in them; prints the refusal
// ("ncclfr: refusing to overwrite ...") on stderr. The commands' one call.
bool outputAllowed(const std::string& out, const std::vector<std::string>& paths, const std::vector<std::string>& files,
                   OutputKind kind);

// "cannot write OUT: <strerror(err)>": error lines name the user's path, never a temporary file.
std::string cannotWrite(const std::string& out, int err);

}  // namespace ncclfr::cli
