#include "commands/output_path.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "ncclfr/dump_file.h"

namespace ncclfr::cli {
namespace {

// The first `n` bytes of a regular file, or fewer when it is shorter. O_NONBLOCK: `out` was a
// regular file when stat'ed, but may have been swapped for a FIFO since.
size_t readPrefix(const std::string& path, char* buf, size_t n) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return 0;
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  return got;
}

}  // namespace

bool checkOutputPath(const std::string& out, const std::vector<std::string>& inputs, OutputKind kind,
                     std::string* error) noexcept {
  try {
    struct stat o {};
    if (::stat(out.c_str(), &o) != 0) return true;  // nothing there to destroy
    if (S_ISDIR(o.st_mode)) return true;
    const std::string refuse = "refusing to overwrite " + out + ": ";
    if (!S_ISREG(o.st_mode)) {
      *error = refuse + "it is not a regular file";
      return false;
    }
    for (const auto& in : inputs) {
      struct stat i {};
      if (::stat(in.c_str(), &i) == 0 && i.st_dev == o.st_dev && i.st_ino == o.st_ino) {
        *error = refuse + "it is one of the inputs";
        return false;
      }
    }
    if (o.st_size == 0) return true;
    static constexpr char kSqliteMagic[16] = {'S', 'Q', 'L', 'i', 't', 'e', ' ', 'f',
                                              'o', 'r', 'm', 'a', 't', ' ', '3', '\0'};
    char head[sizeof kSqliteMagic] = {};
    size_t got = readPrefix(out, head, sizeof head);
    if (got >= sizeof kDumpMagic && std::memcmp(head, kDumpMagic, sizeof kDumpMagic) == 0) {
      *error = refuse + "it is an ncclfr dump";
      return false;
    }
    if (kind == OutputKind::kSqlite && !(got == sizeof head && std::memcmp(head, kSqliteMagic, sizeof head) == 0)) {
      *error = refuse + "it is neither empty nor an SQLite database";
      return false;
    }
    return true;
  } catch (...) {
    *error = "cannot check " + out + ": out of memory";
    return false;
  }
}

bool outputAllowed(const std::string& out, const std::vector<std::string>& paths, const std::vector<std::string>& files,
                   OutputKind kind) {
  std::vector<std::string> inputs = paths;
  inputs.insert(inputs.end(), files.begin(), files.end());
  std::string error;
  if (checkOutputPath(out, inputs, kind, &error)) return true;
  std::fprintf(stderr, "ncclfr: %s\n", error.c_str());
  return false;
}

std::string cannotWrite(const std::string& out, int err) { return "cannot write " + out + ": " + std::strerror(err); }

}  // namespace ncclfr::cli
